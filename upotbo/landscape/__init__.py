"""UMAP maps of the potential-energy landscape over s, (c, s) and (a, c, s) (paper Fig. 2).

Built on the search's own space, builder, potential, property and run database; see
``docs/landscape.md``. ``sampling`` says which crystals, ``job`` streams them (resumable),
``descriptor`` and ``embed`` make the 2-D map, ``maps`` and ``plot`` write it out. Names are imported
lazily (PEP 562) so that the CLI's argument parsing does not load torch and umap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "crystal_embedding": "descriptor",
    "MIN_POINTS": "embed",
    "umap_2d": "embed",
    "Estimate": "job",
    "JobProgress": "job",
    "JobResult": "job",
    "LandscapeJob": "job",
    "MapPoints": "maps",
    "dft_overlay": "maps",
    "place_run": "maps",
    "write_map": "maps",
    "MapSpec": "sampling",
    "draw": "sampling",
    "formula_map": "sampling",
    "pool_map": "sampling",
    "space_map": "sampling",
    "stoichiometry_map": "sampling",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
