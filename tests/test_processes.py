"""Helper processes: forked by a fork server that imports for them once, and gone with the search."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import family, gone_within, wait_for

from upotbo.search.processes import child_setup, helper_pool


def _parent() -> int:
    return os.getppid()


def test_helpers_are_forked_by_the_server_not_by_the_search():
    with helper_pool(1, child_setup, (os.getpid(),)) as pool:
        parent = pool.submit(_parent).result(timeout=120)
    assert parent != os.getpid()  # the fork server's child, not ours


def test_the_server_dies_with_the_search_even_while_importing():
    """A search killed right after it started the server (which imports torch and CHGNet for seconds)
    leaves no server behind: ``server_guard`` ties it to the search at its first import."""
    code = (
        "from upotbo.cli import DEFAULT_HELPER_MODULES\n"
        "from upotbo.search.processes import start_helpers\n"
        "start_helpers(DEFAULT_HELPER_MODULES)\n"
        "print('started', flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    search = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert search.stdout.readline().strip() == "started"

    def server() -> bool:
        return any("forkserver" in " ".join(p.cmdline()) for p in family(search))

    wait_for(server, seconds=10, every=0.02)
    helpers = family(search)
    search.kill()
    search.wait()
    assert gone_within(helpers, 5), "a helper outlived the killed search"


def test_a_helper_of_the_potential_does_not_import_the_search():
    """Unpickling the potential worker's function costs no optuna (upotbo.search loads lazily)."""
    code = (
        "import sys\n"
        "from upotbo.search.split_potential import _calculate\n"
        "print(sorted(m for m in ('optuna', 'upotbo.search.study') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_command_starts_the_default_potentials_helpers():
    """The search command names the default potential's helper modules before it can import it."""
    from upotbo.cli import DEFAULT_HELPER_MODULES
    from upotbo.potentials.chgnet import CHGNetPotential

    assert DEFAULT_HELPER_MODULES == CHGNetPotential.worker_modules
