"""Helper processes that never outlive the search or print over it.

The build workers and the scoring process are spawned children of the search. A scheduler's
``kill -9`` (walltime) reaches only the main process: each child therefore asks the kernel for
SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``), so no worker is left on the node; with
them gone, multiprocessing's resource tracker sees its pipe close and exits too. Ctrl-C in a
terminal signals the whole process group: children ignore SIGINT, so only the main process
reacts (stores what is scored, stops its children) and no worker prints a traceback.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from upotbo.search.cores import set_torch_threads

_PR_SET_PDEATHSIG = 1
_HELD: list[Any] = []  # in a worker of ``spawn_holding``: its copy of the object


def child_setup(parent: int) -> None:
    """Initializer of every worker process (see the module docstring); ``parent``: the search's pid.

    A parent killed while the child was still starting (importing for seconds) is noticed here: the
    child has been re-parented by then, so it exits instead of waiting forever for work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def stop_children() -> None:
    """Kill this process's worker processes at once (an interrupted search abandons the batches in
    flight instead of waiting minutes for them: a solo run asks them again on ``--resume``)."""
    for child in multiprocessing.active_children():
        child.kill()
    for child in multiprocessing.active_children():
        child.join(timeout=5)


def spawn_holding(workers: int, payload: bytes, threads: int | None = None) -> ProcessPoolExecutor:
    """``workers`` spawned processes (not forked: torch's thread pools are live here), set up as
    ``child_setup`` says, each holding the object pickled in ``payload`` (``held()`` there) and, given
    ``threads``, running torch on that many threads."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_hold,
        initargs=(payload, os.getpid(), threads),
    )


def held() -> Any:
    """The object this worker of ``spawn_holding`` holds."""
    return _HELD[0]


def _hold(payload: bytes, parent: int, threads: int | None) -> None:
    child_setup(parent)
    _HELD[:] = [pickle.loads(payload)]
    if threads is not None:
        set_torch_threads(threads)
