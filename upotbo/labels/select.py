"""Which crystals of a run deserve a DFT label: its best compositions, the ones a committee of
potentials disagrees on most, and a few far from both.

Why this mix: the best crystals are where the ranking is decided, so the potential must be right
there; where independently trained potentials disagree on the same cell, the potential is least
trustworthy (an ensemble's spread as its confidence, as AIRSS's ephemeral potentials use it); and a
few diverse crystals keep a fine-tuned model from learning only one corner of the space.

A label's cost varies a hundredfold (a symmetric 2-atom rock salt: 26 s of GPAW; a 5-atom P1 cell with
Ru: 40 min), so with a ``cost`` estimate a disputed or diverse pick may cost at most twice the median
best pick: the best compositions are labelled whatever they cost, the others are chosen among cells
that keep a round's time bounded (``COST_CAP``).

Every pick is labelled on spglib's standard primitive cell of the stored crystal: exact symmetry is
what GPAW's symmetry analysis needs (a nearly symmetric cell raised ``SymmetryAnalysisBug`` here), and
the smaller cell is cheaper. Crystals spglib cannot standardize are labelled as stored.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from upotbo.cells import standard_cells
from upotbo.crystal.prototypes import among
from upotbo.errors import InputError
from upotbo.potentials import Potential
from upotbo.properties import cohesive_energies
from upotbo.report import ranked
from upotbo.storage import Record, RunDirectory, completed_records

REASONS = ("top", "committee", "diverse")
COST_CAP = 2.0  # a committee or diverse pick costs at most this times the median best pick


@dataclass(frozen=True)
class Pick:
    """One crystal to label: ``name`` (unique in the set), why it was picked, the run's trial, the
    cell to label, and each potential's E_c (eV/atom) single point on that cell."""

    name: str
    reason: str
    trial: int
    structure: Structure
    upot: dict[str, float]

    @property
    def spread(self) -> float:
        """Max - min of the potentials' E_c on this cell (eV/atom); NaN with fewer than two."""
        values = [v for v in self.upot.values() if math.isfinite(v)]
        return max(values) - min(values) if len(values) > 1 else math.nan

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "reason": self.reason,
            "trial": self.trial,
            "structure": self.structure.as_dict(),
            "upot": self.upot,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Pick:
        return cls(d["name"], d["reason"], d["trial"], Structure.from_dict(d["structure"]), d["upot"])


def shares(k: int, top: int, committee: bool) -> dict[str, int]:
    """How many labels each reason gets: ``top`` best compositions, half the rest to the committee's
    disagreements (none without a committee), the remainder diverse."""
    n_top = min(top, k)
    n_committee = (k - n_top + 1) // 2 if committee else 0
    return {"top": n_top, "committee": n_committee, "diverse": k - n_top - n_committee}


def plan(
    run_dir: str,
    k: int,
    top: int,
    potentials: Sequence[Potential],
    candidates: int = 100,
    exclude: Collection[int] = (),
    cost: Callable[[Structure], float] | None = None,
) -> list[Pick]:
    """The ``k`` crystals to label, picked from the run's ``candidates`` best scored crystals that are
    bound (E_c < 0 under the run's potential); ``potentials`` (the run's first, then the committee)
    score every candidate cell once. ``exclude``: trials labelled before (an earlier round): neither
    they nor another trial holding the same crystal are picked again, and their compositions no longer
    count among the best, so the best picks move on to the best compositions not yet labelled.
    ``cost``: a label's estimated cost (any unit), for ``COST_CAP``."""
    run = RunDirectory.open(run_dir)
    records = completed_records(run.study())
    if not records:
        raise InputError(f"run {run_dir!r} has no scored crystals yet: run the search first")
    labelled = [r for r in records if r.number in set(exclude)]
    done = {r.formula for r in labelled}
    before = [standard_cell(r.structure) for r in labelled]
    records = [r for r in records if r.number not in set(exclude)]
    objective = run.objective
    pool = sorted(records, key=lambda r: objective.sign * r.value)[:candidates]
    best = ranked(records, run.objectives, len(records), run.structure_search)
    count = shares(k, top, committee=len(potentials) > 1)
    if run.structure_search:  # its best are polymorphs of one formula: all count but those labelled
        best = list(itertools.islice((r for r in best if not among(r.structure, before)), count["top"]))
    else:
        best = [r for r in best if r.formula not in done]
    unique = {r.number: r for r in [*best[: count["top"]], *pool]}
    cells = {n: standard_cell(r.structure) for n, r in unique.items()}
    upot = _score(cells, potentials)
    main = potentials[0].name
    pool = [r for r in pool if upot[r.number][main] < 0]  # unbound cells: no label worth a DFT run
    picked: list[Pick] = []

    def take(record: Record, reason: str) -> None:
        name = f"{reason}{len([p for p in picked if p.reason == reason]) + 1:02d}_{record.cell_formula}"
        picked.append(Pick(name, reason, record.number, cells[record.number], upot[record.number]))

    for record in best[: count["top"]]:
        take(record, "top")
    rest = [r for r in pool if r.number not in {p.trial for p in picked}]
    if cost is not None and picked:
        cap = COST_CAP * statistics.median(cost(p.structure) for p in picked)
        rest = [r for r in rest if cost(cells[r.number]) <= cap]
    rest = _distinct(rest, [*(p.structure for p in picked), *before], cells)
    by_spread = sorted(rest, key=lambda r: -_spread(upot[r.number]))
    for record in [r for r in by_spread if math.isfinite(_spread(upot[r.number]))][: count["committee"]]:
        take(record, "committee")
    rest = [r for r in rest if r.number not in {p.trial for p in picked}]
    chosen = [r for r in pool + best if r.number in {p.trial for p in picked}]
    for record in _farthest(rest, chosen, count["diverse"], cells):
        take(record, "diverse")
    return picked


def standard_cell(structure: Structure) -> Structure:
    """The cell a crystal is labelled on (see the module's docstring)."""
    try:
        return standard_cells(structure)[1]
    except Exception:  # spglib finds no cell for a few odd crystals: label them as stored
        return structure


def _score(cells: dict[int, Structure], potentials: Sequence[Potential]) -> dict[int, dict[str, float]]:
    numbers = list(cells)
    out: dict[int, dict[str, float]] = {n: {} for n in numbers}
    for potential in potentials:
        for n, value in zip(numbers, cohesive_energies(potential, [cells[n] for n in numbers]), strict=True):
            out[n][potential.name] = value
    return out


def _distinct(records: list[Record], taken: list[Structure], cells: dict[int, Structure]) -> list[Record]:
    """``records`` without repeats of one crystal (a search stores the same cell under several trials)
    nor of a crystal ``taken`` (picked now or labelled in an earlier round): cells compared by
    structure, not by rounded energies (two copies of one NbB cell 0.01 meV/atom apart once rounded
    apart and were labelled twice; round 2 of a refine picked rock-salt NbC, ZrC and ZrN again under
    other trial numbers)."""
    kept = list(taken)
    out = []
    for r in records:
        if not among(cells[r.number], kept):
            kept.append(cells[r.number])
            out.append(r)
    return out


def _spread(values: dict[str, float]) -> float:
    finite = [v for v in values.values() if math.isfinite(v)]
    return max(finite) - min(finite) if len(finite) > 1 else math.nan


def _farthest(
    records: list[Record], chosen: list[Record], n: int, cells: dict[int, Structure]
) -> list[Record]:
    """Farthest-point sampling on composition (element fractions) and the run's value: the next pick
    is the candidate farthest from everything picked so far."""
    if n <= 0 or not records:
        return []
    elements = sorted({el.symbol for s in cells.values() for el in s.composition.elements})

    def describe(r: Record) -> np.ndarray:
        fractions = cells[r.number].composition.fractional_composition
        return np.array([fractions[el] for el in elements] + [r.value])

    chosen_x = [describe(r) for r in chosen]
    xs = np.array([describe(r) for r in records])
    taken: list[Record] = []
    free = list(range(len(records)))
    for _ in range(min(n, len(records))):
        if chosen_x:
            d = np.min(np.linalg.norm(xs[free][:, None, :] - np.array(chosen_x)[None], axis=2), axis=1)
            k = free[int(np.argmax(d))]
        else:
            k = free[0]
        taken.append(records[k])
        chosen_x.append(xs[k])
        free.remove(k)
    return taken
