"""The one door to optuna's internals: every private name of optuna that upotbo uses is reached here.

upotbo keeps optuna's study/trial/storage model (its databases open in optuna and optuna-dashboard),
but a fast search needs things optuna does not make public: a study's storage and id, a live trial's
id and frozen state, ``tell`` without the deep copy it returns, the in-memory storage's tables, TPE's
generator, split and Parzen estimators, and the SQLAlchemy models of an RDB storage. Any optuna
release can move these, so nothing else in upotbo touches them: a move breaks this module alone.

Written for and tested on optuna 5.1 (5.1.0); ``pyproject.toml`` pins ``optuna>=5.1,<5.2``.
``tests/test_optuna_adapter.py`` checks each piece against optuna itself: run it before widening the pin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
from optuna._hypervolume.hssp import _solve_hssp
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._base import _CONSTRAINTS_KEY
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.probability_distributions import _BatchedCategoricalDistributions
from optuna.samplers._tpe.sampler import _get_reference_point, _split_trials, default_gamma
from optuna.search_space.group_decomposed import _SearchSpaceGroup
from optuna.storages._rdb import models as _models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.study._multi_objective import _fast_non_domination_rank
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, Trial, TrialState

# -- studies and trials ------------------------------------------------------------------------------


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage behind ``study`` (optuna keeps it private on the study object)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage."""
    return study._study_id


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The trial's id in its storage (unique across studies, unlike its number)."""
    return trial._trial_id


def frozen_trial(study: optuna.Study, trial: Trial) -> FrozenTrial:
    """The stored state of a live trial, without the copy ``Trial`` makes of it."""
    return study._storage.get_trial(trial._trial_id)


def tell(
    study: optuna.Study, trial: Trial, value: float | None = None, state: TrialState | None = None
) -> None:
    """``study.tell`` without the deep copy of the finished trial it returns (unused here): with a
    trial's ~30 distributions, that copy cost more than the rest of the tell."""
    _tell_with_warning(study, trial, value, state)


def cached_trials(study: optuna.Study, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
    """The study's trials (not copied) from the list optuna caches per thread between asks and tells,
    as its samplers read them: no storage scan per call."""
    return study._get_trials(deepcopy=False, states=states, use_cache=True)


# -- the in-memory storage ---------------------------------------------------------------------------


class InMemoryStorageInternals(optuna.storages.InMemoryStorage):
    """optuna's ``InMemoryStorage`` with the internals a subclass needs, by name.

    For a subclass that indexes or updates trials in place (``upotbo.search.mirror``). The objects
    returned are the stored ones, not copies: read or change them only while holding ``lock``.
    """

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The storage's re-entrant lock (every public method holds it)."""
        return self._lock

    def stored_trial(self, trial_id: int) -> FrozenTrial:
        """The stored trial itself (raises ``KeyError`` for an unknown id)."""
        return self._get_trial(trial_id)

    def trial_position(self, trial_id: int) -> tuple[int, int]:
        """(study id, trial number) of a stored trial."""
        return self._trial_id_to_study_id_and_number[trial_id]

    def stored_trials(self, study_id: int) -> list[FrozenTrial]:
        """The study's list of stored trials, by number (raises ``KeyError`` for an unknown study)."""
        self._check_study_id(study_id)
        return self._studies[study_id].trials

    def seen_distributions(self, study_id: int) -> dict[str, BaseDistribution]:
        """Each parameter's first distribution in the study, against which later ones are checked."""
        return self._studies[study_id].param_distribution


# -- TPE -----------------------------------------------------------------------------------------------


def tpe_rng(sampler: TPESampler) -> np.random.RandomState:
    """The generator TPE draws its candidates from (seeded by the sampler's ``seed``)."""
    return sampler._rng.rng


def tpe_random_sample(
    sampler: TPESampler,
    study: optuna.Study,
    trial: FrozenTrial,
    name: str,
    distribution: BaseDistribution,
) -> Any:
    """A draw of TPE's own random sampler (its random start), which has a generator of its own."""
    return sampler._random_sampler.sample_independent(study, trial, name, distribution)


def tpe_candidates(sampler: TPESampler) -> int:
    """How many candidates TPE scores per draw (``n_ei_candidates``)."""
    return sampler._n_ei_candidates


def tpe_constant_liar(sampler: TPESampler) -> bool:
    """Whether running trials join TPE's "rest" set (``constant_liar``)."""
    return sampler._constant_liar


def tpe_gamma(sampler: TPESampler) -> Callable[[int], int]:
    """The size of TPE's good set for a number of finished trials (the sampler's ``gamma``)."""
    return sampler._gamma or default_gamma


def tpe_split(
    sampler: TPESampler, study: optuna.Study, trials: list[FrozenTrial]
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """TPE's split of ``trials`` into its good and rest sets, the good set sized by the sampler's gamma
    of the finished ones (running trials, the constant liars, go to the rest)."""
    n_finished = sum(t.state != TrialState.RUNNING for t in trials)
    return _split_trials(study, trials, tpe_gamma(sampler)(n_finished))


def search_space_groups(
    distributions: Iterable[dict[str, BaseDistribution]],
) -> list[dict[str, BaseDistribution]]:
    """TPE's group decomposition (``group=True``) of the trials' parameters: groups of parameters
    that always occur together."""
    groups = _SearchSpaceGroup()
    for each in distributions:
        groups.add_distributions(each)
    return groups.search_spaces


class Categorical(NamedTuple):
    """A categorical parameter of a fitted mixture: each kernel's choice probabilities (kernel, choice)."""

    weights: np.ndarray


class Numerical(NamedTuple):
    """A numerical parameter of a fitted mixture: each kernel's normal, truncated to [lower, upper].

    ``mu``, ``sigma``, ``lower``, ``upper`` are in TPE's internal scale (the log for a log parameter;
    a stepped one is widened by half a step on each side); ``low``, ``high``, ``step`` (0.0: continuous)
    are the parameter's own.
    """

    mu: np.ndarray
    sigma: np.ndarray
    low: float
    high: float
    step: float
    log: bool
    lower: float
    upper: float


class Mixture(NamedTuple):
    """A fitted Parzen estimator: kernels with ``weights``, each a product over the parameters."""

    weights: np.ndarray
    params: list[Categorical | Numerical]


def mixture_of(estimator: _ParzenEstimator) -> Mixture:
    """An optuna Parzen estimator's mixture, in upotbo's own types (optuna's are private)."""
    mixture = estimator._mixture_distribution
    params: list[Categorical | Numerical] = [
        Categorical(d.weights)
        if isinstance(d, _BatchedCategoricalDistributions)
        else Numerical(d.mu, d.sigma, d.low, d.high, d.step, d.is_log, d.adapted_low, d.adapted_high)
        for d in mixture.distributions
    ]
    return Mixture(mixture.weights, params)


def tpe_mixture(
    sampler: TPESampler,
    study: optuna.Study,
    space: dict[str, BaseDistribution],
    trials: list[FrozenTrial],
    below: bool,
) -> Mixture:
    """The Parzen estimator TPE fits on ``trials`` over ``space`` (``below``: the good set's)."""
    return mixture_of(sampler._build_parzen_estimator(study, space, trials, handle_below=below))


# -- RDB storages ----------------------------------------------------------------------------------

# optuna's SQLAlchemy models of the tables ``upotbo.storage.ledger`` writes in one transaction per batch.
# They are optuna's database schema, which changes only with a migration of optuna's own.
StudyModel = _models.StudyModel
TrialModel = _models.TrialModel
TrialParamModel = _models.TrialParamModel
TrialValueModel = _models.TrialValueModel
TrialUserAttributeModel = _models.TrialUserAttributeModel
TrialHeartbeatModel = _models.TrialHeartbeatModel


def rdb_storage(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The study's RDB storage, unwrapped from the cache optuna puts around it; None for another kind."""
    storage = study_storage(study)
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


@contextmanager
def rdb_session(rdb: optuna.storages.RDBStorage) -> Iterator[Any]:
    """This thread's session of the storage's engine, as ``RDBStorage`` opens its own: committed on exit,
    rolled back on any error (a batch is written whole or not at all), closed in either case."""
    with _create_scoped_session(rdb.scoped_session) as session:
        yield session


def lock_study_row(session: Any, study_id: int) -> None:
    """Lock the study's row until the session ends: optuna's rule for numbering a study's trials."""
    _models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)


def stored_value(value: float) -> tuple[float | None, Any]:
    """(value, value type) of an objective value as a ``TrialValueModel`` row holds it (infinities apart)."""
    return _models.TrialValueModel.value_to_stored_repr(value)


def frozen_trial_from_row(rdb: optuna.storages.RDBStorage, row: Any) -> FrozenTrial:
    """The ``FrozenTrial`` of a ``TrialModel`` row (read within its session)."""
    return rdb._build_frozen_trial_from_trial_model(row)


def rdb_trials(rdb: optuna.storages.RDBStorage, study_id: int, ids: Iterable[int]) -> list[FrozenTrial]:
    """The study's trials with these ids, in id order, loaded as ``RDBStorage`` loads trials (one query)."""
    wanted = set(ids)
    if not wanted:
        return []
    trials = rdb._get_trials(study_id, None, wanted, max(wanted) - 1)
    return [t for t in trials if t._trial_id in wanted]


# -- constraints -------------------------------------------------------------------------------------


def set_constraints(study: optuna.Study, trial: Trial, values: Sequence[float]) -> None:
    """Record a running trial's constraint values (<= 0: met) where TPE's split reads them
    (``trial.constraints``), as ``TPESampler(constraints_func=...)`` does after a tell."""
    study._storage.set_trial_system_attr(trial._trial_id, _CONSTRAINTS_KEY, tuple(values))


def with_constraints(trial: FrozenTrial, values: Sequence[float]) -> FrozenTrial:
    """The same for a finished trial brought in from storage (before ``add_trials``), which no tell of
    this process saw."""
    trial.system_attrs[_CONSTRAINTS_KEY] = tuple(values)
    return trial


# -- Pareto fronts -----------------------------------------------------------------------------------


def non_domination_ranks(losses: np.ndarray, n_below: int | None = None) -> np.ndarray:
    """Each point's Pareto layer (0: the front) of ``losses`` (points x objectives, lower is better);
    with ``n_below``, layers are only told apart until that many points are ranked (the rest share one)."""
    return _fast_non_domination_rank(np.asarray(losses, dtype=float), n_below=n_below)


def hypervolume(losses: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by ``losses`` (lower is better) and bounded by ``reference``."""
    points = np.asarray(losses, dtype=float)
    inside = points[np.all(points < reference, axis=1)]
    return float(compute_hypervolume(inside, np.asarray(reference, dtype=float))) if len(inside) else 0.0


def pareto_below(losses: np.ndarray, n_below: int) -> np.ndarray:
    """Indices of MOTPE's "good" set: the ``n_below`` best points by Pareto layer, the last layer cut
    by hypervolume subset selection, as ``TPESampler`` splits a multi-objective study's trials."""
    losses = np.asarray(losses, dtype=float)
    if n_below <= 0:
        return np.arange(0)
    if n_below >= len(losses):
        return np.arange(len(losses))
    ranks = _fast_non_domination_rank(losses, n_below=n_below)
    layers, counts = np.unique(ranks, return_counts=True)
    whole = int(np.max(layers[np.cumsum(counts) <= n_below], initial=-1))
    below = np.flatnonzero(ranks <= whole)
    if below.size < n_below:
        cut = np.flatnonzero(ranks == whole + 1)
        picked = _solve_hssp(losses[cut], cut, n_below - below.size, _get_reference_point(losses[cut]))
        below = np.append(below, picked)
    return np.sort(below)
