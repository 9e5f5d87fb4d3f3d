"""Helper processes that start fast and never outlive the search or print over it.

The potential's processes, the scoring process and the build workers are forked by a fork server
(multiprocessing's ``forkserver``; ``spawn`` where there is none), which imports what they need once:
torch and the potential's package take about 3 s to import, and with every helper importing them
itself on 2 cores, the first crystal was scored 7.5 s after the command; the search starts the server
first thing (``start_helpers``), so the imports also run beside its own start-up. Forking the
server is safe where forking the search is not: it holds no threads of torch or of the search.

A scheduler's ``kill -9`` (walltime) reaches only the main process: the fork server and each helper
therefore ask the kernel for SIGKILL when their parent dies (Linux ``PR_SET_PDEATHSIG``; the server
as its first import, ``server_guard``), so no process is left on the node; with them gone,
multiprocessing's resource tracker sees its pipe close and exits too. Ctrl-C in a terminal signals
the whole process group: helpers ignore SIGINT, so only the main process reacts (stores what is
scored, stops its helpers) and no helper prints a traceback.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

from upotbo.search.cores import set_torch_threads

_PR_SET_PDEATHSIG = 1
_HELD: list[Any] = []  # in a worker of ``helpers_holding``: its copy of the object


def helper_context() -> BaseContext:
    """Where helpers come from: the fork server, or ``spawn`` on a platform without one."""
    forkserver = "forkserver" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if forkserver else "spawn")


def start_helpers(modules: Sequence[str] = ()) -> None:
    """Start the fork server now (if not running), importing ``modules`` there once for every helper.

    Called first thing by a search, and by every pool before it starts (then without ``modules``: a
    server already running keeps what it imported). The server is tied to this process's life only
    when started from the main thread: the kernel's parent-death signal follows the starting
    thread, and a worker thread that ends would take the server with it."""
    context = helper_context()
    if context.get_start_method() != "forkserver":
        return
    guard = ["upotbo.search.server_guard"] if threading.current_thread() is threading.main_thread() else []
    context.set_forkserver_preload([*guard, "upotbo.search.processes", *modules])
    os.environ["UPOTBO_SEARCH_PID"] = str(os.getpid())  # the guard's check that its parent lives
    multiprocessing.forkserver.ensure_running()


def child_setup(parent: int) -> None:
    """Initializer of every helper process (see the module docstring); ``parent``: the search's pid.

    A search killed while the helper was still starting is noticed here: the helper has been
    re-parented by then, or the search's pid is gone, so it exits instead of waiting forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1 or not _alive(parent):
        os._exit(1)


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end it there; a spawned helper's parent is the search
        return os.getppid() == pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid
        return False
    return True


def stop_children() -> None:
    """Kill this process's worker processes at once (an interrupted search abandons the batches in
    flight instead of waiting minutes for them: a solo run asks them again on ``--resume``)."""
    for child in multiprocessing.active_children():
        child.kill()
    for child in multiprocessing.active_children():
        child.join(timeout=5)


def helper_pool(workers: int, initializer: Any, initargs: tuple = ()) -> ProcessPoolExecutor:
    """``workers`` helper processes, each first running ``child_setup`` (in ``initializer``)."""
    start_helpers()
    return ProcessPoolExecutor(
        workers, mp_context=helper_context(), initializer=initializer, initargs=initargs
    )


def helpers_holding(workers: int, payload: bytes, threads: int | None = None) -> ProcessPoolExecutor:
    """``workers`` helper processes (forked by the fork server, never by the search: torch's thread
    pools are live here), each holding the object pickled in ``payload`` (``held()`` there) and, given
    ``threads``, running torch on that many threads."""
    return helper_pool(workers, _hold, (payload, os.getpid(), threads))


def held() -> Any:
    """The object this worker of ``helpers_holding`` holds."""
    return _HELD[0]


def _hold(payload: bytes, parent: int, threads: int | None) -> None:
    child_setup(parent)
    _HELD[:] = [pickle.loads(payload)]
    if threads is not None:
        set_torch_threads(threads)
