"""spglib's standard cells with exact symmetry, shared by validation (phonons) and the DFT part.

It lives outside ``validate`` and ``dft`` because both use it and neither should depend on the other's.
"""

from __future__ import annotations

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

SYMPREC = 0.1  # Å, spglib tolerance: stored crystals' space groups are named, and validated, at it


def standard_cells(structure: Structure, symprec: float = SYMPREC) -> tuple[Structure, Structure]:
    """spglib's (conventional, primitive) standard cells, symmetrized to exact positions.

    Both come from one analysis, so they share a Cartesian frame (the phonon path relies on it), and
    exact symmetry is what GPAW's symmetry analysis needs (a slightly off cell raised
    ``SymmetryAnalysisBug`` here on a CHGNet-relaxed TiC).
    """
    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    refined = sga.get_refined_structure()
    sga = SpacegroupAnalyzer(refined, symprec=1e-3)
    return sga.get_conventional_standard_structure(), sga.get_primitive_standard_structure()
