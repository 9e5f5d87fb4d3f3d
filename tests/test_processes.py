"""Helper processes: forked by a fork server that imports for them once, and gone with the search."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from upotbo.search.processes import child_setup, helper_pool


def _parent() -> int:
    return os.getppid()


def _children(pid: int) -> list[int]:
    """Living processes whose parent is ``pid`` (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_helpers_are_forked_by_the_server_not_by_the_search():
    with helper_pool(1, child_setup, (os.getpid(),)) as pool:
        parent = pool.submit(_parent).result(timeout=120)
    assert parent != os.getpid()  # the fork server's child, not ours


def test_the_server_dies_with_the_search_even_while_importing():
    """A search killed right after it started the server (which imports torch and CHGNet for seconds)
    leaves no server behind: ``server_guard`` ties it to the search at its first import."""
    code = (
        "from upotbo.search.processes import DEFAULT_HELPER_MODULES, start_helpers\n"
        "start_helpers(DEFAULT_HELPER_MODULES)\n"
        "print('started', flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    search = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert search.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 10
    helpers: list[int] = []
    while not helpers and time.monotonic() < deadline:
        helpers = _children(search.pid)
        time.sleep(0.05)
    assert helpers, "no fork server was started"
    search.kill()
    search.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in helpers), "a helper outlived the killed search"


def test_a_helper_of_the_potential_does_not_import_the_search():
    """Unpickling the potential worker's function costs no optuna (upotbo.search loads lazily)."""
    code = (
        "import sys\n"
        "from upotbo.search.split_potential import _calculate\n"
        "print(sorted(m for m in ('optuna', 'upotbo.search.study') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
