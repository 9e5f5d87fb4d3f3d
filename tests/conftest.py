"""Shared fixtures: one real CHGNet per test session (loading it takes seconds)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from pymatgen.core import Lattice, Structure


@pytest.fixture(scope="session")
def chgnet():
    from upotbo.potentials import load_potential

    return load_potential("chgnet")


def rocksalt(a: str, b: str, lattice: float) -> Structure:
    return Structure.from_spacegroup(225, Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``upotbo ARGS`` in this process: (exit code, stdout, stderr)."""
    from upotbo.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors exit from inside the parser
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "upotbo.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def small_search(out, pool: str, nchem: str, steps: int, n_init: int):
    """A real search in a subprocess, for tests that need a run directory; returns ``out``."""
    args = ["--pool", pool, "--nchem", nchem, "--steps", str(steps), "--n-init", str(n_init)]
    proc = run_cli("search", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def wait_for(condition, seconds: float = 300.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def family(proc: subprocess.Popen) -> list[psutil.Process]:
    """Every living descendant of ``proc`` (helpers, their fork server, the resource tracker)."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def gone_within(processes: list[psutil.Process], seconds: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=seconds)
    return not alive
