"""Several ``upotbo search`` processes on one PostgreSQL study, one of them killed with SIGKILL.

Needs a real PostgreSQL server: ``UPOTBO_TEST_POSTGRES_URL`` (set by ``.ci/run``, which installs and
starts one on 127.0.0.1) names a database whose role may create databases; the test makes a scratch
database, runs the processes, and drops it. Without the variable the test is skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from conftest import run_cli
from optuna.trial import TrialState

from upotbo.storage.run_record import FailStage, is_step

LOST = FailStage.LOST

SERVER = os.environ.get("UPOTBO_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not SERVER, reason="no PostgreSQL server (set UPOTBO_TEST_POSTGRES_URL)")

STEPS, BATCH, PROCESSES = 120, 4, 3  # enough steps that a process is seen holding trials before all end


def _search(url: str, out: str) -> subprocess.Popen:
    args = [
        "search", "--pool", "Zr,C,N,B", "--nchem", "2", "--steps", str(STEPS), "--n-init", "12",
        "--relax-steps", "0", "--batch-size", str(BATCH), "--workers", "1", "--heartbeat", "1",
        "--storage", url, "--join", "--out", out, "--no-progress",
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "upotbo.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="upotbo", storage=url).get_trials(deepcopy=False)


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate():
                return
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_processes_one_killed(tmp_path):
    from upotbo.storage.scratch import scratch_database

    with scratch_database(SERVER, prefix="upotbo_test") as url:
        procs = [_search(url, str(tmp_path / f"p{k}")) for k in range(PROCESSES)]
        chosen: list[subprocess.Popen] = []
        try:

            def holders(trials: list[optuna.trial.FrozenTrial]) -> list[subprocess.Popen]:
                """Live processes holding RUNNING trials (their user attr ``worker`` ends in the pid), once
                some trials are done. Any of the three will do: which one starts first is up to the
                scheduler, and a slow starter may find the budget taken."""
                if sum(t.state == TrialState.COMPLETE for t in trials) < 8:
                    return []
                running = [t for t in trials if t.state == TrialState.RUNNING]
                pids = {t.user_attrs.get("worker", "").rpartition(":")[2] for t in running}
                return [p for p in procs if str(p.pid) in pids and p.poll() is None]

            def frozen_holding() -> bool:
                """Freeze a holder (SIGSTOP) and look again: frozen, it cannot finish its trials between
                the look and the kill (that race once left nothing lost to check); thaw it when the
                second look finds it holds none."""
                if all(p.poll() is not None for p in procs):
                    raise AssertionError("every process ended before one was seen holding running trials")
                found = holders(_trials(url))
                if not found:
                    return False
                victim = found[0]
                os.killpg(victim.pid, signal.SIGSTOP)
                time.sleep(0.5)  # a commit already sent lands before the second look
                if victim in holders(_trials(url)):
                    chosen.append(victim)
                    return True
                os.killpg(victim.pid, signal.SIGCONT)
                return False

            try:
                _wait_for(frozen_holding, 400, "a process to hold running trials")
            except AssertionError as error:
                states = {
                    p.pid: (p.poll(), p.stderr.read()[-400:] if p.poll() is not None else "") for p in procs
                }
                raise AssertionError(f"{error}; (exit status, stderr) by pid: {states}") from None
            victim = chosen[0]
            survivors = [p for p in procs if p is not victim]
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            outputs = [p.communicate(timeout=300) for p in survivors]
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        for p, (_, stderr) in zip(survivors, outputs, strict=True):
            assert p.returncode == 0, stderr

        trials = _trials(url)
        states = Counter(t.state for t in trials)
        assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0  # nothing stuck
        assert sorted(t.number for t in trials) == list(range(len(trials)))  # unique, none missing
        steps = [t for t in trials if is_step(t)]
        assert len(steps) == STEPS  # the budget is taken under the study lock: no process overshoots
        lost = [t for t in trials if t.user_attrs.get("fail_stage") == LOST]
        assert lost, "the killed process held running trials: they must be failed and retried"
        retries = Counter(t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs)
        assert retries == Counter({t.number: 1 for t in lost})  # each lost trial retried exactly once
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        keys = [tuple(sorted(t.params.items())) for t in complete]
        assert len(keys) == len(set(keys))  # no candidate scored twice
        victim_pid = f":{victim.pid}"
        assert {t.user_attrs["worker"] for t in complete if not t.user_attrs["worker"].endswith(victim_pid)}

        best = min(complete, key=lambda t: (t.value, t.number))
        tables = []
        for k in range(PROCESSES):
            report = run_cli("report", str(tmp_path / f"p{k}"))
            assert report.returncode == 0, report.stderr
            tables.append(report.stdout)
        assert tables[0] == tables[1] == tables[2]  # the same top table from every process's folder
        assert f"{best.value:.3f}" in tables[0]
        for stdout, _ in outputs:
            assert "E_c =" in stdout


def test_processes_starting_together_on_an_empty_database():
    """A Slurm array's tasks start at once: all but one lose the race to create optuna's tables."""
    from upotbo.storage.scratch import scratch_database

    code = (
        "import sys; from upotbo.storage.study_db import open_study; "
        "open_study(sys.argv[1], {'pool': ['Zr']}, resume=False, join=True); print('joined')"
    )
    with scratch_database(SERVER, prefix="upotbo_test") as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [out.strip() for out, _ in outputs] == ["joined"] * 6, [err[-300:] for _, err in outputs]
        assert len(optuna.get_all_study_summaries(url)) == 1
