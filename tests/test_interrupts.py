"""Interrupts and kills of a real search (CLI, CHGNet, build workers, scoring process): what a job
scheduler does to it. Nothing stored is lost, nothing is left RUNNING, no process outlives the run."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import family, gone_within, wait_for

pytestmark = pytest.mark.slow  # ~5 min of real searches started and killed; .ci/run runs them

# Single points (scored in a process of their own) with two build workers: every kind of child.
SEARCH = ["--pool", "Zr,C,N,B", "--nchem", "3", "--n-init", "8", "--batch-size", "8", "--workers", "2",
          "--relax-steps", "0", "--no-progress"]
# Relaxations long enough that a batch is still being scored when the signal comes.
SLOW = ["--pool", "Zr,C,N,B", "--nchem", "3", "--n-init", "8", "--batch-size", "8", "--workers", "1",
        "--relax-steps", "60", "--fmax", "0.001", "--prune-margin", "0", "--no-progress"]


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_search_outlives_its_test():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _sigint_as_from_a_terminal() -> None:
    """The child gets Ctrl-C's default disposition even when this test runs in a background job,
    whose shell hands SIGINT down ignored (POSIX: asynchronous commands without job control); an
    ignored SIGINT would rightly leave the search running."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path, steps: int, options: list[str], resume: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "upotbo.cli", "search", *options, "--steps", str(steps), "--out", str(out)]
    proc = subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_from_a_terminal)
    STARTED.append(proc)
    return proc


def stored(out: Path) -> list[tuple[int, str]]:
    """(number, state) of every trial in the run's database (read directly, as another tool would)."""
    if not (out / "study.db").exists():
        return []
    with sqlite3.connect(out / "study.db", timeout=30) as db:
        try:
            return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
        except sqlite3.OperationalError:  # the tables are not made yet
            return []


def check_run(out: Path, steps: int) -> None:
    trials = stored(out)
    assert [n for n, _ in trials] == list(range(steps))
    assert {state for _, state in trials} <= {"COMPLETE", "FAIL"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_main_process_stops_it_promptly_and_keeps_every_stored_step(tmp_path, sig):
    """As a scheduler or supervisor sends it (to the main process only), mid-batch of long
    relaxations: exit 130 within 10 s, a message and no traceback, every child gone, the stored
    steps numbered without gaps and none RUNNING (the kill test below resumes such runs)."""
    out = tmp_path / "run"
    proc = start(out, 64, SLOW)
    wait_for(lambda: len(stored(out)) >= 8 or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(2.0)  # well into the next batch's relaxations
    children = family(proc)
    assert len(children) >= 1
    before = len(stored(out))
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 10.0
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err and "--resume" in err
    assert gone_within(children, 5.0)
    assert len(stored(out)) >= before
    check_run(out, len(stored(out)))


def test_kill_9_at_random_moments_loses_nothing_and_leaves_no_process(tmp_path):
    """The chaos test: kill -9 at five random moments, resume each time; the run ends at exactly its
    steps, numbered without gaps, none RUNNING, and no process of any killed run is left."""
    out, steps, rng = tmp_path / "run", 600, random.Random(2026)
    for _ in range(5):
        proc = start(out, steps, SEARCH, resume=(out / "study.db").exists())
        wait_for(lambda p=proc: len(family(p)) >= 2 or p.poll() is not None, seconds=120)
        time.sleep(rng.uniform(0.0, 8.0))
        children = family(proc)
        proc.kill()
        proc.wait()
        assert gone_within(children, 5.0), [c.pid for c in children if c.is_running()]
        check_run(out, len(stored(out)))
    proc = start(out, steps, SEARCH, resume=(out / "study.db").exists())
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    check_run(out, steps)


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    first = start(out, 4000, SEARCH)
    wait_for(lambda: len(stored(out)) >= 8 or first.poll() is not None)
    assert first.poll() is None, first.stderr.read()
    second = start(out, 4000, SEARCH, resume=True)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and "--join" in lines[0], err
