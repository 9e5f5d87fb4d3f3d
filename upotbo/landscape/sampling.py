"""Which crystals a landscape map holds, drawn by the search's own space and builder.

A map is a list of *slots*. Each slot belongs to a *point* of (composition a, stoichiometry c) and is
filled with one random symmetric crystal s for that point:

- ``formula``: one point (e.g. Zr4C4), ``n`` slots (paper Fig. 2a: 400 random Zr4C4 crystals);
- ``grid``: every stoichiometry of a fixed element list (ZrmCn, m, n = 1..5), ``per_point`` slots each;
- ``pool``: every composition of a pool (with replacement, like the search) x every stoichiometry
  (903 x 25 x 30 = 677,250 slots for paper42 binaries);
- ``space``: plain random draws over a whole ``SearchSpace`` (the background for a search run).

A crystal is drawn exactly as the search draws one: an optuna trial asked from a ``RandomSampler``,
``SearchSpace.suggest`` (on the space narrowed to the point) draws composition, counts, space group,
Wyckoff sites, lattice and coordinates, and ``build_structure`` builds it; draws of another cell
content are rejected (see ``draw``), so nothing here depends on the space's parameter names. The
sampler is reseeded per (seed, slot, attempt), so a slot's crystal does not depend on batch sizes or
on where a killed job resumed. A slot whose build fails is retried up to ``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from pymatgen.core import Composition, Structure

from upotbo.crystal import build_structure
from upotbo.errors import CandidateFailed, InputError
from upotbo.space import Candidate, SearchSpace, parse_pool

MAX_ATTEMPTS = 12  # builds tried per slot; ~40 % of random symmetric Zr4C4 builds fail, 0.4^12 ~ 2e-5
MAX_DRAWS = 4000  # draws per slot, counting those rejected for the wrong cell content
MAX_PER_ELEMENT = 12  # the space's own bound on atoms per element


@dataclass(frozen=True)
class MapSpec:
    """Points (compositions x stoichiometries) and crystals per point; ``slot`` indexes every crystal."""

    kind: str
    space: SearchSpace
    compositions: tuple[tuple[str, ...], ...]
    stoichiometries: tuple[tuple[int, ...], ...]
    per_point: int
    seed: int = 0

    @property
    def npoints(self) -> int:
        return len(self.compositions) * len(self.stoichiometries)

    @property
    def total(self) -> int:
        return self.npoints * self.per_point

    def point_of(self, slot: int) -> int:
        return slot // self.per_point

    def point(self, index: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """(element picks, counts) of point ``index``; empty tuples for a ``space`` map."""
        comp, stoich = divmod(index, len(self.stoichiometries))
        return self.compositions[comp], self.stoichiometries[stoich]

    def label(self, index: int) -> str:
        """Cell formula of a point (A and B merged for a unary pick), or "random" for a ``space`` map."""
        merged = self._merged(index)
        if not merged:
            return "random"
        return "".join(f"{s}{n}" for s, n in merged.items())  # in the order given, e.g. Zr4C4

    def _merged(self, index: int) -> Counter[str]:
        merged: Counter[str] = Counter()
        for symbol, n in zip(*self.point(index), strict=True):
            merged[symbol] += n
        return merged

    def point_space(self, index: int) -> SearchSpace:
        """The search space narrowed to point ``index``: its elements, at most its atom counts.

        Drawing from it rather than from the whole pool keeps the rejection in ``draw`` cheap.
        """
        picks, counts = self.point(index)
        if not picks:
            return self.space
        return SearchSpace.create(
            tuple(dict.fromkeys(picks)), ncomp=len(picks), nchem=max(counts), max_atoms=sum(counts)
        )

    def cell_content(self, index: int) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
        """(species, counts) a crystal of point ``index`` must have, as ``Candidate`` states them."""
        merged = self._merged(index)
        if not merged:
            return None
        species = tuple(sorted(merged))
        return species, tuple(merged[s] for s in species)

    def settings(self) -> dict[str, Any]:
        """What identifies the map (a resumed job must repeat it exactly)."""
        return {
            "kind": self.kind,
            "compositions": [list(c) for c in self.compositions]
            if self.kind != "pool"
            else len(self.compositions),
            "stoichiometries": [list(c) for c in self.stoichiometries],
            "per_point": self.per_point,
            "seed": self.seed,
        }


def formula_map(formula: str, n: int, seed: int = 0) -> MapSpec:
    """``n`` random crystals of one cell content, e.g. ``Zr4C4`` (not reduced: 8 atoms in the cell)."""
    composition = _parse_formula(formula)
    symbols = tuple(el.symbol for el in composition.elements)
    counts = tuple(int(composition[s]) for s in symbols)
    space = SearchSpace.create(symbols, ncomp=len(symbols), nchem=max(counts), max_atoms=sum(counts))
    return MapSpec("formula", space, (symbols,), (counts,), _positive(n, "--n"), seed)


def stoichiometry_map(
    elements: str | list[str], nchem: int = 5, per_point: int = 100, seed: int = 0
) -> MapSpec:
    """Every stoichiometry 1..``nchem`` of each element in ``elements`` (ZrmCn: 25 points)."""
    symbols = parse_pool(elements)
    space = SearchSpace.create(symbols, ncomp=len(symbols), nchem=nchem)
    stoich = tuple(itertools.product(range(1, space.nchem + 1), repeat=len(symbols)))
    return MapSpec("grid", space, (symbols,), stoich, _positive(per_point, "--per-point"), seed)


def pool_map(
    pool: str | list[str], ncomp: int = 2, nchem: int = 5, per_point: int = 30, seed: int = 0
) -> MapSpec:
    """Every composition of ``ncomp`` pool elements (with replacement) x every stoichiometry."""
    space = SearchSpace.create(pool, ncomp=ncomp, nchem=nchem)
    comps = tuple(itertools.combinations_with_replacement(space.chemical_scale, space.ncomp))
    stoich = tuple(itertools.product(range(1, space.nchem + 1), repeat=space.ncomp))
    return MapSpec("pool", space, comps, stoich, _positive(per_point, "--per-point"), seed)


def space_map(space: SearchSpace, n: int, seed: int = 0) -> MapSpec:
    """``n`` plain random (a, c, s) draws over ``space``: the map a search of that space moves on."""
    return MapSpec("space", space, ((),), ((),), _positive(n, "--n"), seed)


@dataclass
class Drawn:
    """One slot's final attempt: a built crystal, or the reason its last build failed."""

    slot: int
    trial: optuna.Trial
    structure: Structure | None
    candidate: Candidate | None
    reason: str | None
    attempts: int


def draw(spec: MapSpec, slots: Sequence[int], hint: bool = True) -> tuple[optuna.Study, list[Drawn]]:
    """Draw the crystals of ``slots``; returns the in-memory study holding their (still open) trials.

    The map never relies on the space's parameter names: a draw whose ``Candidate`` is not the slot's
    cell content is rejected and redrawn (from the point's narrowed space, so ~1 in 30 binary draws
    fits). ``hint`` only speeds this up: it enqueues the composition parameters as today's
    ``SearchSpace.suggest`` names them; if those names change the hint is ignored or rejected, and
    the slot still gets a crystal of the right content. Failed attempts are told FAIL in the
    in-memory study and dropped; the caller tells the returned trials and copies them to the run
    database. A fresh in-memory study per batch keeps ``ask`` from slowing down as the map grows.
    """
    memory = optuna.create_study(direction="minimize")
    out = []
    for slot in slots:
        point = spec.point_of(slot)
        space, target = spec.point_space(point), spec.cell_content(point)
        params = _hint(space, *spec.point(point)) if hint and target else None
        builds = misses = 0
        for attempt in range(MAX_DRAWS):
            seed = int(np.random.SeedSequence([spec.seed, slot, attempt]).generate_state(1)[0])
            memory.sampler = optuna.samplers.RandomSampler(seed=seed)
            if params:
                memory.enqueue_trial(params, skip_if_exists=False)
            trial = memory.ask()
            try:
                candidate = space.suggest(trial)
                if target is not None and (candidate.species, candidate.counts) != target:
                    misses += 1
                    params = None if misses >= 2 else params  # the hint does not fix the point: drop it
                    memory.tell(trial, state=TrialState.FAIL)
                    continue
                structure = build_structure(candidate)
            except CandidateFailed as exc:
                builds += 1
                if builds < MAX_ATTEMPTS and attempt + 1 < MAX_DRAWS:
                    memory.tell(trial, state=TrialState.FAIL)
                    continue
                out.append(Drawn(slot, trial, None, None, f"{exc} (after {builds} builds)", attempt + 1))
                break
            trial.set_user_attr("cell_formula", candidate.formula)
            out.append(Drawn(slot, trial, structure, candidate, None, attempt + 1))
            break
        else:
            out.append(
                Drawn(slot, trial, None, None, f"no draw of {spec.label(point)} in {MAX_DRAWS}", MAX_DRAWS)
            )
    return memory, out


def _hint(space: SearchSpace, picks: tuple[str, ...], counts: tuple[int, ...]) -> dict[str, Any]:
    """The composition parameters that draw ``picks`` with ``counts`` (a speed-up only)."""
    return space.composition_params(picks, counts)


def _parse_formula(formula: str) -> Composition:
    text = formula.strip()
    symbols = [s for s in _symbols(text)]
    if not text or not symbols:
        raise InputError(f"cannot read formula {formula!r}: write the cell content, e.g. --formula Zr4C4")
    parse_pool(symbols)  # one clear line naming an unknown symbol
    try:
        composition = Composition(text)
    except (ValueError, KeyError) as exc:
        raise InputError(f"cannot read formula {formula!r} ({exc}): write it like Zr4C4") from exc
    for el, amount in composition.items():
        if amount != int(amount) or not 1 <= amount <= MAX_PER_ELEMENT:
            raise InputError(
                f"formula {formula!r} has {amount:g} {el.symbol} atoms: the generator places 1 to "
                f"{MAX_PER_ELEMENT} atoms of each element in the cell (write the cell content, e.g. Zr4C4)"
            )
    return composition


def _symbols(text: str) -> list[str]:
    return re.findall(r"[A-Z][a-z]?|[a-z]+", text)


def _positive(value: int, name: str) -> int:
    if int(value) < 1:
        raise InputError(f"{name} {value} must be at least 1")
    return int(value)
