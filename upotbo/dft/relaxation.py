"""DFT relaxation of positions and cell with the crystal's symmetry kept."""

from __future__ import annotations

from ase import Atoms

from upotbo.dft.settings import DFTSettings


def relax(atoms: Atoms, settings: DFTSettings) -> float:
    """Relax ``atoms`` (with a GPAW calculator attached) in place; returns the final energy (eV).

    The crystal's symmetry is kept (``FixSymmetry``), so GPAW keeps its k-point reduction throughout
    (without symmetry a 2-atom fcc cell at k-density 4 took > 15 min per single point).
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms.set_constraint(FixSymmetry(atoms))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=settings.fmax, steps=settings.relax_steps)
    return float(atoms.get_potential_energy())
