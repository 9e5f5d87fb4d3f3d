"""Validation of a run's finds (issue #5): relaxation, symmetry, convex hull, phonons, DFT spot checks.

Names are imported lazily (PEP 562) so that ``upotbo --help`` and the CLI's argument parsing do not
pay for pymatgen, matplotlib and the potential before any work is asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Crystal": "inputs",
    "from_cifs": "inputs",
    "from_run": "inputs",
    "DFTResult": "upotbo.dft",
    "DFTSettings": "upotbo.dft",
    "dft_cohesive": "upotbo.dft",
    "PhononResult": "phonons",
    "phonons": "phonons",
    "Reference": "upotbo.thermo.references",
    "relax_references": "upotbo.thermo.references",
    "Relaxed": "relax",
    "relax_crystals": "relax",
    "ValidationSettings": "runner",
    "validate": "runner",
    "merge_duplicates": "upotbo.crystal.prototypes",
    "prototype_name": "upotbo.crystal.prototypes",
    "spacegroup": "upotbo.crystal.prototypes",
    "standard_cells": "upotbo.crystal.prototypes",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    where = _WHERE[name]  # a module of this package, or a whole dotted path (the DFT part's names)
    return getattr(import_module(where if "." in where else f"{__name__}.{where}"), name)
