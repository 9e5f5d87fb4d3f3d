"""A GPAW single point: energy, forces and stress of a cell as given (labels for fitting a potential).

The cell is not symmetrized: forces on a distorted cell are the point of a label. GPAW's symmetry
analysis can fail on a cell that is only nearly symmetric; pass such a cell through
``upotbo.cells.standard_cells`` first (``cohesive.dft_cohesive`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.dft.settings import DFTSettings, calculator, log_file, require_gpaw
from upotbo.errors import CandidateFailed, InputError


@dataclass(frozen=True, eq=False)
class SinglePoint:
    """ASE's units and sign convention (``Atoms.get_stress``); trainers that want stress in GPa convert."""

    energy: float  # eV, total energy of the cell
    forces: np.ndarray  # (n_atoms, 3), eV/Å
    stress: np.ndarray  # (3, 3), eV/Å^3


@contextmanager
def gpaw_failures() -> Iterator[None]:
    """Turn a GPAW error into ``CandidateFailed`` with a one-line reason (GPAW's errors are many and
    specific; the caller records the reason for this crystal and goes on). ``InputError`` passes."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        raise CandidateFailed(f"GPAW failed: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}") from exc


def single_point(
    structure: Structure, settings: DFTSettings, log_dir: Path | None = None, name: str = "crystal"
) -> SinglePoint:
    """Energy, forces and stress of ``structure`` by GPAW PBE at ``settings``."""
    require_gpaw()
    with gpaw_failures():
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator(settings, log_file(log_dir, name))
        return SinglePoint(
            float(atoms.get_potential_energy()),
            np.asarray(atoms.get_forces(), dtype=float),
            np.asarray(atoms.get_stress(voigt=False), dtype=float),
        )
