"""The trial ledger on a real SQLite file: reservations, heartbeats, lost trials and their retries."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from upotbo.errors import InputError
from upotbo.storage.ledger import MAX_ATTEMPTS, TrialLedger
from upotbo.storage.run_record import FailStage, is_step
from upotbo.storage.study_db import open_study

CRASH, LOST = FailStage.CRASH, FailStage.LOST

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _asked(x: float) -> optuna.trial.FrozenTrial:
    trial = create_trial(params={"x": x}, distributions={"x": FloatDistribution(0, 1)}, value=0.0)
    trial.state, trial.value = TrialState.RUNNING, None
    return trial


def _study(tmp_path) -> optuna.Study:
    return open_study(f"sqlite:///{tmp_path / 'study.db'}", {"pool": ["Zr"]}, resume=False)


def test_reserve_finish_and_counts(tmp_path):
    study = _study(tmp_path)
    ledger = TrialLedger(study)
    pairs = ledger.reserve([_asked(0.1), _asked(0.2), _asked(0.3)])
    assert [n for _, n in pairs] == [0, 1, 2]
    assert ledger.counts() == {TrialState.RUNNING: 3}
    done = []
    for (trial_id, _), x in zip(pairs, (0.1, 0.2), strict=False):
        finished = create_trial(params={"x": x}, distributions={"x": FloatDistribution(0, 1)}, value=-x)
        finished.set_user_attr("formula", "Zr")
        done.append((trial_id, finished))
    assert ledger.finish(done) == [pairs[0][0], pairs[1][0]]
    stored = study.get_trials(deepcopy=False)
    assert [t.state for t in stored] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    assert stored[1].value == pytest.approx(-0.2) and stored[1].user_attrs["formula"] == "Zr"
    assert stored[0].user_attrs["worker"] == ledger.worker
    assert ledger.new_finished() == []  # its own trials are not news to it
    other = TrialLedger(study)
    assert [t.number for t in other.new_finished()] == [0, 1]


def test_reserve_keeps_to_the_step_budget_lost_trials_not_counted(tmp_path):
    study = _study(tmp_path)
    first, second = TrialLedger(study), TrialLedger(study)
    assert len(first.reserve([_asked(0.1 * i) for i in range(3)], steps=5)) == 3
    assert len(second.reserve([_asked(0.5), _asked(0.6), _asked(0.7)], steps=5)) == 2  # room for 2 only
    assert second.reserve([_asked(0.8)], steps=5) == []
    survivor = TrialLedger(study, grace_seconds=-1.0)  # both others stopped sending heartbeats
    assert survivor.recover() == 5  # all lost; their 5 WAITING retries now hold the budget
    assert second.reserve([_asked(0.9)], steps=5) == []
    assert len(second.reserve([_asked(0.9)], steps=6)) == 1


def test_lost_trial_is_failed_retried_once_and_not_scored_twice(tmp_path):
    study = _study(tmp_path)
    dead = TrialLedger(study)  # a process that will stop sending heartbeats
    ((dead_id, _),) = dead.reserve([_asked(0.5)])
    survivor = TrialLedger(study, grace_seconds=3600.0)
    assert survivor.recover() == 0  # its heartbeat is fresh: not lost yet
    survivor.grace_seconds = -1.0  # every heartbeat is now too old
    assert survivor.recover() == 1
    assert survivor.recover() == 0  # failed once, retried once
    lost, retry = study.get_trials(deepcopy=False)
    assert lost.state == TrialState.FAIL and lost.user_attrs["fail_stage"] == LOST and not is_step(lost)
    assert retry.state == TrialState.WAITING and retry.params == lost.params
    assert retry.user_attrs["retry_of"] == lost.number and retry.user_attrs["attempt"] == 2
    # the dead process comes back and reports: its result is dropped, the retry owns the step
    late = create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=-1.0)
    assert dead.finish([(dead_id, late)]) == []
    claimed = survivor.claim_waiting(5)
    assert [t.number for t in claimed] == [retry.number]
    assert TrialLedger(study).claim_waiting(5) == []  # nobody else gets it
    assert survivor.counts() == {TrialState.FAIL: 1, TrialState.RUNNING: 1}


def test_a_trial_that_keeps_killing_workers_stops_being_retried(tmp_path):
    study = _study(tmp_path)
    ledger = TrialLedger(study, grace_seconds=-1.0)
    TrialLedger(study).reserve([_asked(0.7)])
    for _ in range(MAX_ATTEMPTS):
        ledger.recover()
        TrialLedger(study).claim_waiting(1)  # claimed by a process that dies in turn
    ledger.recover()
    states = [(t.state, t.user_attrs.get("fail_stage")) for t in study.get_trials(deepcopy=False)]
    assert states[-1] == (TrialState.FAIL, CRASH) and is_step(study.trials[-1])
    assert [s for s, _ in states].count(TrialState.FAIL) == MAX_ATTEMPTS
    assert ledger.counts().get(TrialState.WAITING, 0) == 0


def test_join_refuses_sqlite(tmp_path):
    with pytest.raises(InputError, match="--join needs a database server"):
        open_study(f"sqlite:///{tmp_path / 'study.db'}", {}, resume=False, join=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://upotbo:secret@127.0.0.1:1/nothing",
            "cannot open storage postgresql://127.0.0.1:1/nothing",
        ),
        ("nosuchdb://host/db", "cannot open storage"),
        ("not a url", "cannot open storage"),
    ],
)
def test_bad_storage_url_is_an_input_error(url, message):
    with pytest.raises(InputError, match=message) as info:
        open_study(url, {}, resume=False)
    assert "secret" not in str(info.value)


def test_an_interrupted_heartbeat_does_not_wait_for_a_stuck_beat():
    """A beat blocked on a lock an interrupt left held must not keep the search from exiting."""
    import threading
    import time

    from upotbo.storage.ledger import Heartbeat

    stuck = threading.Lock()
    stuck.acquire()

    class BlockedLedger:  # only what Heartbeat calls: its beat, here waiting forever
        def beat(self) -> None:
            with stuck:
                pass

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Heartbeat(BlockedLedger(), seconds=0.01):  # type: ignore[arg-type]
        time.sleep(0.1)
        raise KeyboardInterrupt
    assert time.monotonic() - t0 < 5
