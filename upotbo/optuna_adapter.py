"""The one door to optuna's internals: every private name of optuna that upotbo uses is reached here.

upotbo keeps optuna's study/trial/storage model (its databases open in optuna and optuna-dashboard),
but a fast search needs a few things optuna does not make public: a study's storage and id, a live
trial's id and frozen state, and ``tell`` without the deep copy it returns. Any optuna release can
move these; ``tests/test_optuna_adapter.py`` checks each against optuna itself, and ``pyproject.toml``
pins optuna to the range those tests pass on.
"""

from __future__ import annotations

import optuna
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, Trial, TrialState


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
