"""The windowed TPE, tested on the optimizer alone with a cheap analytic *toy* objective (no potential).

The toy mimics the search's difficulty: a smooth "composition" term plus a large random "structure luck"
term, and a cell-content key per trial like the search's ``cell_formula``.
"""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest

from upotbo.errors import InputError
from upotbo.search.samplers import REFRESH, WindowedTPESampler, make_sampler
from upotbo.space.space import _symmetric_pick
from upotbo.space.symmetry import compatible_space_groups, point_group_order

optuna.logging.set_verbosity(optuna.logging.WARNING)


def toy_objective(trial: optuna.Trial) -> float:
    """Toy: best at a = 30, b = 12, n0 == n1; luck adds up to 3 'eV/atom' of noise."""
    a, b = trial.suggest_int("el0", 0, 41), trial.suggest_int("el1", 0, 41)
    n0, n1 = trial.suggest_int("n0", 1, 5), trial.suggest_int("n1", 1, 5)
    trial.set_user_attr("cell_formula", f"{a}-{b}-{n0}-{n1}")
    luck = trial.suggest_float("x0", 0.0, 1.0)
    return -8.0 + ((a - 30) ** 2 + (b - 12) ** 2) / 100 + abs(n0 - n1) + 3.0 * luck


def run(
    sampler: optuna.samplers.BaseSampler, n: int = 600, batch: int = 16, sign: float = 1.0
) -> optuna.Study:
    """The toy, minimized; ``sign=-1``: its negative, maximized (the same problem the other way up)."""
    study = optuna.create_study(sampler=sampler, direction="minimize" if sign > 0 else "maximize")
    while len(study.trials) < n:
        trials = [study.ask() for _ in range(batch)]
        for t in trials:
            study.tell(t, sign * toy_objective(t))
    return study


def tpe(**kwargs) -> WindowedTPESampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WindowedTPESampler(
            n_startup_trials=100, multivariate=True, group=True, constant_liar=True, seed=0, **kwargs
        )


def test_window_is_bounded_and_keeps_one_trial_per_cell_content():
    sampler = tpe(n_best=20, n_recent=50)
    study = run(sampler, n=400)
    window = sampler.window(study)
    keys = [t.user_attrs["cell_formula"] for t in window]
    assert len(keys) == len(set(keys)) <= 70
    best = min(study.trials, key=lambda t: t.value)
    assert best.number in {t.number for t in window}  # the best crystal is always seen
    assert [t.number for t in window] == sorted(t.number for t in window)


def test_a_maximized_study_keeps_the_highest_trial_per_key():
    """Keyed by one element (42 keys, many trials each): each key's trial in the window is its best,
    and the best trial is in it, when best means highest."""
    sampler = tpe(n_best=20, n_recent=50, key=lambda t: t.params["el0"])
    study = run(sampler, n=400, sign=-1.0)
    window = sampler.window(study)
    built_on = study.trials[: sampler._cached[0]]  # the trials of the last rebuild
    for t in window:
        assert t.value == max(u.value for u in built_on if u.params["el0"] == t.params["el0"])
    assert study.best_trial.number in {t.number for t in window}


def test_random_start_counts_real_trials_not_the_window():
    """Few distinct cell contents must not keep TPE in its random phase forever."""
    sampler = tpe()
    study = optuna.create_study(sampler=sampler)
    for _ in range(120):  # only 1 cell content: window of 1, yet 120 real trials > 100 startup
        t = study.ask()
        t.suggest_float("x0", 0.0, 1.0)
        t.set_user_attr("cell_formula", "same")
        study.tell(t, t.params["x0"])
    assert not sampler._starting(study)
    t = study.ask()
    assert 0.0 <= t.suggest_float("x0", 0.0, 1.0) <= 1.0


def test_windowed_tpe_concentrates_where_compositions_are_good():
    """Despite 3 'eV/atom' of structure luck, late TPE draws sit near the best composition."""
    study = run(tpe())
    late = study.trials[300:]
    near = [t for t in late if abs(t.params["el0"] - 30) <= 3 and abs(t.params["el1"] - 12) <= 3]
    assert len(near) / len(late) > 0.2  # uniform draws land there 49 / 1764 = 2.8 % of the time


def test_tpe_is_fitted_once_per_window_and_sampled_many_times(monkeypatch):
    """A batch of asks reuses one fit per parameter group; the fit count does not grow per ask."""
    sampler = tpe()
    study = run(sampler, n=320, batch=32)
    fits = []
    original = sampler._fit
    monkeypatch.setattr(sampler, "_fit", lambda *a: fits.append(1) or original(*a))
    trials = [study.ask() for _ in range(32)]
    for t in trials:
        study.tell(t, toy_objective(t))
    assert 0 < len(fits) <= 2 * len(sampler._fits) + 2  # per group, at most a refit at the window's refresh
    assert len({(t.params["el0"], t.params["el1"], t.params["x0"]) for t in trials}) > 24  # still diverse


def test_uniform_parameters_are_drawn_at_random_not_modelled():
    """``natoms`` (by default) stays uniform even when small values score best; others are modelled."""
    study = optuna.create_study(sampler=tpe())
    for _ in range(400):
        t = study.ask()
        n, x = t.suggest_int("natoms", 2, 10), t.suggest_float("x0", 0.0, 1.0)
        t.set_user_attr("cell_formula", f"{n}-{x:.3f}")
        study.tell(t, n + 10 * x)  # best at natoms = 2, x0 = 0
    late = study.trials[200:]
    natoms = [t.params["natoms"] for t in late]
    assert 0.05 < natoms.count(2) / len(natoms) < 0.25  # uniform: 1/9; a model would pile up at 2
    assert np.median([t.params["x0"] for t in late]) < 0.25  # uniform median: 0.5
    sampler = study.sampler
    assert sampler._group_of("natoms") is None and "natoms" not in sampler._group_of("x0")  # not in l/g


def test_window_built_incrementally_equals_a_full_rescan():
    """Trials finish out of order (a batch told in reverse); each refreshed window is the one a full
    scan of the history gives: the best trial per cell content, its best 20 and latest 50."""
    sampler = tpe(n_best=20, n_recent=50)
    study = optuna.create_study(sampler=sampler)
    for _ in range(25):
        trials = [study.ask() for _ in range(16)]
        for t in reversed(trials):
            study.tell(t, toy_objective(t))
        best: dict = {}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            k = t.user_attrs["cell_formula"]
            if k not in best or t.value < best[k].value:
                best[k] = t
        by_number = sorted(best.values(), key=lambda t: t.number)
        expected = {t.number for t in sorted(by_number, key=lambda t: t.value)[:20]}
        expected |= {t.number for t in by_number[-50:]}
        if len(by_number) <= 70:  # room for them all
            expected = {t.number for t in by_number}
        sampler._cached = (-REFRESH, sampler._cached[1])  # force a rebuild now
        assert [t.number for t in sampler.window(study)] == sorted(expected)


def test_fast_density_equals_optunas_log_pdf():
    """Every kind of distribution TPE builds (categorical, int, log-int, float, log-float, stepped
    float, an int range too wide to tabulate), with few and many kernels, and points outside the
    bounds (density 0, log -inf)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
    from optuna.samplers._tpe.sampler import default_weights

    from upotbo.optuna_adapter import mixture_of
    from upotbo.search.parzen import TABLE, FastDensity, sample

    space = {
        "el0": IntDistribution(0, 41),
        "kind": CategoricalDistribution(["a", "b", "c"]),
        "share": FloatDistribution(0.0, 1.0),
        "volume": FloatDistribution(1.0, 5.0, log=True),
        "alpha": FloatDistribution(60.0, 120.0),
        "n": IntDistribution(1, 64, log=True),
        "q": FloatDistribution(0.0, 1.0, step=0.1),
        "wide": IntDistribution(0, 10 * TABLE),  # too many values to tabulate: computed per call
    }
    rng = np.random.default_rng(0)
    for kernels in (5, 300):
        observed = {
            "el0": rng.integers(0, 42, kernels).astype(float),
            "kind": rng.integers(0, 3, kernels).astype(float),
            "share": rng.random(kernels),
            "volume": np.exp(rng.uniform(0.0, np.log(5.0), kernels)),
            "alpha": rng.uniform(60.0, 120.0, kernels),
            "n": rng.integers(1, 65, kernels).astype(float),
            "q": np.round(rng.random(kernels) * 10) / 10,
            "wide": rng.integers(0, 10 * TABLE + 1, kernels).astype(float),
        }
        estimator = _ParzenEstimator(
            observed, space, _ParzenEstimatorParameters(1.0, True, False, default_weights, True)
        )
        x = sample(mixture_of(estimator), np.random.RandomState(1), 500)
        x[:3, 2] = [-0.5, 1.5, 0.5]  # share out of [0, 1] twice
        theirs = estimator.log_pdf(estimator._untransform(x))
        ours = FastDensity(mixture_of(estimator)).log_pdf(x)
        assert np.isneginf(ours[:2]).all() and np.isneginf(theirs[:2]).all()
        np.testing.assert_allclose(ours[2:], theirs[2:], rtol=1e-10, atol=1e-9)


def test_sampler_study_sets_parameters_in_place_and_keeps_optunas_checks():
    """MirrorStorage skips optuna's copy-on-write, not its checks; ``tell`` finishes the trial."""
    from upotbo.optuna_adapter import study_storage, tell, trial_id
    from upotbo.search.mirror import MirrorStorage

    study = optuna.create_study(storage=MirrorStorage())
    trial = study.ask()
    x, n = trial.suggest_float("x", 0.0, 1.0), trial.suggest_int("n", 1, 4)
    assert trial.suggest_float("x", 0.0, 1.0) == x  # asked twice: the first value
    tell(study, trial, 1.5)
    other = study.ask()
    with pytest.raises(ValueError, match="different distribution kind"):  # same name, other kind
        other.suggest_categorical("x", ["a", "b"])
    unit = optuna.distributions.FloatDistribution(0, 1)
    with pytest.raises(RuntimeError, match="finished"):  # a finished trial cannot be changed
        study_storage(study).set_trial_param(trial_id(trial), "y", 0.5, unit)
    done = study.trials[0]
    assert done.state == optuna.trial.TrialState.COMPLETE and done.value == 1.5
    assert done.params == {"x": x, "n": n}


def test_space_groups_weighted_by_symmetry():
    groups = compatible_space_groups((4, 4))
    draws = [groups[_symmetric_pick(u, groups)] for u in np.linspace(0.0, 1.0, 20001)]
    share = {n: draws.count(n) / len(draws) for n in (1, 225)}
    total = sum(point_group_order(n) for n in groups)
    assert share[225] == pytest.approx(48 / total, rel=0.02)
    assert share[1] == pytest.approx(1 / total, rel=0.2)
    assert set(draws) == set(groups)  # every compatible group stays reachable


def test_unknown_sampler_is_an_input_error():
    with pytest.raises(InputError, match="unknown sampler 'gp'"):
        make_sampler("gp", 0, 10)


def test_pareto_tpe_spreads_along_the_front_better_than_random():
    """Two toy objectives that disagree on ``el0`` (the toy wants 30, the second 5): the Pareto TPE's
    front dominates more of the box than random search's with the same trials and seeds."""
    from upotbo.optuna_adapter import hypervolume, non_domination_ranks

    def fronts(sampler: optuna.samplers.BaseSampler) -> np.ndarray:
        study = optuna.create_study(sampler=sampler)
        for _ in range(25):
            trials = [study.ask() for _ in range(16)]
            for t in trials:
                value = toy_objective(t)
                t.set_user_attr("properties", {"second": (t.params["el0"] - 5) ** 2 / 100 + t.params["x0"]})
                study.tell(t, value)
        done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        return np.array([[t.value, t.user_attrs["properties"]["second"]] for t in done])

    reference = np.array([0.0, 20.0])
    volumes = {}
    for name, sampler in (("tpe", tpe(further=(("second", 1),))),
                          ("random", optuna.samplers.RandomSampler(seed=0))):
        losses = fronts(sampler)
        front = losses[non_domination_ranks(losses) == 0]
        volumes[name] = hypervolume(front, reference)
    assert volumes["tpe"] > 1.05 * volumes["random"] > 0


def test_pareto_best_of_takes_the_feasible_front_before_infeasible_crystals():
    sampler = tpe(further=(("second", -1),))  # second objective maximized
    study = optuna.create_study()
    rows = [(1.0, 5.0, 0.0), (2.0, 9.0, 0.0), (3.0, 1.0, 0.0), (0.5, 50.0, 0.3)]  # value, second, violation
    for value, second, violation in rows:
        t = study.ask()
        t.set_user_attr("properties", {"second": second})
        t.set_user_attr("violation", violation)
        study.tell(t, value)
    def best(n: int) -> list[int]:
        return [t.number for t in sampler._best_of(study.trials, n, 1.0)]

    assert sorted(best(2)) == [0, 1]  # the front; 2 is dominated by 0, the infeasible 3 dominates all
    assert sorted(best(3)) == [0, 1, 2] and best(4)[-1] == 3  # infeasible only after every feasible one
