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
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from upotbo.errors import InputError

N_BEST = 100  # > TPE's largest "good" set (25), so the good set is the exact one
N_RECENT = 400  # latest finished trials kept as the "rest"
REFRESH = 32  # new trials (finished or running) before the window is rebuilt


class _Window:
    """A read-only view of a study whose trial list is the sampler's window (plus RUNNING trials)."""

    def __init__(self, study: Study, window: list[FrozenTrial]) -> None:
        self._study, self._window = study, window

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Sequence[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        running = []
        if states is None or TrialState.RUNNING in states:
            running = self._study._get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        kept = [t for t in self._window if states is None or t.state in states]
        return kept + running

    def get_trials(self, deepcopy: bool = True, states: Sequence[TrialState] | None = None):
        return self._get_trials(deepcopy=deepcopy, states=states)


def cell_content(trial: FrozenTrial) -> Any:
    """The default window key: the cell's content (composition and stoichiometry), e.g. ``C4Zr4``."""
    return trial.user_attrs.get("cell_formula", trial.number)


class WindowedTPESampler(TPESampler):
    """optuna's TPE on the best trial per ``key``: the best ``n_best`` of them plus the latest ``n_recent``.

    ``key=None`` keeps every trial (only the cost bound applies).
    """

    def __init__(
        self,
        *args: Any,
        n_best: int = N_BEST,
        n_recent: int = N_RECENT,
        key: Callable[[FrozenTrial], Any] | None = cell_content,
        **kwargs: Any,
    ) -> None:
        # The random start counts real trials, not the window's (which may hold fewer: one per key).
        self._startup = kwargs.pop("n_startup_trials", 10)
        super().__init__(*args, n_startup_trials=0, **kwargs)
        self._n_best, self._n_recent, self._key = n_best, n_recent, key
        self._cached: tuple[int, list[FrozenTrial]] = (-REFRESH, [])
        self._started = False

    def _starting(self, study: Study) -> bool:
        if not self._started:  # scans the (short) history only until the random start is over
            done = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
            self._started = len(done) >= self._startup
        return not self._started

    def window(self, study: Study) -> list[FrozenTrial]:
        """The finished trials the model sees (in trial order).

        Rebuilt once ``REFRESH`` new trials exist, not at every ask: counting all trials is O(1) in
        optuna's in-memory storage, filtering the finished ones is not, and a window at most one batch
        old (the running trials are always seen) changes nothing TPE does.
        """
        n_all = len(study._get_trials(deepcopy=False, states=None, use_cache=True))
        if n_all - self._cached[0] >= REFRESH or n_all < self._cached[0]:
            finished = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
            shown = finished
            if self._key is not None:
                best: dict[Any, FrozenTrial] = {}
                for t in finished:
                    k = self._key(t)
                    if k not in best or t.value < best[k].value:
                        best[k] = t
                shown = sorted(best.values(), key=lambda t: t.number)
            if len(shown) > self._n_best + self._n_recent:
                top = sorted(shown, key=lambda t: t.value)[: self._n_best]
                keep = {t.number for t in top} | {t.number for t in shown[-self._n_recent :]}
                shown = [t for t in shown if t.number in keep]
            self._cached = (n_all, shown)
        return self._cached[1]

    def _view(self, study: Study) -> Study:
        return _Window(study, self.window(study))  # type: ignore[return-value]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return super().infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._starting(study):
            return {}
        return super().sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if self._starting(study):
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        return super().sample_independent(self._view(study), trial, param_name, param_distribution)


def _tpe(seed: int | None, n_init: int) -> optuna.samplers.BaseSampler:
    # multivariate + group: model the define-by-run subspaces jointly (composition with its structure);
    # constant liar: a batch of asks does not propose the same point n times.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return WindowedTPESampler(
            n_startup_trials=n_init, multivariate=True, group=True, constant_liar=True, seed=seed
        )


def _random(seed: int | None, n_init: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int | None, int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
}


def make_sampler(name: str, seed: int | None, n_init: int) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise InputError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](seed, n_init)
