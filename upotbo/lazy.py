"""Package names imported on first use (PEP 562), so that the CLI's argument parsing, ``--help`` and
a helper process unpickling one function do not pay for pymatgen, optuna, matplotlib or torch before
any work is asked for."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` for ``package`` and its ``__all__``: ``homes`` maps each module (of the
    package, or a whole dotted path) to the names it gives, separated by spaces."""
    where = {name: home for home, names in homes.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        home = where[name]
        return getattr(import_module(home if "." in home else f"{package}.{home}"), name)

    return __getattr__, sorted(where)
