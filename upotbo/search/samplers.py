"""Samplers behind one registry (no string if/elif over backends): name -> factory."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

from upotbo.errors import InputError


def _tpe(seed: int | None, n_init: int) -> optuna.samplers.BaseSampler:
    # multivariate + group: model the define-by-run subspaces jointly (composition with its structure);
    # constant liar: a batch of asks does not propose the same point n times.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
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
