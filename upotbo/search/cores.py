"""How many cores a search may use, and how many of them other processes leave it right now.

A search's torch threads spin at OpenMP barriers while they wait for each other. Alone that is what
makes the small force calls of a relaxation fast; next to another busy process on the same cores the
spinning threads take turns with the other process's and every barrier waits a time slice: two
default searches on 2 cores each ran at 0.15-0.23 of their lone rate (``benchmarks/two_searches.py``).
One torch thread each, or ``OMP_WAIT_POLICY=PASSIVE``, gave them about two thirds of it, but passive
waiting also slowed a search alone by a quarter. So the thread count follows the load: before each
batch the search reads how busy its CPUs were since the last batch (``/proc/stat``) minus its own
processes' share (``/proc/PID/stat``), and runs torch on the cores left, at least one.

The thread count can move the potential's values in their last digits (about 1e-5 eV/atom on a batch
of relaxations: torch sums in another order), so a run that must repeat bit for bit pins the count:
``--threads N`` (``SearchConfig(threads=N)``) runs torch on N threads whatever the load. By default
the budget is ``available_cores``: the smallest of the CPUs this process may run on
(``sched_getaffinity``: Slurm's and taskset's CPU sets), ``OMP_NUM_THREADS`` when set, and a
container's CPU quota (cgroup v2 ``cpu.max``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path

from upotbo.errors import InputError

_PROC = Path("/proc")
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
MIN_INTERVAL = 1.0  # seconds: a shorter look at /proc/stat is noise, keep the last answer


def available_cores() -> int:
    """The cores this process may use: its CPU set, ``OMP_NUM_THREADS``, the container quota: the least."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """cgroup v2 ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" for none) as a number of cores."""
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def set_torch_threads(threads: int) -> None:
    """Run torch on ``threads`` threads in this process (importing it: the potentials import torch
    only on first use, and a count set after that import would miss the first calls; two one-thread
    potential processes left at the default 2 threads each ran 10-100x slower on 2 cores)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def one_blas_thread() -> AbstractContextManager:
    """NumPy's BLAS on one thread in this process while the potential runs in processes of its own.

    The main process's BLAS calls are small (a 33 x 33 ``eigh`` per BFGS step, 3 x 3 lattice algebra),
    and OpenBLAS's other threads spin after each one: 35 s of CPU in the README's search, on the cores
    the potential's processes need (main process 70 s of CPU, 34 s with one BLAS thread).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


class CoreShare:
    """The cores of a ``budget`` that other processes leave free, read again at most once a second
    (``adaptive=False``: always the whole budget)."""

    def __init__(self, budget: int, adaptive: bool = True) -> None:
        if not isinstance(budget, int) or budget < 1:
            raise InputError(f"threads={budget!r}: give a whole number of cores, at least 1")
        self.budget, self.adaptive = budget, adaptive
        self._cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._free = budget
        self._last = self._sample()

    def threads(self) -> int:
        """Cores free for this search now: its budget, less what others kept busy since the last look."""
        if not self.adaptive:
            return self.budget
        now = self._sample()
        if now is None or self._last is None:
            return self._free
        wall = now[0] - self._last[0]
        if wall < MIN_INTERVAL:
            return self._free
        busy = (now[1] - self._last[1]) / self._tick / wall
        own = (now[2] - self._last[2]) / self._tick / wall
        others = max(0.0, busy - own)
        self._free = max(1, min(self.budget, round(len(self._cpus) - others)))
        self._last = now
        return self._free

    def _sample(self) -> tuple[float, int, int] | None:
        """(monotonic seconds, busy ticks of this process's CPUs, ticks of this process and its children)."""
        try:
            busy = _busy_ticks(self._cpus)
            own = sum(_process_ticks(pid) for pid in _own_pids())
        except (OSError, ValueError, IndexError):
            return None  # no /proc (not Linux): the budget, unadjusted
        return time.monotonic(), busy, own


def _busy_ticks(cpus: list[int]) -> int:
    """Ticks the given CPUs spent on anything but idling, since boot."""
    wanted = {f"cpu{i}" for i in cpus}
    total = 0
    for line in (_PROC / "stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
            total += user + nice + system + irq + softirq + steal
    return total


def _own_pids() -> list[int]:
    return [os.getpid()] + [child.pid for child in multiprocessing.active_children() if child.pid]


def _process_ticks(pid: int) -> int:
    """User + system ticks of one process, all its threads (0 if it has just exited)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
