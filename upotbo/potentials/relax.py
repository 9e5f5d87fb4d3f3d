"""Batched relaxation: many ASE FIRE optimizers in lock-step over one batched potential call per step.

Each structure keeps its own ASE ``FIRE`` + ``UnitCellFilter`` (positions and cell), exactly as a
user would run it one at a time; only the force/stress evaluation is gathered into one batch per
step, so CHGNet sees tens of structures per call instead of one. Structures leave the batch as they
converge (max force below ``fmax``) or fail (NaN, lost neighbours), without disturbing the others.
``UnitCellFilter`` rather than ``FrechetCellFilter``: the latter's matrix logarithm cost more than the
potential itself in profiles here (12 s vs 28 s of CHGNet), for no fewer steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import UnitCellFilter
from ase.optimize import FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.potentials.base import Potential


@dataclass
class Relaxation:
    """Outcome for one structure; energies in eV per cell."""

    structure: Structure
    energy: float
    initial_energy: float
    steps: int
    converged: bool
    error: str | None = None


def relax_batch(
    potential: Potential,
    structures: Sequence[Structure],
    steps: int = 50,
    fmax: float = 0.05,
    relax_cell: bool = True,
    stop: Callable[[int, int, float], bool] | None = None,
) -> list[Relaxation]:
    """Relax all ``structures`` together for at most ``steps`` FIRE steps each (0 = single point).

    ``stop(index, step, energy)`` may end one structure's relaxation early (e.g. a search dropping
    candidates that cannot catch up); it is then returned as not converged, at its current geometry.
    """
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in structures]
    movers = [UnitCellFilter(a) if relax_cell else a for a in atoms]
    optimizers = [FIRE(m, logfile=None) for m in movers]
    out: list[Relaxation | None] = [None] * len(structures)
    initial = [math.nan] * len(structures)
    active = list(range(len(structures)))
    for step in range(steps + 1):
        calcs = potential.calculate(
            [AseAtomsAdaptor.get_structure(atoms[i]) for i in active],
            forces=steps > 0,
            stress=steps > 0 and relax_cell,
        )
        still = []
        for i, calc in zip(active, calcs, strict=True):
            if not calc.ok:
                out[i] = Relaxation(structures[i], math.nan, initial[i], step, False, calc.error)
                continue
            if step == 0:
                initial[i] = calc.energy
            atoms[i].calc = SinglePointCalculator(
                atoms[i], energy=calc.energy, forces=calc.forces, stress=calc.stress
            )
            converged = steps > 0 and _max_force(movers[i]) < fmax
            if converged or step == steps or (stop is not None and stop(i, step, calc.energy)):
                out[i] = Relaxation(
                    _structure(atoms[i]), calc.energy, initial[i], step, converged or steps == 0
                )
            else:
                optimizers[i].step()
                still.append(i)
        active = still
        if not active:
            break
    return out  # type: ignore[return-value]


def _max_force(mover) -> float:
    forces = mover.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max())


def _structure(atoms: Atoms) -> Structure:
    plain = atoms.copy()
    plain.calc = None
    return AseAtomsAdaptor.get_structure(plain)
