"""UMAP maps of the potential-energy landscape over s, (c, s) and (a, c, s) (paper Fig. 2).

Built on the search's own space, builder, potential, property and run database; see
``docs/landscape.md``. ``sampling`` says which crystals, ``job`` streams them (resumable),
``descriptor`` and ``embed`` make the 2-D map, ``maps`` and ``plot`` write it out. Names are imported
lazily (PEP 562) so that the CLI's argument parsing does not load torch and umap.
"""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "descriptor": "crystal_embedding",
        "embed": "MIN_POINTS umap_2d",
        "job": "Estimate JobProgress JobResult LandscapeJob",
        "maps": "MapPoints dft_overlay place_run write_map",
        "sampling": "MapSpec draw formula_map pool_map space_map stoichiometry_map",
    },
)
