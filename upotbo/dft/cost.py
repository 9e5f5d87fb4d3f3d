"""What a GPAW single point will cost, before it runs: for choosing which crystals are worth a label.

A plane-wave SCF's time grows with the irreducible k-points, the valence electrons (bands) and the
real-space grid (the cell's volume at a given cutoff). On the 12 labels of a paper42 run (2 cores,
500 eV, k-density 4), seconds / (IBZ points x valence electrons x grid points / 1e6) ranged 2.8-14.2,
median 6: the product ranks cells within a factor of about two, which is what a budget needs. A
symmetric 2-atom rock salt has 47 IBZ points and took 26-35 s; a 3-atom P1 cell has 316-362 and took
344-678 s; a 5-atom P1 Nb2Ru3 (74 valence electrons) about 40 min.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pymatgen.core import Structure

from upotbo.dft.settings import DFTSettings

SECONDS_PER_UNIT = 6.0  # the median above, 2 cores
GRID_PER_A3_AT_500_EV = 259.0  # real-space points per Å^3 GPAW chose at 500 eV (5832 for 22.5 Å^3 NbC)


def irreducible_kpoints(structure: Structure, kdensity: float) -> int:
    """k-points GPAW keeps after symmetry and time reversal, for ``kpts={'density': d, 'gamma': True}``."""
    import spglib
    from ase.calculators.calculator import kpts2sizeandoffsets
    from pymatgen.io.ase import AseAtomsAdaptor

    size, _ = kpts2sizeandoffsets(density=kdensity, gamma=True, atoms=AseAtomsAdaptor.get_atoms(structure))
    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    mapping, _ = spglib.get_ir_reciprocal_mesh(np.asarray(size, dtype=int), cell, is_shift=[0, 0, 0])
    return int(len(np.unique(mapping)))


@cache
def valence_electrons(element: str) -> int:
    """Valence electrons of GPAW's PBE setup for ``element`` (semicore states included, e.g. Nb 13)."""
    from gpaw.setup_data import SetupData

    return int(SetupData(element, "PBE").Nv)


def estimated_seconds(structure: Structure, settings: DFTSettings) -> float:
    """Rough wall time of one GPAW PBE single point on 2 cores (within about a factor of two)."""
    electrons = sum(valence_electrons(site.specie.symbol) for site in structure)
    grid = structure.volume * GRID_PER_A3_AT_500_EV * (settings.ecut / 500.0) ** 1.5
    return SECONDS_PER_UNIT * irreducible_kpoints(structure, settings.kdensity) * electrons * grid / 1e6
