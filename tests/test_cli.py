"""The command line: bad input gives one line and exit code 2; a killed run resumes exactly."""

from __future__ import annotations

import argparse
import ast
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, run_main

import upotbo
from upotbo.cli import build_parser
from upotbo.cli_args import finite_float, int_in, objectives_type
from upotbo.properties import CohesiveEnergy

FAST = ["--steps", "4", "--n-init", "2", "--relax-steps", "0", "--batch-size", "4", "--no-progress"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "Zr,Xx"], "unknown element symbol 'Xx'"),
        (["--pool", ","], "empty element pool"),
        (["--pool", "Zr,W"], "no isolated-atom reference energy for W"),
        (["--pool", "Zr,Am"], "Am not covered by the CHGNet"),
        (["--ncomp", "7"], "--ncomp 7 is out of range"),
        (["--nchem", "0"], "--nchem 0 is out of range"),
        (["--steps", "0"], "--steps 0 is out of range"),
        (["--ncomp", "3", "--max-atoms", "2"], "--max-atoms 2 is below --ncomp 3"),
        (["--sampler", "gp"], "unknown sampler 'gp'"),
        (["--element-scale", "alphabet"], "unknown element scale 'alphabet'"),
        (["--out", "/proc/upotbo-cannot-write"], "is not writable"),
        (["--resume"], "nothing to resume"),
        (["--threads", "0"], "--threads 0 is out of range: use 1 to 1024"),
        (["--threads", "two"], "--threads must be a whole number, got 'two'"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    cmd = ["search", "--out", str(tmp_path / "run"), *FAST, *args]
    if "--out" in args:
        cmd = ["search", *FAST, *args]
    proc = run_cli(*cmd)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("upotbo: error:"), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_int_in():
    parse = int_in(1, 10, "--n")
    assert parse("1") == 1 and parse(" 10 ") == 10
    assert int_in(0, None, "--k")("10000000000") == 10**10
    for text, message in [
        ("0", "--n 0 is out of range: use 1 to 10"),
        ("11", "--n 11 is out of range: use 1 to 10"),
        ("1.5", "--n must be a whole number, got '1.5'"),
        ("nan", "--n must be a whole number, got 'nan'"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError) as exc:
            parse(text)
        assert str(exc.value) == message
    with pytest.raises(argparse.ArgumentTypeError, match="--k -1 is out of range: use 0 or more"):
        int_in(0, None, "--k")("-1")


FINITE = "must be a finite number"


@pytest.mark.parametrize(
    ("bound", "accepted", "refused"),
    [
        ("finite", ["-7.5", "0", "1e3"], {"nan": FINITE, "-inf": FINITE}),
        ("positive", ["0.05", "1e-9"], {"0": "must be positive", "-1": "must be positive"}),
        ("non-negative", ["0", "2.5"], {"-0.1": "must be >= 0", "inf": FINITE}),
    ],
)
def test_finite_float(bound, accepted, refused):
    parse = finite_float("--x", bound, "the fix")
    assert [parse(text) for text in accepted] == [float(text) for text in accepted]
    for text, rule in {**refused, "x": None}.items():
        with pytest.raises(argparse.ArgumentTypeError) as exc:
            parse(text)
        expected = "--x must be a number, got 'x'" if rule is None else f"--x {text} {rule}"
        assert str(exc.value) == f"{expected}: the fix"


def test_objectives_type():
    (one,) = objectives_type("cohesive_energy")
    assert isinstance(one, CohesiveEnergy)
    two = objectives_type("bulk_modulus,density:min")
    assert [(p.name, p.direction) for p in two] == [("bulk_modulus", "maximize"), ("density", "minimize")]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown property 'band_gap': choose one of"):
        objectives_type("density,band_gap")
    with pytest.raises(argparse.ArgumentTypeError, match="names a property twice"):
        objectives_type("density,density:min")
    with pytest.raises(argparse.ArgumentTypeError, match="4 objectives .*: a search takes 1 to 3"):
        objectives_type("density,bulk_modulus,hardness,volume_per_atom")


def test_values_accepted_before_still_parse():
    parser = build_parser()
    search = parser.parse_args(
        ["search", "--timeout", "0", "--prune-margin", "0", "--target", "-7.5", "--seed", "-3"]
    )
    assert (search.timeout, search.prune_margin, search.target, search.seed) == (0.0, 0.0, -7.5, -3)
    assert [type(p) for p in search.prop] == [CohesiveEnergy]
    assert search.optimizer == "bfgs"
    assert (search.batch_size, search.relax_steps, search.out) == (32, 20, "runs/search")
    landscape = parser.parse_args(["landscape", "--formula", "Zr4C4"])
    assert (landscape.batch_size, landscape.relax_steps, landscape.out) == (100, 0, None)
    validate = parser.parse_args(
        ["validate", "run", "--relax-steps", "5000", "--top", "100000", "--phonon-tol", "0"]
    )
    assert (validate.relax_steps, validate.top, validate.phonon_tol) == (5000, 100000, 0.0)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("search", ["--fmax", "nan"], "--fmax nan must be a finite number"),
        ("search", ["--timeout", "-1"], "--timeout -1 must be >= 0"),
        ("search", ["--timeout", "nan"], "--timeout nan must be a finite number"),
        ("search", ["--target", "nan"], "--target nan must be a finite number"),
        ("search", ["--heartbeat", "nan"], "--heartbeat nan must be a finite number"),
        ("search", ["--heartbeat", "0"], "--heartbeat 0 must be positive"),
        ("search", ["--prune-margin", "-1"], "--prune-margin -1 must be >= 0"),
        ("search", ["--property", "band_gap"], "unknown property 'band_gap'"),
        ("search", ["--optimizer", "lbfgs"], "optimizer 'lbfgs' unknown: use one of fire, bfgs"),
        ("landscape", ["--formula", "Zr4C4", "--fmax", "inf"], "--fmax inf must be a finite number"),
        ("landscape", ["--formula", "Zr4C4", "--timeout", "nan"], "--timeout nan must be a finite number"),
        ("landscape", ["--formula", "Zr4C4", "--property", "band_gap"], "unknown property 'band_gap'"),
    ],
)
def test_bad_number_or_property_refused_while_parsing(tmp_path, capsys, command, args, message):
    out = tmp_path / "run"
    code, _, err = run_main(capsys, command, "--out", str(out), *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("upotbo: error:"), err
    assert message in lines[0]
    assert not out.exists()


def test_target_nan_refused_by_the_entry_point(tmp_path):
    """It used to run a whole search, then crash comparing trial values with NaN."""
    proc = run_cli("search", "--out", str(tmp_path / "run"), *FAST, "--target", "nan")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("upotbo: error:"), proc.stderr
    assert not (tmp_path / "run").exists()


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` imports, relative imports resolved, ``from P import m`` as
    both ``P`` and ``P.m`` (``m`` may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] if node.level else [])
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_the_main_cli():
    """``upotbo.cli`` imports the subcommands; one of them importing it back is a circle (and under
    ``python -m upotbo.cli`` a second copy of the module)."""
    root = Path(upotbo.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "cli.py":
            continue
        package = ".".join(("upotbo", *path.relative_to(root).parent.parts))
        if "upotbo.cli" in _imported_modules(path, package):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_existing_study_and_resume_with_other_settings(tmp_path):
    out = str(tmp_path / "run")
    first = run_cli("search", "--pool", "Zr,C", "--out", out, *FAST)
    assert first.returncode == 0, first.stderr
    assert "E_c =" in first.stdout and "eV/atom" in first.stdout
    again = run_cli("search", "--pool", "Zr,C", "--out", out, *FAST)
    assert again.returncode == 2 and "add --resume" in again.stderr
    other = run_cli("search", "--pool", "Zr,N", "--out", out, *FAST, "--resume")
    assert other.returncode == 2 and "different settings" in other.stderr
    report = run_cli("report", str(tmp_path))
    assert report.returncode == 2 and "not an upotbo run directory" in report.stderr


def _stored(db: str) -> list[tuple[int, str]]:
    """Trials in the run's database; none while optuna is still creating its tables (or holds the lock)."""
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return conn.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:
        return []


@pytest.mark.slow  # 46 s; the kill -9 chaos test in test_interrupts.py covers it too (.ci/run runs both)
def test_kill_9_then_resume(tmp_path):
    """A real run killed with SIGKILL mid-search resumes: nothing lost, nothing counted twice."""
    out = tmp_path / "run"
    args = [
        "search",
        "--pool",
        "Zr,C,N",
        "--nchem",
        "3",
        "--steps",
        "48",
        "--n-init",
        "8",
        "--relax-steps",
        "5",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "upotbo.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    db = str(out / "study.db")
    deadline = time.time() + 300
    while time.time() < deadline:
        if os.path.exists(db) and len(_stored(db)) >= 12:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _stored(db)
    assert 12 <= len(before) < 48
    assert all(state in ("COMPLETE", "FAIL") for _, state in before)  # nothing left RUNNING
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    after = _stored(db)
    assert [n for n, _ in after] == list(range(48))  # every step once
    assert after[: len(before)] == before  # what was stored before the kill is untouched
