"""One writer per run directory: an advisory lock that the kernel drops when its process dies.

SQLite serves one writing process; two searches on one ``--out`` both ran to the end and mixed their
trials, and two fresh starts at the same moment raced to create optuna's tables. The run's writer
holds ``flock`` on ``RUN/.upotbo.lock`` for as long as it lives, with its host and pid written in the
file for whoever is refused. ``kill -9`` or a lost node releases it with the process, so a stale lock
is simply taken over. Runs sharing a study on a database server (``--join``) coordinate through the
server instead and take no lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from upotbo.errors import InputError

LOCK_FILE = ".upotbo.lock"
_HELD: dict[Path, int] = {}  # lock file -> descriptor, for this process's lifetime


def hold_run_lock(run_dir: Path) -> tuple[bool, bool]:
    """Take the run directory's lock for this process; whether this call took it (False: held
    already) and created the lock file. Another live holder: ``InputError`` naming it and the way to
    share a study."""
    path = (run_dir / LOCK_FILE).resolve()
    if path in _HELD:
        return False, False
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise InputError(
            f"run directory {str(run_dir)!r} is in use by {holder}: wait for it to end, use another "
            f"--out, or share one study between processes with --storage "
            f"postgresql://user:password@host/dbname --join"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
    _HELD[path] = fd
    return True, created


def release_run_lock(run_dir: Path, remove: bool = False) -> None:
    """Let go of the lock (a refused start); ``remove`` the file this process created."""
    path = (run_dir / LOCK_FILE).resolve()
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.close(fd)
        if remove:
            path.unlink(missing_ok=True)
