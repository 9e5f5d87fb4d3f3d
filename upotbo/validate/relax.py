"""Step 1: relax positions and cell with the potential (``relax_batch``: ASE FIRE + UnitCellFilter)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pymatgen.core import Structure

from upotbo.potentials import Potential, relax_batch
from upotbo.properties import CohesiveEnergy


@dataclass
class Relaxed:
    """Energies in eV per cell, E_c in eV/atom; ``error`` set when the relaxation failed."""

    structure: Structure
    energy: float
    initial_energy: float
    value_initial: float
    value: float
    steps: int
    converged: bool
    error: str | None = None

    @property
    def relaxation_energy(self) -> float:
        """eV/atom gained by relaxing (≤ 0)."""
        return (self.energy - self.initial_energy) / len(self.structure)


def relax_crystals(
    potential: Potential,
    structures: list[Structure],
    fmax: float,
    steps: int,
    stop: Callable[[int, int, float], bool] | None = None,
) -> list[Relaxed]:
    """Relax all together (one batched potential call per step); E_c before and after. ``stop`` as in
    ``relax_batch`` (ends one structure's relaxation early)."""
    prop = CohesiveEnergy()
    out = []
    for start, r in zip(
        structures, relax_batch(potential, structures, steps=steps, fmax=fmax, stop=stop), strict=True
    ):
        if r.error is not None:
            out.append(
                Relaxed(start, math.nan, r.initial_energy, math.nan, math.nan, r.steps, False, r.error)
            )
            continue
        out.append(
            Relaxed(
                structure=r.structure,
                energy=r.energy,
                initial_energy=r.initial_energy,
                value_initial=prop.value(start, r.initial_energy, potential),
                value=prop.value(r.structure, r.energy, potential),
                steps=r.steps,
                converged=r.converged,
            )
        )
    return out
