"""The cores a search may use, and the share other processes leave it (read from /proc)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from upotbo.errors import InputError
from upotbo.search import cores
from upotbo.search.cores import CoreShare, available_cores, set_torch_threads

CPUS = len(os.sched_getaffinity(0))
BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


def test_available_cores_is_the_least_of_cpu_set_omp_and_quota(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cores, "_CGROUP_CPU_MAX", tmp_path / "absent")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert available_cores() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert available_cores() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")  # not a count: ignored, as OpenMP does
    assert available_cores() == 4
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(cores, "_CGROUP_CPU_MAX", quota)
    quotas = [("max 100000", 4), ("150000 100000", 2), ("50000 100000", 1), ("900000 100000", 4)]
    for text, expected in quotas:
        quota.write_text(text + "\n")
        assert available_cores() == expected, text


def test_budget_must_be_a_positive_count():
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError, match="give a whole number of cores"):
            CoreShare(bad)


def _wait_interval() -> None:
    time.sleep(cores.MIN_INTERVAL + 0.5)


def test_an_idle_machine_leaves_the_whole_budget():
    share = CoreShare(CPUS)
    _wait_interval()
    assert share.threads() == CPUS


def test_busy_neighbours_take_their_cores_and_give_them_back():
    """Processes that are not the search's keep every CPU busy: torch drops to one thread."""
    share, pinned = CoreShare(CPUS), CoreShare(CPUS, adaptive=False)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(CPUS)]
    try:
        time.sleep(0.5)
        share.threads()
        _wait_interval()
        assert share.threads() == 1
        assert pinned.threads() == CPUS  # --threads N: whatever the load
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    _wait_interval()
    assert share.threads() == CPUS


def _burn() -> None:
    exec(BURN)


def test_the_search_own_processes_are_not_others():
    """A build worker or the scoring process keeping a CPU busy is the search's own work."""
    share = CoreShare(CPUS)
    worker = multiprocessing.get_context("spawn").Process(target=_burn, daemon=True)
    worker.start()
    try:
        time.sleep(1.0)
        share.threads()
        _wait_interval()
        assert share.threads() == CPUS
    finally:
        worker.kill()
        worker.join()


def test_the_answer_is_kept_between_looks_closer_than_a_second():
    share = CoreShare(CPUS)
    assert share.threads() == CPUS  # no interval yet: the budget


def test_set_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
