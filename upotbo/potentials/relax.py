"""Batched relaxation: many ASE optimizers in lock-step over one batched potential call per step.

Each structure keeps its own ASE optimizer (``FIRE`` or ``BFGS``) + ``UnitCellFilter`` (positions and
cell), exactly as a user would run it one at a time; only the force/stress evaluation is gathered into
one batch per step, so CHGNet sees tens of structures per call instead of one. Structures leave the
batch as they converge (max force below ``fmax``) or fail (NaN, lost neighbours), without disturbing the
others.
``UnitCellFilter`` rather than ``FrechetCellFilter``: the latter's matrix logarithm cost more than the
potential itself in profiles here (12 s vs 28 s of CHGNet), for no fewer steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import UnitCellFilter
from ase.optimize import BFGS, FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.errors import InputError
from upotbo.potentials.base import Potential

# ASE optimizers a relaxation can step with (both move at most 0.2 Å per step, ASE's default). On the
# starts a paper42 search relaxes, BFGS comes within 0.05 eV/atom of FIRE's 40-step energy in a median
# 15.5 steps (benchmarks/optimizers.py); its Hessian, 3(N+3) square for N atoms, costs nothing beside
# the potential's call.
OPTIMIZERS = {"fire": FIRE, "bfgs": BFGS}


def check_optimizer(name: str) -> str:
    """``name`` if it is one of ``OPTIMIZERS``, else one line naming the choices."""
    if name not in OPTIMIZERS:
        raise InputError(f"optimizer {name!r} unknown: use one of {', '.join(OPTIMIZERS)}")
    return name


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
    optimizer: str = "fire",
) -> list[Relaxation]:
    """Relax all ``structures`` together for at most ``steps`` optimizer steps each (0 = single point).

    ``stop(index, step, energy)`` may end one structure's relaxation early (e.g. a search dropping
    candidates that cannot catch up); it is then returned as not converged, at its current geometry.
    """
    pool = RelaxPool(potential, steps, fmax, relax_cell, optimizer=optimizer)
    for i, structure in enumerate(structures):
        pool.add(i, structure)
    out: list[Relaxation | None] = [None] * len(structures)
    while pool:
        for i, relaxation in pool.step(stop):
            out[i] = relaxation
    return out  # type: ignore[return-value]


@dataclass
class _Relaxing:
    start: Structure
    atoms: Atoms
    mover: Atoms | UnitCellFilter
    optimizer: FIRE | BFGS
    step: int = 0
    initial_energy: float = math.nan
    screened: bool = False  # its starting energy passed ``stop`` (``energy_first``)


class RelaxPool:
    """Crystals relaxing side by side, one batched potential call per ``step`` for all of them.

    Crystals can join at any step (``add``) and leave as they finish, so a caller can keep the batch
    at the size that runs the potential fastest instead of letting it shrink as relaxations end
    (``relax_batch`` is the fixed-membership case). Each crystal keeps its own ASE optimizer, so its
    trajectory does not depend on who else is in the batch.

    ``energy_first``: a crystal's first step asks the potential for its energy alone, and ``stop`` may
    end it there, before any force is computed. A search's random candidates are pruned on that energy
    four times out of five, and CHGNet computes energies alone about 3.7 times as fast as with forces and
    stresses on them (85 vs 23 crystals/s, the geometries of a paper42 search), dense starting cells
    being the costliest of all; the survivors pay one energy evaluation more, made in the same call
    as the other crystals' forces (``step``).
    """

    def __init__(
        self,
        potential: Potential,
        steps: int,
        fmax: float = 0.05,
        relax_cell: bool = True,
        energy_first: bool = False,
        optimizer: str = "fire",
    ) -> None:
        self.potential, self.steps, self.fmax, self.relax_cell = potential, steps, fmax, relax_cell
        self.energy_first, self.optimizer = energy_first, OPTIMIZERS[check_optimizer(optimizer)]
        self.evaluations = 0  # crystals the potential has evaluated, over all calls
        self._active: dict[Hashable, _Relaxing] = {}

    def __len__(self) -> int:
        return len(self._active)

    def add(self, key: Hashable, structure: Structure) -> None:
        """Start relaxing ``structure`` at the next step; ``key`` names it in what ``step`` returns."""
        atoms = AseAtomsAdaptor.get_atoms(structure)
        mover = UnitCellFilter(atoms) if self.relax_cell else atoms
        self._active[key] = _Relaxing(structure, atoms, mover, self.optimizer(mover, logfile=None))

    def step(
        self, stop: Callable[[Hashable, int, float], bool] | None = None
    ) -> list[tuple[Hashable, Relaxation]]:
        """One potential call on every crystal in the pool, one optimizer step for those that go on;
        returns the crystals that finished (converged, failed, out of steps or ``stop``-ped).

        With ``energy_first``, the crystals that just joined get their energy alone in the same call
        (``Potential.calculate_mixed``: one round trip to the potential's processes, not two), and
        those ``stop`` does not end take their first forces at the next step."""
        moving = self.steps > 0
        screening = self.energy_first and moving and stop is not None
        keys = list(self._active)
        new = {k for k in keys if screening and self._active[k].step == 0 and not self._active[k].screened}
        self.evaluations += len(keys)
        structures = [
            self._active[k].start if k in new else AseAtomsAdaptor.get_structure(self._active[k].atoms)
            for k in keys
        ]
        forces = [moving and k not in new for k in keys]
        calcs = self.potential.calculate_mixed(structures, forces, stress=moving and self.relax_cell)
        done: list[tuple[Hashable, Relaxation]] = []
        for key, calc in zip(keys, calcs, strict=True):
            r = self._active[key]
            if key in new:
                if not calc.ok:
                    done.append((key, Relaxation(r.start, math.nan, math.nan, 0, False, calc.error)))
                elif stop(key, 0, calc.energy):  # type: ignore[misc]
                    done.append((key, Relaxation(r.start, calc.energy, calc.energy, 0, False)))
                else:
                    r.screened = True
                continue
            if not calc.ok:
                done.append((key, Relaxation(r.start, math.nan, r.initial_energy, r.step, False, calc.error)))
                continue
            if r.step == 0:
                r.initial_energy = calc.energy
            r.atoms.calc = _Computed(r.atoms, energy=calc.energy, forces=calc.forces, stress=calc.stress)
            converged = moving and _max_force(r.mover) < self.fmax
            stopped = stop is not None and not r.screened and stop(key, r.step, calc.energy)
            if converged or r.step == self.steps or stopped:
                relaxed = Relaxation(
                    _structure(r.atoms), calc.energy, r.initial_energy, r.step, converged or not moving
                )
                done.append((key, relaxed))
            else:
                r.optimizer.step()
                r.step += 1
                r.screened = False
        for key, _ in done:
            self._active.pop(key, None)
        return done


class _Computed(SinglePointCalculator):
    """The potential's results at the geometry they were computed for. A pool sets new ones after
    every step, before anyone asks, so ASE's check that the atoms did not move since (an ``allclose``
    on positions and cell per query, three queries per step) is skipped: 4 s of a 2,000-step search."""

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        return []


def _max_force(mover) -> float:
    forces = mover.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max())


def _structure(atoms: Atoms) -> Structure:
    plain = atoms.copy()
    plain.calc = None
    return AseAtomsAdaptor.get_structure(plain)
