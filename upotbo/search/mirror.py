"""The sampler's in-memory study, with running trials indexed.

TPE with the constant liar asks the study for its RUNNING trials (and the bounded-history window does
too), and every ``study.ask`` for its WAITING ones; optuna's ``InMemoryStorage`` answers by scanning
every trial. With 5,000 trials stored, those scans were the part of the sampler's cost that still grew
with the history. Here the RUNNING and WAITING trials are kept in small ordered indexes, so those
queries cost the size of a batch, not of the study. And the study is read and written by one thread
(the search's main thread), so a parameter is set in place: optuna's copy-on-write of the trial and
its two dicts at every ``suggest_*`` made setting ~30 parameters cost O(30^2) copies per trial.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence

from optuna import distributions
from optuna.trial import FrozenTrial, TrialState

from upotbo.optuna_adapter import InMemoryStorageInternals

INDEXED = (TrialState.RUNNING, TrialState.WAITING)


class MirrorStorage(InMemoryStorageInternals):
    """``InMemoryStorage`` whose ``get_all_trials(states=(RUNNING,))`` (or WAITING) does not scan."""

    def __init__(self) -> None:
        super().__init__()
        # (study id, state) -> numbers of the trials in that state, in order
        self._index: dict[tuple[int, TrialState], dict[int, None]] = {}

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        with self.lock:
            trial_id = super().create_new_trial(study_id, template_trial)
            self._track(trial_id)
            return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self.lock:
            changed = super().set_trial_state_values(trial_id, state, values)
            self._track(trial_id)
            return changed

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
    ) -> None:
        with self.lock:
            trial = self.stored_trial(trial_id)
            self.check_trial_is_updatable(trial_id, trial.state)
            seen = self.seen_distributions(self.trial_position(trial_id)[0])
            if param_name in seen:
                distributions.check_distribution_compatibility(seen[param_name], distribution)
            seen[param_name] = distribution
            trial.params[param_name] = distribution.to_external_repr(param_value_internal)
            trial.distributions[param_name] = distribution

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        key = tuple(states) if states is not None else ()  # type: ignore[arg-type]
        if len(key) != 1 or key[0] not in INDEXED:
            return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        with self.lock:
            trials = self.stored_trials(study_id)
            found = [trials[number] for number in self._index.get((study_id, key[0]), {})]
        return copy.deepcopy(found) if deepcopy else found

    def _track(self, trial_id: int) -> None:
        study_id, number = self.trial_position(trial_id)
        state = self.stored_trial(trial_id).state
        for indexed in INDEXED:
            numbers = self._index.setdefault((study_id, indexed), {})
            if state == indexed:
                numbers[number] = None
            else:
                numbers.pop(number, None)


class FinishedFront:
    """Walks a study's trial list, which only grows and whose trials finish once: ``advance`` hands
    out each trial of the finished front (up to the first unfinished one) a single time, plus the
    tail from there (the batches in flight, looked at again on the next call). Lets a summary of the
    history be kept up to date without rescanning it."""

    def __init__(self) -> None:
        self.upto = 0  # trials before this one were finished and handed out

    def advance(self, trials: Sequence[FrozenTrial]) -> tuple[Sequence[FrozenTrial], Sequence[FrozenTrial]]:
        start = self.upto
        while self.upto < len(trials) and trials[self.upto].state.is_finished():
            self.upto += 1
        return trials[start : self.upto], trials[self.upto :]

