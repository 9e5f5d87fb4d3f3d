"""The (a, c, s) search space and the define-by-run suggestion of one candidate.

A trial first draws the composition a (``ncomp`` elements from the pool, with replacement, so unaries
like C8 are reachable), then the stoichiometry c (1..``nchem`` atoms of each drawn element in the cell),
and only then the structure parameters s, whose number depends on a and c: a space group among those
compatible with the counts, a Wyckoff assignment, six lattice parameters, a volume, and the free
coordinates of each Wyckoff site. Every parameter is a plain float/int so any optuna sampler models it;
the space group and Wyckoff choice are quantiles of the compatible lists.

Elements are drawn as positions on an element scale (``scales.py``; by default melting point, a proxy
of elemental cohesion), not as unordered categories: neighbours on the scale do alike, so a model that
finds Zr-Ru strong also tries Zr-C. With categories, TPE cannot generalize from one element to another
and, in the paper42 binary space, locked onto Zr-O for 1,000 steps; on Pettifor's chemical scale the
strong metals and carbon sit at opposite ends and TPE settled on Nb-Ru intermetallics.

The stoichiometry is drawn as atoms in the cell (``natoms``) and the *shares* of the drawn elements
(``share0``: the first element's fraction, ``share1``: the second's fraction of the rest, ...), not as
one count per element. Cohesion varies smoothly with the fraction, and a fraction is one axis: 1:1 is
``share0 = 0.5`` at every cell size, where with independent counts it is the diagonal n0 = n1, which
TPE's per-axis kernels cannot learn. With counts, the model's good set filled with 4:1 and 5:1 cells
(a strong element diluted) and the 1:1 refractory carbides were tried once in 1,000 steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import optuna

from upotbo.errors import CandidateFailed, InputError
from upotbo.space.pools import parse_pool
from upotbo.space.scales import check_scale, order_elements
from upotbo.space.symmetry import assign_wyckoffs, compatible_space_groups, point_group_order

VOLUME_RANGE = (1.0, 5.0)  # cell volume / sum of covalent-sphere volumes (graphite: 4.8)
RATIO_RANGE = (0.5, 3.0)  # b/a and c/a, log-uniform (layered crystals: graphite c/a = 2.7)
ANGLE_RANGE = (60.0, 120.0)  # degrees
PARAMETERS = "shares/1"  # how a trial's parameters map to a crystal; a resume must match it


@dataclass(frozen=True)
class SearchSpace:
    """Pool, number of components, atoms per element and the atoms-per-cell bound."""

    pool: tuple[str, ...]
    ncomp: int = 2
    nchem: int = 5
    max_atoms: int = 20
    scale: str = "melting"

    @classmethod
    def create(
        cls,
        pool: Any,
        ncomp: int = 2,
        nchem: int = 5,
        max_atoms: int | None = None,
        scale: str = "melting",
    ) -> SearchSpace:
        """Validate user settings (one clear ``InputError`` per bad value) and build the space."""
        symbols = parse_pool(pool)
        if not 1 <= int(ncomp) <= 4:
            raise InputError(f"--ncomp {ncomp} is out of range: use 1 to 4 elements per crystal")
        if not 1 <= int(nchem) <= 12:
            raise InputError(f"--nchem {nchem} is out of range: use 1 to 12 atoms of each element per cell")
        if max_atoms is None:
            max_atoms = ncomp * nchem
        if max_atoms < ncomp:
            raise InputError(
                f"--max-atoms {max_atoms} is below --ncomp {ncomp}: each drawn element needs at least one "
                f"atom, so use --max-atoms >= {ncomp}"
            )
        n, m, top = int(ncomp), int(nchem), int(max_atoms)
        return cls(pool=symbols, ncomp=n, nchem=m, max_atoms=top, scale=check_scale(scale))

    @cached_property
    def chemical_scale(self) -> tuple[str, ...]:
        """The pool ordered along the space's element scale (the positions the sampler draws)."""
        return order_elements(self.pool, self.scale)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self), "pool": list(self.pool), "parameters": PARAMETERS}

    def composition_params(self, picks: tuple[str, ...], counts: tuple[int, ...]) -> dict[str, Any]:
        """The composition parameters ``suggest`` reads as ``picks`` with ``counts`` atoms each."""
        scale = self.chemical_scale
        params: dict[str, Any] = {f"el{i}": scale.index(s) for i, s in enumerate(picks)}
        params["natoms"] = sum(counts)
        left = sum(counts)
        for i, n in enumerate(counts[:-1]):
            params[f"share{i}"] = n / left
            left -= n
        return params

    def seed_composition(self, species: tuple[str, ...], counts: tuple[int, ...]) -> dict[str, Any]:
        """The composition parameters of a seed crystal with ``counts`` atoms of each of ``species``,
        or an ``InputError`` saying why the space cannot hold it."""
        outside = [s for s in species if s not in self.pool]
        if outside:
            raise InputError(f"{', '.join(outside)} not in the pool: add them to --pool")
        if len(species) > self.ncomp:
            raise InputError(f"{len(species)} elements, above --ncomp {self.ncomp}: raise --ncomp")
        if max(counts) > self.nchem or sum(counts) > self.max_atoms:
            raise InputError(
                f"{sum(counts)} atoms ({max(counts)} of one element): above --max-atoms {self.max_atoms} or "
                f"--nchem {self.nchem}: raise them"
            )
        picks, split = list(species), list(counts)
        while len(picks) < self.ncomp:  # fewer elements than drawn: one element drawn twice
            k = int(np.argmax(split))
            if split[k] < 2:
                raise InputError(f"{sum(counts)} atoms cannot fill --ncomp {self.ncomp} draws: lower --ncomp")
            picks.insert(k + 1, picks[k])
            split[k : k + 1] = [split[k] - split[k] // 2, split[k] // 2]
        return self.composition_params(tuple(picks), tuple(split))

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Draw a candidate from ``trial`` define-by-run. Raises ``CandidateFailed`` if no symmetry fits."""
        scale = self.chemical_scale
        picks = [scale[trial.suggest_int(f"el{i}", 0, len(scale) - 1)] for i in range(self.ncomp)]
        trial.set_user_attr("drawn", sorted(set(picks)))
        natoms = trial.suggest_int("natoms", self.ncomp, min(self.max_atoms, self.ncomp * self.nchem))
        shares = [trial.suggest_float(f"share{i}", 0.0, 1.0) for i in range(self.ncomp - 1)]
        merged: Counter[str] = Counter()
        for symbol, n in zip(picks, apportion(shares, natoms, self.nchem), strict=True):
            merged[symbol] += n
        species = tuple(sorted(merged))
        return suggest_structure(trial, species, tuple(merged[s] for s in species))


def suggest_structure(trial: optuna.Trial, species: tuple[str, ...], counts: tuple[int, ...]) -> Candidate:
    """The structure part s of a trial for a fixed cell content (``counts`` atoms of each of
    ``species``): space group, Wyckoff assignment, lattice and free coordinates, drawn define-by-run.
    Raises ``CandidateFailed`` when no space group or Wyckoff assignment hosts the counts."""
    groups = compatible_space_groups(tuple(sorted(counts)))
    if not groups:
        raise CandidateFailed(f"no space group hosts counts {counts}")
    number = groups[_symmetric_pick(trial.suggest_float("spg", 0.0, 1.0), groups)]
    seed = int(trial.suggest_float("wyckoff", 0.0, 1.0) * 2**31)
    wyckoffs = assign_wyckoffs(number, counts, np.random.default_rng(seed))
    if wyckoffs is None:
        raise CandidateFailed(f"no Wyckoff assignment of {counts} in space group {number}")
    lattice = {
        "volume": trial.suggest_float("volume", *VOLUME_RANGE, log=True),
        "b_a": trial.suggest_float("b_a", *RATIO_RANGE, log=True),
        "c_a": trial.suggest_float("c_a", *RATIO_RANGE, log=True),
        "alpha": trial.suggest_float("alpha", *ANGLE_RANGE),
        "beta": trial.suggest_float("beta", *ANGLE_RANGE),
        "gamma": trial.suggest_float("gamma", *ANGLE_RANGE),
    }
    nsites = sum(len(sites) for sites in wyckoffs)
    coords = tuple(
        tuple(trial.suggest_float(f"{axis}{k}", 0.0, 1.0) for axis in "xyz") for k in range(nsites)
    )
    return Candidate(species, counts, number, wyckoffs, lattice, coords)


@dataclass(frozen=True)
class Candidate:
    """A full (a, c, s) description: enough to rebuild the crystal exactly."""

    species: tuple[str, ...]
    counts: tuple[int, ...]
    space_group: int
    wyckoffs: tuple[tuple[str, ...], ...]
    lattice: dict[str, float] = field(hash=False)
    coords: tuple[tuple[float, float, float], ...]

    @property
    def formula(self) -> str:
        return "".join(f"{s}{n}" for s, n in zip(self.species, self.counts, strict=True))

    @property
    def natoms(self) -> int:
        return sum(self.counts)


def apportion(shares: list[float], natoms: int, nchem: int) -> tuple[int, ...]:
    """Atoms of each drawn element: ``natoms`` split by stick-breaking ``shares``, 1..``nchem`` each.

    The share of the first element, of the rest for the second, and so on; rounded to whole atoms
    with the sum kept. Every count vector is reachable (its own fractions round back to it).
    """
    fractions, left = [], 1.0
    for share in shares:
        fractions.append(left * share)
        left -= fractions[-1]
    target = np.array([*fractions, left]) * natoms
    counts = np.clip(np.rint(target), 1, nchem).astype(int)
    while counts.sum() != natoms:
        gap = target - counts
        if counts.sum() < natoms:
            gap[counts >= nchem] = -np.inf
            counts[int(np.argmax(gap))] += 1
        else:
            gap[counts <= 1] = np.inf
            counts[int(np.argmin(gap))] -= 1
    return tuple(int(n) for n in counts)


def _symmetric_pick(u: float, groups: tuple[int, ...]) -> int:
    """Index of the space group at quantile ``u``, each group weighted by its point-group order.

    Ground states of simple compounds are overwhelmingly high-symmetry (rock salt, fluorite, AlB2,
    graphite), so a cubic group (48 rotations) is drawn 48 times as often as P1; the sampler still
    reaches every compatible group, and the quantile keeps groups ordered by number, so a sampler
    that finds one cubic group good tries its neighbours.
    """
    cumulative = np.cumsum([point_group_order(n) for n in groups], dtype=float)
    return min(int(np.searchsorted(cumulative, u * cumulative[-1], side="right")), len(groups) - 1)

