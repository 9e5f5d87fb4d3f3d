"""Cohesive energy by GPAW: E_c = (E_crystal - sum_i n_i E_atom,i) / N, both energies at the same settings.

The crystal is first symmetrized to spglib's standard primitive cell: GPAW's symmetry analysis raised
``SymmetryAnalysisBug`` on a CHGNet-relaxed TiC that was only nearly symmetric, and switching symmetry
off instead multiplies the k-points (a 2-atom fcc cell at k-density 4 then took > 15 min).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.cells import standard_cells
from upotbo.dft.isolated import atom_energy
from upotbo.dft.relaxation import relax
from upotbo.dft.settings import DFTSettings, calculator, log_file, require_gpaw
from upotbo.dft.singlepoint import gpaw_failures


@dataclass
class DFTResult:
    value: float  # E_c, eV/atom, GPAW single point on the UPot-relaxed cell
    seconds: float
    value_relaxed: float | None = None  # E_c after the DFT relaxation, when asked


def cohesive_energy(
    energy: float, structure: Structure, settings: DFTSettings, log_dir: Path | None = None
) -> float:
    """E_c (eV/atom) from the GPAW ``energy`` (eV) of ``structure`` (e.g. ``SinglePoint.energy``),
    against isolated atoms at the same ``settings``."""
    counts = structure.composition.get_el_amt_dict()
    reference = sum(n * atom_energy(el, settings, log_dir) for el, n in counts.items())
    return (energy - reference) / len(structure)


def dft_cohesive(
    structure: Structure, settings: DFTSettings, log_dir: Path | None = None, name: str = "crystal"
) -> DFTResult:
    """E_c (eV/atom) of ``structure`` by GPAW, and after a DFT relaxation if ``settings.relax``."""
    require_gpaw()
    start = time.perf_counter()
    with gpaw_failures():
        _, primitive = standard_cells(structure)
        atoms = AseAtomsAdaptor.get_atoms(primitive)
        atoms.calc = calculator(settings, log_file(log_dir, name))
        value = cohesive_energy(float(atoms.get_potential_energy()), primitive, settings, log_dir)
        relaxed = (
            cohesive_energy(relax(atoms, settings), primitive, settings, log_dir) if settings.relax else None
        )
    return DFTResult(value, time.perf_counter() - start, relaxed)
