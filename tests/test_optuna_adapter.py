"""``upotbo.optuna_adapter`` and the TPE math that replaced optuna's, each checked against optuna itself.

Run this first on a new optuna release: a failure names the internal that moved. The comparisons
with optuna's own truncated-normal functions run on the originals (no monkeypatch is active; the
first test checks that), except one test that swaps in scipy's functions exactly as upotbo did
before the adapter, to show that the search draws the very same points it drew then.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe import _truncnorm
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_weights
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace
from optuna.trial import TrialState
from scipy import special

from upotbo import optuna_adapter as adapter
from upotbo.search.mirror import MirrorStorage
from upotbo.search.parzen import log_gauss_mass, sample
from upotbo.search.samplers import WindowedTPESampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Every kind of distribution TPE builds a kernel for.
KINDS = {
    "categorical": CategoricalDistribution(["a", "b", "c", "d"]),
    "int": IntDistribution(0, 41),
    "log_int": IntDistribution(1, 64, log=True),
    "stepped_int": IntDistribution(0, 20, step=4),
    "float": FloatDistribution(-2.0, 3.0),
    "log_float": FloatDistribution(0.5, 50.0, log=True),
    "stepped_float": FloatDistribution(0.0, 1.0, step=0.1),
}
SCIPY = {"_log_ndtr": special.log_ndtr, "_ndtri_exp": special.ndtri_exp, "erf": special.erf}


def _estimator(space: dict, kernels: int, seed: int = 0) -> _ParzenEstimator:
    """optuna's Parzen estimator on ``kernels`` random observations of ``space``."""
    rng = np.random.default_rng(seed)
    observed = {}
    for name, d in space.items():
        if isinstance(d, CategoricalDistribution):
            observed[name] = rng.integers(0, len(d.choices), kernels).astype(float)
        else:
            values, step = rng.uniform(d.low, d.high, kernels), d.step or 0.0
            observed[name] = d.low + np.round((values - d.low) / step) * step if step else values
    parameters = _ParzenEstimatorParameters(1.0, True, False, default_weights, True)
    return _ParzenEstimator(observed, space, parameters)


def _bounds() -> tuple[np.ndarray, np.ndarray]:
    """Intervals [a, b] across the left tail, the centre and the right tail, narrow and wide, and empty."""
    edges = [-45.0, -38.0, -20.5, -8.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 0.7, 5.0, 8.0, 20.5, 38.0, 45.0]
    a, b = np.meshgrid(edges, edges, indexing="ij")
    keep = a <= b
    rng = np.random.default_rng(3)
    ra = rng.normal(0.0, 12.0, 4000)
    rb = ra + rng.exponential(2.0, 4000)
    return np.concatenate([a[keep], ra]), np.concatenate([b[keep], rb])


def test_optunas_truncnorm_is_not_patched_by_upotbo():
    """Importing and running upotbo's TPE leaves optuna's module as optuna wrote it."""
    study = optuna.create_study(sampler=make_sampler("tpe", 0, 2))
    for _ in range(6):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    for name in SCIPY:
        assert getattr(_truncnorm, name).__module__.startswith("optuna."), name


def test_log_gauss_mass_equals_optunas():
    a, b = _bounds()
    with np.errstate(divide="ignore"):  # log(0) of the empty intervals
        ours, theirs = log_gauss_mass(a, b), _truncnorm._log_gauss_mass(a, b)
    assert np.array_equal(np.isneginf(ours), np.isneginf(theirs))  # a == b: no mass
    finite = np.isfinite(theirs)
    assert finite.sum() > 4000 and (theirs[finite] < -600).any()  # deep tails are compared too
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", [*KINDS, "all"])
def test_sampling_equals_optunas(kind):
    """Same seed, same points as optuna's ``_MixtureOfProductDistribution.sample`` (its pure-Python
    normal quantile converges to 1e-8), and the generator is left in the same state."""
    space = KINDS if kind == "all" else {kind: KINDS[kind]}
    for kernels in (1, 7, 300):
        estimator = _estimator(space, kernels)
        ours_rng, their_rng = np.random.RandomState(5), np.random.RandomState(5)
        ours = sample(adapter.mixture_of(estimator), ours_rng, 500)
        theirs = estimator._mixture_distribution.sample(their_rng, 500)
        assert ours_rng.random_sample() == their_rng.random_sample()
        for column, d in enumerate(space.values()):
            if isinstance(d, CategoricalDistribution) or d.step not in (None, 0.0):
                np.testing.assert_array_equal(ours[:, column], theirs[:, column])
            else:
                np.testing.assert_allclose(ours[:, column], theirs[:, column], rtol=1e-8, atol=1e-12)


def test_sampling_and_mass_equal_optuna_on_scipy_bit_for_bit(monkeypatch):
    """With scipy's functions in optuna's module (how upotbo ran before the adapter, reverted at the
    end of this test), draws and masses are identical to the bit: a seeded search keeps its trials."""
    for name, function in SCIPY.items():
        monkeypatch.setattr(_truncnorm, name, function)
    a, b = _bounds()
    with np.errstate(divide="ignore"):  # log(0) of the empty intervals
        np.testing.assert_array_equal(log_gauss_mass(a, b), _truncnorm._log_gauss_mass(a, b))
    for kernels in (1, 300):
        estimator = _estimator(KINDS, kernels, seed=kernels)
        ours = sample(adapter.mixture_of(estimator), np.random.RandomState(9), 2000)
        theirs = estimator._mixture_distribution.sample(np.random.RandomState(9), 2000)
        np.testing.assert_array_equal(ours, theirs)


def test_mixture_of_keeps_every_kernel():
    estimator = _estimator(KINDS, 12)
    theirs = estimator._mixture_distribution
    ours = adapter.mixture_of(estimator)
    np.testing.assert_array_equal(ours.weights, theirs.weights)
    for (name, d), mine, their in zip(KINDS.items(), ours.params, theirs.distributions, strict=True):
        if isinstance(d, CategoricalDistribution):
            assert isinstance(mine, adapter.Categorical)
            np.testing.assert_array_equal(mine.weights, their.weights)
            continue
        assert isinstance(mine, adapter.Numerical), name
        np.testing.assert_array_equal(mine.mu, their.mu)
        np.testing.assert_array_equal(mine.sigma, their.sigma)
        step = d.step or 0.0  # ints step by 1; a float without a step is continuous
        expected = (d.low - step / 2, d.high + step / 2)  # a value's interval is half a step either side
        if d.log:
            expected = (math.log(expected[0]), math.log(expected[1]))
        assert (mine.lower, mine.upper) == pytest.approx(expected, rel=1e-15)
        assert (mine.low, mine.high, mine.step, mine.log) == (d.low, d.high, step, d.log)


# -- studies and trials ------------------------------------------------------------------------------


def test_study_and_trial_ids_and_frozen_trial_match_optunas_public_answers(tmp_path):
    for storage in (optuna.storages.InMemoryStorage(), f"sqlite:///{tmp_path / 'ids.db'}"):
        study = optuna.create_study(storage=storage, study_name="ids")
        public = optuna.storages.get_storage(storage)
        assert adapter.study_id(study) == public.get_study_id_from_name("ids")
        trials = [study.ask() for _ in range(3)]
        trials[1].suggest_int("n", 1, 4)
        trials[1].set_user_attr("formula", "ZrC")
        for trial in trials:
            expected = public.get_trial_id_from_study_id_trial_number(adapter.study_id(study), trial.number)
            assert adapter.trial_id(trial) == expected
            assert adapter.trial_id(adapter.frozen_trial(study, trial)) == expected
        frozen = adapter.frozen_trial(study, trials[1])
        assert frozen == study.trials[1] and frozen.user_attrs == {"formula": "ZrC"}
        assert adapter.study_storage(study).get_n_trials(adapter.study_id(study)) == 3
        rdb = adapter.rdb_storage(study)
        assert rdb is None if isinstance(storage, optuna.storages.InMemoryStorage) else rdb.url == storage


class _Told(optuna.samplers.RandomSampler):
    """Records the trials whose ``after_trial`` ran (the windowed TPE forgets a trial's draws there)."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.told: list[tuple[int, TrialState]] = []

    def after_trial(self, study, trial, state, values) -> None:
        self.told.append((trial.number, state))


def test_tell_finishes_a_trial_as_study_tell_does():
    ours, theirs = optuna.create_study(sampler=_Told()), optuna.create_study(sampler=_Told())
    for study, tell in ((ours, adapter.tell), (theirs, lambda s, t, v=None, state=None: s.tell(t, v, state))):
        complete, failed = study.ask(), study.ask()
        complete.suggest_float("x", 0.0, 1.0)
        tell(study, complete, 1.5)
        tell(study, failed, state=TrialState.FAIL)
        with pytest.raises(ValueError, match="Cannot tell a COMPLETE trial"):  # told once only
            tell(study, complete, 2.0)
        tell(study, study.ask())  # no value, no state: optuna's answer (a FAIL, with a warning)
    assert [(t.state, t.values, t.params) for t in ours.trials] == [
        (t.state, t.values, t.params) for t in theirs.trials
    ]
    assert [t.state for t in ours.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    assert ours.sampler.told == theirs.sampler.told == [(n, t.state) for n, t in enumerate(ours.trials)]


def test_cached_trials_are_the_studys_trials_after_every_tell():
    study = optuna.create_study()
    for x in (0.3, 0.1, 0.2):
        trial = study.ask()
        assert adapter.cached_trials(study) == study.get_trials(deepcopy=False)
        study.tell(trial, x)
        for states in (None, (TrialState.COMPLETE,), (TrialState.RUNNING,)):
            assert adapter.cached_trials(study, states) == study.get_trials(deepcopy=False, states=states)


def test_in_memory_storage_internals_are_the_stored_objects():
    storage = MirrorStorage()
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    tid, sid = adapter.trial_id(trial), adapter.study_id(study)
    with storage.lock, storage.lock:  # re-entrant, as optuna's public methods take it within each other
        assert storage.stored_trial(tid) is storage.get_trial(tid)
        assert storage.trial_position(tid) == (sid, storage.get_trial_number_from_id(tid))
        assert storage.stored_trials(sid) == storage.get_all_trials(sid, deepcopy=False)
        assert storage.seen_distributions(sid) == {"x": FloatDistribution(0.0, 1.0)}
    with pytest.raises(KeyError):
        storage.stored_trials(sid + 1)
    with pytest.raises(KeyError):
        storage.stored_trial(tid + 1)


# -- TPE ---------------------------------------------------------------------------------------------


def _tpe(**kwargs) -> TPESampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(multivariate=True, group=True, **kwargs)


def _history(n: int = 40) -> optuna.Study:
    """A study with two parameter groups, finished trials and two running ones."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for i in range(n):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        if i % 2:
            trial.suggest_int("n", 1, 8)
        study.tell(trial, (x - 0.3) ** 2)
    for _ in range(2):
        study.ask().suggest_float("x", 0.0, 1.0)
    return study


def test_tpe_settings_and_generators_are_the_samplers():
    sampler = _tpe(seed=4, n_ei_candidates=17, constant_liar=True)
    assert adapter.tpe_candidates(sampler) == 17 and adapter.tpe_constant_liar(sampler) is True
    assert adapter.tpe_constant_liar(_tpe(seed=4, constant_liar=False)) is False
    assert adapter.tpe_rng(sampler).random_sample() == np.random.RandomState(4).random_sample()
    study = _history(4)
    trial, d = study.trials[0], FloatDistribution(0.0, 10.0)
    twin = optuna.samplers.RandomSampler(seed=4)  # TPE's random start: a RandomSampler with its seed
    expected = twin.sample_independent(study, trial, "y", d)
    assert adapter.tpe_random_sample(sampler, study, trial, "y", d) == expected


def test_tpe_split_is_the_best_gamma_finished_trials():
    study = _history()
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    below, above = adapter.tpe_split(_tpe(), study, trials)
    finished = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert {t.number for t in below} == {t.number for t in finished[:4]}  # ceil(10 % of 40)
    assert {t.number for t in above} == {t.number for t in trials} - {t.number for t in below}


def test_search_space_groups_are_tpes_groups():
    study = _history()
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ours = adapter.search_space_groups(t.distributions for t in finished)
    theirs = _GroupDecomposedSearchSpace(include_pruned=True).calculate(study).search_spaces
    assert ours == theirs and sorted(map(sorted, ours)) == [["n"], ["x"]]


def test_tpe_mixture_is_the_estimator_tpe_builds():
    study, sampler = _history(), _tpe(seed=0)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    space = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 8)}
    for below in (True, False):
        ours = adapter.tpe_mixture(sampler, study, space, trials, below=below)
        estimator = sampler._build_parzen_estimator(study, space, trials, handle_below=below)
        theirs = estimator._mixture_distribution
        np.testing.assert_array_equal(ours.weights, theirs.weights)
        for mine, their in zip(ours.params, theirs.distributions, strict=True):
            np.testing.assert_array_equal(mine.mu, their.mu)
            np.testing.assert_array_equal(mine.sigma, their.sigma)


def test_windowed_sampler_shadows_no_private_name_of_tpe():
    """The windowed sampler's own private attributes and methods are not TPESampler's (a new optuna
    release adding one of these names would otherwise be overridden without a word)."""
    names = (*vars(WindowedTPESampler), *WindowedTPESampler.__init__.__code__.co_names)
    ours = {n for n in names if n.startswith("_") and not n.startswith("__")} - {"_abc_impl"}
    assert "_fit" in ours and "_cached" in ours
    assert ours & (set(dir(TPESampler)) | set(vars(_tpe(seed=0)))) == set()


# -- RDB storages ------------------------------------------------------------------------------------


def test_rdb_helpers_write_a_trial_optuna_reads_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'rdb.db'}"
    study = optuna.create_study(storage=url, study_name="rdb")
    rdb, sid = adapter.rdb_storage(study), adapter.study_id(study)
    assert isinstance(rdb, optuna.storages.RDBStorage)
    x = FloatDistribution(0.0, 2.0)
    with adapter.rdb_session(rdb) as session:
        adapter.lock_study_row(session, sid)
        now = datetime.now()
        rows = [
            adapter.TrialModel(
                study_id=sid, number=n, state=TrialState.COMPLETE, datetime_start=now, datetime_complete=now
            )
            for n in range(2)
        ]
        session.add_all(rows)
        session.flush()
        for row, value in zip(rows, (0.5, math.inf), strict=True):
            stored, kind = adapter.stored_value(value)
            session.add(
                adapter.TrialValueModel(trial_id=row.trial_id, objective=0, value=stored, value_type=kind)
            )
            session.add(
                adapter.TrialParamModel(
                    trial_id=row.trial_id,
                    param_name="x",
                    param_value=x.to_internal_repr(1.25),
                    distribution_json=optuna.distributions.distribution_to_json(x),
                )
            )
            attr = adapter.TrialUserAttributeModel(trial_id=row.trial_id, key="formula", value_json='"ZrC"')
            session.add(attr)
        session.flush()
        frozen = [adapter.frozen_trial_from_row(rdb, row) for row in rows]
    loaded = optuna.load_study(study_name="rdb", storage=url).trials
    assert [(t.state, t.value, t.params, t.user_attrs) for t in loaded] == [
        (TrialState.COMPLETE, 0.5, {"x": 1.25}, {"formula": "ZrC"}),
        (TrialState.COMPLETE, math.inf, {"x": 1.25}, {"formula": "ZrC"}),
    ]
    assert [(t.number, t.value, t.params) for t in frozen] == [(t.number, t.value, t.params) for t in loaded]
    ids = [adapter.trial_id(t) for t in loaded]
    assert adapter.rdb_trials(rdb, sid, ids[1:]) == loaded[1:]
    assert adapter.rdb_trials(rdb, sid, ids) == loaded and adapter.rdb_trials(rdb, sid, []) == []


def test_rdb_session_rolls_back_any_error(tmp_path):
    """A batch that fails halfway (a Python error, not only a database one) leaves nothing behind, not
    even for the thread's next transaction to commit."""
    url = f"sqlite:///{tmp_path / 'rollback.db'}"
    study = optuna.create_study(storage=url)
    rdb = adapter.rdb_storage(study)
    with pytest.raises(KeyError), adapter.rdb_session(rdb) as session:
        session.add(adapter.TrialModel(study_id=adapter.study_id(study), number=0, state=TrialState.RUNNING))
        session.flush()
        raise KeyError("a parameter without its distribution")
    with adapter.rdb_session(rdb) as session:
        adapter.lock_study_row(session, adapter.study_id(study))
    assert optuna.load_study(study_name=study.study_name, storage=url).trials == []


def test_pareto_below_is_motpes_split_of_a_multi_objective_study():
    """Same good set as optuna's TPE on a real two-objective study (layers, then HSSP on the last)."""
    from optuna.samplers._tpe.sampler import _split_complete_trials_multi_objective

    rng = np.random.default_rng(3)
    study = optuna.create_study(directions=["minimize", "maximize"])
    for x, y in rng.normal(size=(60, 2)):
        study.add_trial(optuna.trial.create_trial(values=[float(x), float(y)], params={}, distributions={}))
    trials = study.get_trials(deepcopy=False)
    losses = np.array([[t.values[0], -t.values[1]] for t in trials])
    for n_below in (0, 1, 6, 13, 60):
        below, _ = _split_complete_trials_multi_objective(trials, study, n_below)
        assert adapter.pareto_below(losses, n_below).tolist() == sorted(t.number for t in below)


def test_non_domination_ranks_and_hypervolume():
    losses = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [2.5, 2.5]])
    assert adapter.non_domination_ranks(losses).tolist() == [0, 0, 0, 2, 1]
    # the front's staircase under (4, 4): 3x1 + 2x1 + 1x1
    assert adapter.hypervolume(losses, np.array([4.0, 4.0])) == pytest.approx(6.0)
    assert adapter.hypervolume(losses, np.array([0.5, 0.5])) == 0.0  # nothing inside the box
