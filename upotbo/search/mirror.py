"""The sampler's in-memory study, with running trials indexed.

TPE with the constant liar asks the study for its RUNNING trials at every suggestion (and the
bounded-history window does too); optuna's ``InMemoryStorage`` answers by scanning every trial. With a
batch in flight and 5,000 trials stored, those scans were the part of the sampler's cost that still
grew with the history. Here the running trials are kept in a small ordered index, so that query costs
the size of the batch, not of the study; everything else is optuna's storage unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState


class MirrorStorage(optuna.storages.InMemoryStorage):
    """``InMemoryStorage`` whose ``get_all_trials(states=(RUNNING,))`` does not scan the history."""

    def __init__(self) -> None:
        super().__init__()
        self._running: dict[int, dict[int, None]] = {}  # study id -> numbers of RUNNING trials, in order

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        with self._lock:
            trial_id = super().create_new_trial(study_id, template_trial)
            self._track(trial_id)
            return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._lock:
            changed = super().set_trial_state_values(trial_id, state, values)
            self._track(trial_id)
            return changed

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if states is None or tuple(states) != (TrialState.RUNNING,):  # type: ignore[arg-type]
            return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        with self._lock:
            self._check_study_id(study_id)
            trials = self._studies[study_id].trials
            running = [trials[number] for number in self._running.get(study_id, {})]
        return copy.deepcopy(running) if deepcopy else running

    def _track(self, trial_id: int) -> None:
        study_id, number = self._trial_id_to_study_id_and_number[trial_id]
        index = self._running.setdefault(study_id, {})
        if self._studies[study_id].trials[number].state == TrialState.RUNNING:
            index[number] = None
        else:
            index.pop(number, None)
