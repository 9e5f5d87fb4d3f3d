"""The command line: bad input gives one line and exit code 2; a killed run resumes exactly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import run_cli

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
