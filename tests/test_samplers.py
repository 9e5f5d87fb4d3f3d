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
from upotbo.search.samplers import WindowedTPESampler, make_sampler
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


def run(sampler: optuna.samplers.BaseSampler, n: int = 600, batch: int = 16) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    while len(study.trials) < n:
        trials = [study.ask() for _ in range(batch)]
        for t in trials:
            study.tell(t, toy_objective(t))
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


def test_scipy_special_matches_optunas_own_helpers():
    from upotbo.search import fast_math

    fast_math.use_scipy_special()
    x = np.random.default_rng(0).normal(0.0, 15.0, 5000)
    for name, optuna_version in fast_math.originals().items():
        arg = -np.abs(x) - 1e-3 if name == "_ndtri_exp" else x
        ours = fast_math._SCIPY[name](arg)
        np.testing.assert_allclose(ours, optuna_version(arg), rtol=1e-10, atol=1e-12)


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
