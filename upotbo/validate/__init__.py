"""Validation of a run's finds (issue #5): relaxation, symmetry, convex hull, phonons, DFT spot checks.

Names are imported lazily (PEP 562) so that ``upotbo --help`` and the CLI's argument parsing do not
pay for pymatgen, matplotlib and the potential before any work is asked for.
"""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "inputs": "Crystal from_cifs from_run",
        "upotbo.dft": "DFTResult DFTSettings dft_cohesive",
        "phonons": "PhononResult phonons",
        "upotbo.thermo.references": "Reference relax_references",
        "relax": "Relaxed relax_crystals",
        "runner": "ValidationSettings validate",
        "upotbo.crystal.prototypes": "merge_duplicates prototype_name spacegroup standard_cells",
    },
)
