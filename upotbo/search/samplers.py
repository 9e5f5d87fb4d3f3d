"""Samplers behind one registry (no string if/elif over backends): name -> factory.

The default TPE sees a *window* of the history (``WindowedTPESampler``), for two reasons:
- Cost. Plain optuna TPE rebuilds its Parzen estimators from every finished trial at every ask, so
  its cost grows linearly with the study (~1.8 s per ask at 5,000 trials, 100x the potential). TPE's
  "good" set is only the best ``min(10 %, 25)`` trials, so the window keeps the best ``n_best``
  exactly and the latest ``n_recent`` as the "rest": a flat cost per ask.
- Noise. A crystal's value depends on its composition *and* on how lucky its random structure was.
  Plain TPE's good set fills with 25 variants of the first strong composition (it sat on NbB for
  500 steps in paper42) and stops looking elsewhere. The window holds one trial per cell content
  (``key``: the best crystal found for it), so the good set is the 25 best *compositions*: the model
  learns where in (a, c) strong crystals are, and keeps trying structures at all 25.

A Pareto search (``further``: its objectives beyond the trial's value) ranks the window the way
optuna's multi-objective TPE (MOTPE) splits a study: feasible before infeasible, then by Pareto layer,
the last layer cut by hypervolume subset selection. A cell content's trial is replaced by one that
dominates it.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from upotbo import optuna_adapter as adapter
from upotbo.errors import InputError
from upotbo.search.mirror import FinishedFront
from upotbo.search.parzen import FastDensity, sample

N_BEST = 100  # > TPE's largest "good" set (25), so the good set is the exact one
N_RECENT = 200  # latest finished trials kept as the "rest"
REFRESH = 32  # new trials (finished or running) before the window is rebuilt
POOL = 32  # asks' worth of TPE candidates drawn at once
# Drawn uniformly, not modelled: the atoms per cell. Cohesion per atom is a property of the composition
# (elements and shares), not of the cell size; small cells only relax further in the step budget, and a
# model of ``natoms`` locked onto 3-atom cells (X2Y), where 1:1 crystals need an even count.
# A structure search's formula units per cell likewise (``upotbo.space.formula``).
UNIFORM = ("natoms", "z")


def cell_content(trial: FrozenTrial) -> Any:
    """The default window key: the cell's content (composition and stoichiometry), e.g. ``C4Zr4``."""
    return trial.user_attrs.get("cell_formula", trial.number)


def relaxed_structure(trial: FrozenTrial) -> Any:
    """The window key of a fixed-composition search: the crystal it relaxed into, told by space group
    and energy per atom (to 1 meV), so the good set holds distinct structures, not 25 starts that all
    fell into the same basin."""
    a = trial.user_attrs
    if "energy" not in a or "spacegroup_number" not in a:
        return trial.number
    return a["spacegroup_number"], round(a["energy"] / a["natoms"], 3)


# What the window keeps one trial of: a composition search's cell contents, a structure search's basins.
WINDOW_KEYS: dict[str, Callable[[FrozenTrial], Any]] = {
    "composition": cell_content,
    "structure": relaxed_structure,
}


class WindowedTPESampler(TPESampler):
    """optuna's TPE on the best trial per ``key``: the best ``n_best`` of them plus the latest ``n_recent``.

    Fitted once per window, sampled many times: the group decomposition of the search space and the
    two Parzen estimators of each group are built when the window is rebuilt (every ``REFRESH`` new
    trials, about one batch) and reused by every ask until the next rebuild, so an ask costs one draw
    of ``n_ei_candidates`` points and their acquisition (``upotbo.search.parzen``), flat in the
    history. Trials running at the fit (the batch in flight) join the "rest" as constant liars; the
    asks of one batch differ by their own random draws. ``key=None`` keeps every trial (only the cost
    bound applies). The ``uniform`` parameters are drawn at random and are no dimension of l(x)/g(x):
    a candidate is not chosen for a value it will not use.
    """

    def __init__(
        self,
        *args: Any,
        n_best: int = N_BEST,
        n_recent: int = N_RECENT,
        key: Callable[[FrozenTrial], Any] | None = cell_content,
        uniform: tuple[str, ...] = UNIFORM,
        further: tuple[tuple[str, int], ...] = (),
        **kwargs: Any,
    ) -> None:
        # The random start counts real trials, not the window's (which may hold fewer: one per key).
        self._startup = kwargs.pop("n_startup_trials", 10)
        super().__init__(*args, n_startup_trials=0, **kwargs)
        self._n_best, self._n_recent, self._key = n_best, n_recent, key
        self._uniform = frozenset(uniform)
        self._further = further  # (name, sign) of a Pareto search's objectives beyond the trial's value
        self._cached: tuple[int, list[FrozenTrial]] = (-REFRESH, [])
        self._best: dict[Any, FrozenTrial] = {}  # key -> its best finished trial, all history
        self._front = FinishedFront()  # how far the history is folded into ``_best``
        self._started = False
        self._groups: dict[str, dict[str, BaseDistribution]] | None = None  # parameter -> its group
        self._fits: dict[tuple, _Fitted] = {}  # group key (its names) -> its fit
        self._split: tuple[list[FrozenTrial], list[FrozenTrial]] | None = None  # the window's good, rest
        self._drawn: dict[int, dict[str, Any]] = {}  # trial number -> its groups' drawn values
        self._uses: dict[tuple, int] = {}  # draws per group, last window

    def _starting(self, study: Study) -> bool:
        if not self._started:  # scans the (short) history only until the random start is over
            done = adapter.cached_trials(study, states=(TrialState.COMPLETE,))
            self._started = len(done) >= self._startup
        return not self._started

    def window(self, study: Study) -> list[FrozenTrial]:
        """The finished trials the model sees (in trial order).

        Rebuilt once ``REFRESH`` new trials exist, not at every ask: counting all trials is O(1) in
        optuna's in-memory storage, and a window at most one batch old changes nothing TPE does. The
        best trial per key is kept up to date incrementally (only trials from the first one still
        unfinished at the last rebuild are looked at), so a rebuild does not rescan the history.
        A rebuild drops the fitted model.
        """
        trials = adapter.cached_trials(study)
        n_all = len(trials)
        if n_all - self._cached[0] >= REFRESH or n_all < self._cached[0]:
            if n_all < self._cached[0]:  # not the study this window was built on
                self._best, self._front = {}, FinishedFront()
            best = self._best
            sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0  # sign * value: lower, better
            front, tail = self._front.advance(trials)
            for t in (*front, *tail):  # the tail comes again next time: folding twice changes nothing
                if t.state == TrialState.COMPLETE:
                    k = t.number if self._key is None else self._key(t)
                    if k not in best or self._better(t, best[k], sign):
                        best[k] = t
            shown = list(best.values())
            if len(shown) > self._n_best + self._n_recent:
                top = self._best_of(shown, self._n_best, sign)
                latest = heapq.nlargest(self._n_recent, shown, key=lambda t: t.number)
                shown = list({t.number: t for t in top + latest}.values())
            self._cached = (n_all, sorted(shown, key=lambda t: t.number))
            self._uses = {key: fitted.draws for key, fitted in self._fits.items()}
            self._groups, self._fits, self._split = None, {}, None
        return self._cached[1]

    def _loss(self, t: FrozenTrial, sign: float) -> np.ndarray:
        """The trial's objectives, lower is better (the trial's value, then the further ones)."""
        found = t.user_attrs.get("properties", {})
        return np.array([sign * t.value, *(s * found[name] for name, s in self._further)])

    def _better(self, t: FrozenTrial, u: FrozenTrial, sign: float) -> bool:
        """``t`` ranks above ``u``: feasible first (as constrained TPE ranks), then by value, or in a
        Pareto search when ``t`` dominates ``u``."""
        vt, vu = _violation(t), _violation(u)
        if vt != vu:
            return vt < vu
        if not self._further:
            return sign * t.value < sign * u.value
        a, b = self._loss(t, sign), self._loss(u, sign)
        return bool(np.all(a <= b) and np.any(a < b))

    def _best_of(self, trials: list[FrozenTrial], n: int, sign: float) -> list[FrozenTrial]:
        """The ``n`` best of ``trials``: feasible ones by value (Pareto search: MOTPE's split), then
        infeasible ones by violation."""
        if not self._further:
            return heapq.nsmallest(n, trials, key=lambda t: (_violation(t), sign * t.value))
        feasible = [t for t in trials if not _violation(t)]
        rest = heapq.nsmallest(n, (t for t in trials if _violation(t)), key=_violation)
        picked = adapter.pareto_below(np.array([self._loss(t, sign) for t in feasible]), n)
        return ([feasible[i] for i in picked] + rest)[:n]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}  # groups are drawn lazily in ``sample_independent``: only the ones a trial uses

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        """The value of ``param_name`` from a joint draw of its whole group (multivariate TPE).

        The first parameter a trial asks for in a group draws the group, the others take their
        values from that draw, so define-by-run trials pay only for the groups they use.
        """
        if param_name in self._uniform:
            return self._uniform_draw(study, trial, param_name, param_distribution)
        if trial.number not in self._drawn:
            if self._starting(study):
                return adapter.tpe_random_sample(self, study, trial, param_name, param_distribution)
            self.window(study)
            self._drawn[trial.number] = {}
        drawn = self._drawn[trial.number]
        if param_name not in drawn:
            group = self._group_of(param_name)
            if group is not None and group[param_name] == param_distribution:
                drawn.update(self._draw(study, group, tuple(group)))
            else:  # not in the window (yet), or asked with another range: alone
                alone = {param_name: param_distribution}
                drawn.update(self._draw(study, alone, tuple(alone.items())))
        return drawn[param_name]

    def _uniform_draw(
        self, study: Study, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        """A uniform draw of a plain int or float parameter straight from the sampler's generator
        (optuna's RandomSampler transforms the search space at every call: ~20 us a parameter)."""
        kind = type(distribution)
        if kind is FloatDistribution and not distribution.log and distribution.step is None:
            return float(adapter.tpe_rng(self).uniform(distribution.low, distribution.high))
        if kind is IntDistribution and not distribution.log and distribution.step == 1:
            return int(adapter.tpe_rng(self).randint(distribution.low, distribution.high + 1))
        return adapter.tpe_random_sample(self, study, trial, name, distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._drawn.pop(trial.number, None)
        super().after_trial(study, trial, state, values)

    def _group_of(self, name: str) -> dict[str, BaseDistribution] | None:
        """optuna's group decomposition of the window's parameters, once per rebuild."""
        if self._groups is None:
            self._groups = {}
            for space in adapter.search_space_groups(t.distributions for t in self._cached[1]):
                kept = {n: d for n, d in sorted(space.items()) if not d.single() and n not in self._uniform}
                self._groups.update(dict.fromkeys(kept, kept))
        return self._groups.get(name)

    def _draw(self, study: Study, space: dict[str, BaseDistribution], key: tuple) -> dict[str, Any]:
        """TPE's draw for ``space``: ``n_ei_candidates`` points from the good set's density, the best
        by l(x)/g(x). Candidates and their acquisition come from a pool made ``POOL`` draws at a time
        (one vectorized call instead of many small ones): the same distribution as fresh draws. A pool
        holds as many asks' worth as drew the group in the previous window, so the groups of rarely
        used sites (define-by-run coordinates) do not pay for candidates nobody takes. ``key`` names
        the group (its parameter names; hashing the distributions at every draw cost more)."""
        if key not in self._fits:
            self._fits[key] = _Fitted(*self._fit(study, space))
        fitted, n = self._fits[key], adapter.tpe_candidates(self)
        if fitted.used + n > len(fitted.acquisition):  # as many asks as drew this group last window
            fitted.refill(adapter.tpe_rng(self), n * max(1, min(POOL, self._uses.get(key, POOL))))
        fitted.draws += 1
        chunk = fitted.acquisition[fitted.used : fitted.used + n]
        best = fitted.samples[fitted.used + int(np.argmax(chunk))]
        fitted.used += n
        return {name: d.to_external_repr(best[i]) for i, (name, d) in enumerate(space.items())}

    def _fit(
        self, study: Study, space: dict[str, BaseDistribution]
    ) -> tuple[adapter.Mixture, adapter.Mixture]:
        """Both estimators for ``space``, on the window the trial's first draw refreshed (``_cached``):
        refreshing again here could swap the window under a trial halfway through its groups. The
        window's split into good and rest (trials running now join the rest as constant liars) is
        made once for all its groups."""
        if self._split is None:
            trials = list(self._cached[1])
            if adapter.tpe_constant_liar(self):
                trials += study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            self._split = adapter.tpe_split(self, study, trials) if not self._further else self._pareto_split(
                study, trials
            )
        below, above = self._split
        return (
            adapter.tpe_mixture(self, study, space, below, below=True),
            adapter.tpe_mixture(self, study, space, above, below=False),
        )


    def _pareto_split(
        self, study: Study, trials: list[FrozenTrial]
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """MOTPE's split of the window: the good set sized by gamma of the finished trials, as
        ``tpe_split`` sizes it; running trials (constant liars) join the rest."""
        finished = [t for t in trials if t.state == TrialState.COMPLETE]
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        below = sorted(self._best_of(finished, adapter.tpe_gamma(self)(len(finished)), sign),
                       key=lambda t: t.number)
        chosen = {t.number for t in below}
        return below, [t for t in trials if t.number not in chosen]


def _violation(trial: FrozenTrial) -> float:
    return trial.user_attrs.get("violation", 0.0)


class _Fitted:
    """One group's Parzen estimators and a pool of candidates drawn from the good one, with l/g."""

    def __init__(self, below: adapter.Mixture, above: adapter.Mixture) -> None:
        self.below = below
        self.densities = FastDensity(below), FastDensity(above)
        self.samples: Any = ()  # candidates x parameters, in optuna's internal representation
        self.acquisition: Any = ()
        self.used = self.draws = 0

    def refill(self, rng: np.random.RandomState, size: int) -> None:
        self.samples = sample(self.below, rng, size)
        self.acquisition = self.densities[0].log_pdf(self.samples) - self.densities[1].log_pdf(self.samples)
        self.used = 0


Further = tuple[tuple[str, int], ...]  # a Pareto search's objectives beyond the trial's value: (name, sign)
Key = Callable[[FrozenTrial], Any]


def _tpe(seed: int | None, n_init: int, further: Further, key: Key) -> optuna.samplers.BaseSampler:
    # multivariate + group: model the define-by-run subspaces jointly (composition with its structure);
    # constant liar: a batch of asks does not propose the same point n times.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return WindowedTPESampler(
            n_startup_trials=n_init, multivariate=True, group=True, constant_liar=True, seed=seed,
            further=further, key=key,
        )


def _random(seed: int | None, n_init: int, further: Further, key: Key) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int | None, int, Further, Key], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
}


WITH_MOVES = "+moves"  # a sampler name's suffix: the search adds children of its best (``moves``)


def sampler_names() -> list[str]:
    return [*SAMPLERS, *(f"{name}{WITH_MOVES}" for name in SAMPLERS)]


def make_sampler(
    name: str, seed: int | None, n_init: int, further: Further = (), distinct: str = "composition"
) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` (``tpe+moves``: TPE, the search adding children); ``further``: (name, sign)
    of a Pareto search's other objectives; ``distinct``: what the model keeps one trial of."""
    if name not in sampler_names():
        raise InputError(f"unknown sampler {name!r}: choose one of {', '.join(sampler_names())}")
    return SAMPLERS[name.removesuffix(WITH_MOVES)](seed, n_init, further, WINDOW_KEYS[distinct])
