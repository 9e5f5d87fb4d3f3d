"""Score a batch of crystals: (optional) batched relaxation, then the target property."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition, Lattice, Structure

from upotbo.errors import CandidateFailed
from upotbo.potentials.base import Potential
from upotbo.potentials.relax import Relaxation, check_optimizer, relax_batch
from upotbo.properties.base import Property
from upotbo.properties.constraints import Constraint, total_violation


@dataclass
class Scored:
    """One crystal's outcome: value of the property, or ``error`` with the reason."""

    structure: Structure
    value: float = math.nan
    initial_value: float = math.nan
    energy: float = math.nan
    relax_steps: int = 0
    error: str | None = None
    # every property besides the objective (further objectives, constrained ones): its value or why none
    properties: dict[str, float | str] = field(default_factory=dict)
    violation: float = 0.0  # summed over the constraints (0: feasible)


PRUNE_EVERY = 10  # relaxation steps between pruning checks
FIRST_CHECK = 1.5  # the single point before any relaxation step is pruned at 1.5x the margin
STRAIN = 0.05  # std of the random symmetric strain applied before relaxing
RATTLE = 0.05  # Å, std of the random displacement of each atom before relaxing
FINISH_STEPS = 200  # further FIRE steps (cell and ions) for properties that need a minimum
FINISH_FMAX = 0.02  # eV/Å, and the cell's stress scaled alike (ASE's UnitCellFilter)


def break_symmetry(structure: Structure, strain: float = STRAIN, rattle: float = RATTLE) -> Structure:
    """A slightly strained and rattled copy, so a relaxation can leave a symmetric saddle point.

    Forces keep a crystal's symmetry, so a symmetric start only relaxes within its space group: CsCl-type
    ZrC stays at -6.86 eV/atom, while the same cell strained 5 % and rattled 0.05 Å relaxes to rock salt
    (-7.88) in 40 FIRE steps (NbC: -6.98 -> -7.92). AIRSS and ab initio random searches do the same.
    Deterministic: the random numbers are seeded by the structure itself (same candidate, same start).
    """
    digest = hashlib.sha256(np.round(structure.cart_coords, 6).tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    eps = rng.normal(0.0, strain, (3, 3))
    lattice = Lattice(structure.lattice.matrix @ (np.eye(3) + (eps + eps.T) / 2))
    shifts = lattice.get_fractional_coords(rng.normal(0.0, rattle, (len(structure), 3)))
    return Structure(lattice, structure.species, structure.frac_coords + shifts)


class Evaluator:
    """Potential + property + relaxation budget; ``score`` takes and returns batches.

    ``objectives``: further objectives of a Pareto search, computed for every crystal like the first
    (a crystal one of them fails on has no place on the front: it fails). ``constraints``: properties
    computed for every crystal, a value that breaks a bound makes the crystal infeasible, not failed.

    With ``prune_margin`` set, a relaxation is stopped at a check (every 10 steps) when the candidate is
    still more than the margin above the best value known, the margin shrinking linearly to a third of
    itself by the last step: relaxations gain ~1-2 eV/atom at most, so such a candidate cannot become
    the optimum, and its steps are better spent on others (successive halving over relaxations).
    The first check is the single point itself, at 1.5x the margin: in a 42-element pool most
    candidates (alkali halides, chalcogenides) sit 3+ eV/atom above the best and need no force call.
    The stored value is then the partly relaxed one, an honest upper bound. The best known includes
    the values checked in the same call, so the first batch of a run is pruned too (against its own
    leader) and the first crystals are stored after one potential call, not after a whole relaxation.
    """

    def __init__(
        self,
        potential: Potential,
        prop: Property,
        relax_steps: int = 0,
        fmax: float = 0.05,
        prune_margin: float | None = None,
        perturb: bool = True,
        constraints: tuple[Constraint, ...] = (),
        objectives: Sequence[Property] = (),
        optimizer: str = "fire",
    ) -> None:
        self.potential, self.prop, self.relax_steps, self.fmax = potential, prop, relax_steps, fmax
        self.optimizer = check_optimizer(optimizer)  # of the in-loop relaxation (``OPTIMIZERS``)
        self.prune_margin, self.perturb, self.constraints = prune_margin, perturb, tuple(constraints)
        self.objectives = tuple(objectives)

    @property
    def properties(self) -> list[Property]:
        """The objective, the further objectives and each constrained property (once each)."""
        found = {self.prop.name: self.prop}
        for p in (*self.objectives, *(c.prop for c in self.constraints)):
            found.setdefault(p.name, p)
        return list(found.values())

    @property
    def observes_run(self) -> bool:
        return any(p.observes_run for p in self.properties)

    def prepare(self, symbols: tuple[str, ...]) -> None:
        """Each property's one-off work (elemental references, competing phases) before any crystal."""
        for p in self.properties:
            p.prepare(symbols, self.potential)

    def observe(self, crystals: Sequence[tuple[Composition, float]]) -> None:
        """Tell the properties that depend on the run about crystals scored (composition, eV/cell)."""
        for p in self.properties:
            if p.observes_run and crystals:
                p.observe(crystals)

    @property
    def prunes(self) -> bool:
        """Whether relaxations are pruned (a crystal far behind on the first objective of several may
        lead on another: not then)."""
        return (
            self.prune_margin is not None
            and self.relax_steps > 0
            and self.prop.prunable
            and not self.objectives
        )

    def start(self, structures: Sequence[Structure], exact: Collection[int] = ()) -> list[Structure]:
        """Where each crystal's relaxation starts (``break_symmetry``, when relaxing and perturbing).

        ``exact``: the indices of crystals relaxed from where they are, a move's children: a child is
        its parent's relaxed crystal changed by one move, and its space group is the move's proposal
        (rock-salt NbC from rock-salt ZrC). Perturbed, children took 11.9 BFGS steps each against 5.8
        for random draws, and 10 time-to-target runs needed 42 % more potential calls (medians 2,385.5
        vs 1,682).
        """
        if self.relax_steps > 0 and self.perturb:
            return [s if i in exact else break_symmetry(s) for i, s in enumerate(structures)]
        return list(structures)

    def stopper(
        self,
        starts: Sequence[Structure] | Mapping[Hashable, Structure],
        best: float | None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Callable[[Hashable, int, float], bool] | None:
        """The ``stop`` of a relaxation of ``starts`` (indexed as the relaxation names them): pruning
        against ``best`` and, once ``cancelled()`` is true, at once."""
        prune = self._pruner(starts, best)
        if cancelled is None or self.relax_steps == 0:
            return prune
        return lambda i, step, energy: cancelled() or (prune is not None and prune(i, step, energy))

    def _pruner(
        self, starts: Sequence[Structure] | Mapping[Hashable, Structure], best: float | None
    ) -> Callable | None:
        if not self.prunes:
            return None
        sign = 1.0 if self.prop.direction == "minimize" else -1.0
        margin0 = self.prune_margin
        lead = best

        def stop(i: Hashable, step: int, energy: float) -> bool:
            nonlocal lead
            if step % PRUNE_EVERY:
                return False
            margin = margin0 * (FIRST_CHECK if step == 0 else 1.0 - 2.0 / 3.0 * step / self.relax_steps)
            try:
                value = self.prop.value(starts[i], energy, self.potential)  # type: ignore[index]
            except CandidateFailed:
                return False
            if lead is None or sign * (value - lead) < 0:
                lead = value
            return sign * (value - lead) > margin

        return stop

    def score(
        self,
        structures: Sequence[Structure],
        best: float | None = None,
        cancelled: Callable[[], bool] | None = None,
        exact: Collection[int] = (),
    ) -> list[Scored]:
        """Score a batch; ``best`` (the best value known so far) enables pruning; once ``cancelled()``
        is true, every relaxation stops at its next step (the batch is being abandoned); ``exact``:
        as in ``start``."""
        starts = self.start(structures, exact)
        stop = self.stopper(starts, best, cancelled)
        relaxed = relax_batch(
            self.potential, starts, self.relax_steps, self.fmax, stop=stop, optimizer=self.optimizer
        )
        return self.complete(starts, relaxed, cancelled)

    def complete(
        self,
        starts: Sequence[Structure],
        relaxed: Sequence[Relaxation],
        cancelled: Callable[[], bool] | None = None,
    ) -> list[Scored]:
        """Each relaxed crystal's values (objective, further objectives, constraints), batched."""
        out = [Scored(r.structure, energy=r.energy, relax_steps=r.steps, error=r.error) for r in relaxed]
        if any(p.needs_minimum for p in self.properties):
            self._finish(out, cancelled)
        ok = [i for i, s in enumerate(out) if s.error is None]
        found = self.prop.values([out[i].structure for i in ok], [out[i].energy for i in ok], self.potential)
        initial: list[float | str] = [math.nan] * len(ok)
        if self.prop.cheap:
            initial = self.prop.values(
                [starts[i] for i in ok], [relaxed[i].initial_energy for i in ok], self.potential
            )
        for i, value, start in zip(ok, found, initial, strict=True):
            value = _plausible(self.prop, value)
            if isinstance(value, str):
                out[i].error = value
            else:
                out[i].value = value
                out[i].initial_value = start if isinstance(start, float) else math.nan
        self._further([s for s in out if s.error is None])
        return out

    def _finish(self, out: list[Scored], cancelled: Callable[[], bool] | None) -> None:
        """Relax each crystal on to a true minimum (FINISH_FMAX), or fail it: the search's short
        relaxation leaves most candidates under stress, and moduli computed there are garbage (a 5-atom
        SiO4 cell after 40 steps, 1.6 eV/Å forces, 7.7 GPa pressure: B = 883 GPa; relaxed: 41 GPa)."""
        todo = [s for s in out if s.error is None]
        stop = None if cancelled is None else (lambda i, step, energy: cancelled())
        finished = relax_batch(
            self.potential, [s.structure for s in todo], steps=FINISH_STEPS, fmax=FINISH_FMAX, stop=stop
        )
        for s, r in zip(todo, finished, strict=True):
            s.structure, s.energy, s.relax_steps = r.structure, r.energy, s.relax_steps + r.steps
            if r.error is not None:
                s.error = r.error
            elif not r.converged:
                s.error = (
                    f"no minimum within {FINISH_STEPS} further relaxation steps "
                    f"(fmax {FINISH_FMAX} eV/Å): moduli of a stressed cell would be meaningless"
                )

    def _further(self, scored: list[Scored]) -> None:
        """Every property besides the objective for each scored crystal (batched), and its violation."""
        constrained = {c.prop.name for c in self.constraints}
        further = {p.name for p in self.objectives}
        for p in self.properties:
            if p.name not in constrained | further:
                continue
            if p.name == self.prop.name:
                found: list[float | str] = [s.value for s in scored]
            else:
                found = p.values([s.structure for s in scored], [s.energy for s in scored], self.potential)
            for s, value in zip(scored, found, strict=True):
                s.properties[p.name] = _plausible(p, value)
        for s in scored:
            failed = [f"{n}: {s.properties[n]}" for n in further if isinstance(s.properties[n], str)]
            if failed:
                s.error = "; ".join(failed)
            s.violation = total_violation(self.constraints, s.properties)


def _plausible(prop: Property, value: float | str) -> float | str:
    """The value, or why the potential must have failed (a value outside the property's plausible range)."""
    low, high = prop.plausible
    if isinstance(value, str) or low <= value <= high:
        return value
    return (
        f"implausible {prop.name} {value:.2f} {prop.unit} "
        f"(outside {low}..{high}; the potential failed on this geometry)"
    )
