"""Trials in a shared study: reserve, heartbeat, finish, recover lost ones, see the others' results.

Many ``upotbo search`` processes (one machine or a cluster, any SQLAlchemy URL; PostgreSQL for more
than one) can work on one optuna study. Each process samples on its own in-memory mirror and talks to
the database once per batch, never once per parameter:

- ``reserve``: the batch's trials enter the study RUNNING, with their parameters and a heartbeat, in
  one transaction holding the study row lock (optuna's own rule for numbering trials), so numbers are
  unique and gap-free across processes;
- a ``Heartbeat`` thread refreshes the heartbeats of the trials in flight while the batch is scored;
- ``finish``: values, the crystal's user attrs and the final state, in one transaction; a trial that
  is no longer RUNNING (another process declared it lost) is left alone, so no trial is scored twice;
- ``recover``: a RUNNING trial whose heartbeat is older than the grace period belonged to a process
  that died (``kill -9``, node lost): it becomes FAIL with ``fail_stage="lost"`` and a WAITING copy
  with the same parameters is enqueued (at most ``MAX_ATTEMPTS`` times, then ``fail_stage="crash"``);
- ``claim_waiting``: WAITING trials (retries, or ``study.enqueue_trial`` from a user) become RUNNING
  for exactly one process (row lock and state check);
- ``new_finished``: the trials other processes finished since the last call, for the sampler.

This writes optuna's tables through optuna's own SQLAlchemy models (reached through
``upotbo.optuna_adapter``), batching what ``RDBStorage`` would commit row by row; everything it writes
is an ordinary optuna study that ``optuna.load_study`` and optuna-dashboard read.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from upotbo import optuna_adapter as adapter
from upotbo.optuna_adapter import (
    TrialHeartbeatModel,
    TrialModel,
    TrialParamModel,
    TrialUserAttributeModel,
    TrialValueModel,
)
from upotbo.storage.run_record import FailStage

MAX_ATTEMPTS = 3
HEARTBEAT_SECONDS = 10.0
GRACE_SECONDS = 60.0  # a RUNNING trial silent this long is declared lost


class TrialLedger:
    """One process's batched view of the study's trials (see the module docstring)."""

    def __init__(self, study: optuna.Study, grace_seconds: float = GRACE_SECONDS) -> None:
        rdb = adapter.rdb_storage(study)
        if rdb is None:
            raise TypeError("TrialLedger needs an RDB (SQLAlchemy) storage")
        self.rdb: optuna.storages.RDBStorage = rdb
        self.study_id = adapter.study_id(study)
        self.grace_seconds = grace_seconds
        self.worker = f"{socket.gethostname()}:{os.getpid()}"  # user attr ``worker`` of its trials
        self.seen: set[int] = set()  # trial ids already mirrored into this process's sampler
        self.in_flight: set[int] = set()
        self._stored_keys: dict[int, set[str]] = {}  # user attrs already in the db, per trial in flight
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------------

    def reserve(self, trials: Sequence[FrozenTrial], steps: int | None = None) -> list[tuple[int, int]]:
        """Store ``trials`` as RUNNING with a heartbeat; their (db id, trial number) pairs.

        Trials already finished here (a candidate that could not even be drawn) are stored RUNNING
        too and written by ``finish`` with the rest of their batch: one write per batch, not per trial.
        ``steps``: the study's step budget. Under the same lock that numbers the trials, only as many
        are stored as the budget has room for (trials finished, in flight or waiting, lost ones not
        counted), so processes that ask at the same moment never overshoot it together; the pairs
        are then for the first ``len(pairs)`` trials.
        """
        return self._insert(trials, running=True, steps=steps)

    def store(self, trials: Sequence[FrozenTrial]) -> list[tuple[int, int]]:
        """Store finished trials as they are (a solo run: nothing is ever left RUNNING by a kill)."""
        return self._insert(trials, running=False)

    def _insert(
        self, trials: Sequence[FrozenTrial], running: bool, steps: int | None = None
    ) -> list[tuple[int, int]]:
        if not trials:
            return []
        now = datetime.now()
        with adapter.rdb_session(self.rdb) as session:
            base = self._lock_study_and_count(session)
            if steps is not None:
                trials = trials[: max(0, steps - (base - self._lost(session)))]
                if not trials:
                    return []
            rows = [
                TrialModel(
                    study_id=self.study_id,
                    number=base + i,
                    state=TrialState.RUNNING if running else trial.state,
                    datetime_start=trial.datetime_start or now,
                    datetime_complete=None if running else now,
                )
                for i, trial in enumerate(trials)
            ]
            session.add_all(rows)
            session.flush()
            params, attrs, values = [], [], []
            for row, trial in zip(rows, trials, strict=True):
                params += _param_rows(row.trial_id, trial)
                attrs += _attr_rows(row.trial_id, {**trial.user_attrs, "worker": self.worker})
                values += [] if running else _value_rows(row.trial_id, trial.value)
            _bulk(session, TrialParamModel, params)
            _bulk(session, TrialUserAttributeModel, attrs)
            _bulk(session, TrialValueModel, values)
            if running:
                _bulk(session, TrialHeartbeatModel, [{"trial_id": row.trial_id} for row in rows])
            pairs = [(row.trial_id, row.number) for row in rows]
        with self._lock:
            self.seen.update(trial_id for trial_id, _ in pairs)
            if running:
                self.in_flight.update(trial_id for trial_id, _ in pairs)
                for (trial_id, _), trial in zip(pairs, trials, strict=True):
                    self._stored_keys[trial_id] = {*trial.user_attrs, "worker"}
        return pairs

    def finish(self, done: Sequence[tuple[int, FrozenTrial]]) -> list[int]:
        """Write each (db id, finished trial); returns the ids written (those still RUNNING)."""
        if not done:
            return []
        ids = [trial_id for trial_id, _ in done]
        with adapter.rdb_session(self.rdb) as session:
            rows = {
                row.trial_id: row
                for row in session.query(TrialModel)
                .filter(TrialModel.trial_id.in_(ids))
                .with_for_update()
                .all()
            }
            written, attrs, values = [], [], []
            for trial_id, trial in done:
                row = rows.get(trial_id)
                if row is None or row.state != TrialState.RUNNING:
                    continue  # declared lost meanwhile: its retry is someone else's now
                written.append(trial_id)
                values += _value_rows(trial_id, trial.value)
                attrs += _attr_rows(trial_id, trial.user_attrs, skip=self._stored_keys.get(trial_id, ()))
                row.state = trial.state
                row.datetime_complete = datetime.now()
            _bulk(session, TrialValueModel, values)
            _bulk(session, TrialUserAttributeModel, attrs)
        with self._lock:
            self.in_flight.difference_update(ids)
        for trial_id in ids:
            self._stored_keys.pop(trial_id, None)
        return written

    def beat(self) -> None:
        """Refresh the heartbeats of this process's trials in flight."""
        with self._lock:
            ids = list(self.in_flight)
        if not ids:
            return
        with adapter.rdb_session(self.rdb) as session:
            session.query(TrialHeartbeatModel).filter(
                TrialHeartbeatModel.trial_id.in_(ids)
            ).update({"heartbeat": sqlalchemy.func.current_timestamp()}, synchronize_session=False)

    def recover(self, everything: bool = False) -> int:
        """Fail RUNNING trials whose process died and enqueue their retries; how many were failed.

        ``everything``: treat every RUNNING trial not in flight here as lost (a solo run resuming
        after a kill knows nobody else is working), instead of waiting for the grace period.
        """
        with adapter.rdb_session(self.rdb) as session:
            now = _server_now(session)
            query = (
                session.query(TrialModel)
                .filter(TrialModel.study_id == self.study_id)
                .filter(TrialModel.state == TrialState.RUNNING)
            )
            candidates = [
                row
                for row in query.all()
                if row.trial_id not in self.in_flight and (everything or self._silent(row, now))
            ]
            if not candidates:
                return 0
            base = self._lock_study_and_count(session)
            rows = (
                session.query(TrialModel)
                .filter(TrialModel.trial_id.in_([r.trial_id for r in candidates]))
                .filter(TrialModel.state == TrialState.RUNNING)
                .with_for_update()
                .all()
            )
            for row in rows:
                attrs = {a.key: json.loads(a.value_json) for a in row.user_attributes}
                attempt = int(attrs.get("attempt", 1))
                retry = attempt < MAX_ATTEMPTS
                reason = (
                    f"its process stopped sending heartbeats (killed or lost) while building or scoring; "
                    f"{'retried' if retry else 'not retried after'} attempt {attempt}"
                )
                _bulk(
                    session,
                    TrialUserAttributeModel,
                    _attr_rows(
                        row.trial_id,
                        {"fail_stage": FailStage.LOST if retry else FailStage.CRASH, "fail_reason": reason},
                    ),
                )
                row.state = TrialState.FAIL
                row.datetime_complete = datetime.now()
                if retry:
                    copy = TrialModel(study_id=self.study_id, number=base, state=TrialState.WAITING)
                    base += 1
                    session.add(copy)
                    session.flush()
                    _bulk(
                        session,
                        TrialParamModel,
                        [
                            {
                                "trial_id": copy.trial_id,
                                "param_name": p.param_name,
                                "param_value": p.param_value,
                                "distribution_json": p.distribution_json,
                            }
                            for p in row.params
                        ],
                    )
                    _bulk(
                        session,
                        TrialUserAttributeModel,
                        _attr_rows(copy.trial_id, {"attempt": attempt + 1, "retry_of": row.number}),
                    )
            return len(rows)

    def claim_waiting(self, limit: int) -> list[FrozenTrial]:
        """Up to ``limit`` WAITING trials, now RUNNING (with a heartbeat) for this process only."""
        if limit <= 0:
            return []
        with adapter.rdb_session(self.rdb) as session:
            rows = (
                session.query(TrialModel)
                .filter(TrialModel.study_id == self.study_id)
                .filter(TrialModel.state == TrialState.WAITING)
                .order_by(TrialModel.trial_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .all()
            )
            rows = [row for row in rows if row.state == TrialState.WAITING]
            for row in rows:
                row.state = TrialState.RUNNING
                row.datetime_start = datetime.now()
            session.flush()
            _bulk(session, TrialHeartbeatModel, [{"trial_id": row.trial_id} for row in rows])
            _bulk(
                session,
                TrialUserAttributeModel,
                [a for row in rows for a in _attr_rows(row.trial_id, {"worker": self.worker})],
            )
            claimed = [adapter.frozen_trial_from_row(self.rdb, row) for row in rows]
        ids = [adapter.trial_id(t) for t in claimed]
        for trial_id, trial in zip(ids, claimed, strict=True):
            self._stored_keys[trial_id] = {*trial.user_attrs, "worker"}
        with self._lock:
            self.in_flight.update(ids)
            self.seen.update(ids)
        return claimed

    # -- reading -------------------------------------------------------------------------------------

    def new_finished(self) -> list[FrozenTrial]:
        """Finished trials this process has not seen yet (other processes' results), in id order."""
        with adapter.rdb_session(self.rdb) as session:
            ids = [
                trial_id
                for (trial_id,) in session.query(TrialModel.trial_id)
                .filter(TrialModel.study_id == self.study_id)
                .filter(TrialModel.state.in_((TrialState.COMPLETE, TrialState.FAIL)))
                .all()
                if trial_id not in self.seen
            ]
        trials = adapter.rdb_trials(self.rdb, self.study_id, ids)
        self.seen.update(adapter.trial_id(t) for t in trials)
        return trials

    def counts(self) -> dict[TrialState, int]:
        """Number of trials per state, straight from the database."""
        with adapter.rdb_session(self.rdb) as session:
            rows = (
                session.query(TrialModel.state, sqlalchemy.func.count(TrialModel.trial_id))
                .filter(TrialModel.study_id == self.study_id)
                .group_by(TrialModel.state)
                .all()
            )
        return {state: n for state, n in rows}

    # -- helpers -------------------------------------------------------------------------------------

    def _lock_study_and_count(self, session: Any) -> int:
        adapter.lock_study_row(session, self.study_id)
        return int(
            session.query(sqlalchemy.func.count(TrialModel.trial_id))
            .filter(TrialModel.study_id == self.study_id)
            .scalar()
        )

    def _lost(self, session: Any) -> int:
        """Trials failed as lost (their WAITING retries count as steps instead)."""
        return int(
            session.query(sqlalchemy.func.count(TrialUserAttributeModel.trial_user_attribute_id))
            .join(TrialModel, TrialModel.trial_id == TrialUserAttributeModel.trial_id)
            .filter(TrialModel.study_id == self.study_id)
            .filter(TrialUserAttributeModel.key == "fail_stage")
            .filter(TrialUserAttributeModel.value_json == json.dumps(FailStage.LOST))
            .scalar()
        )

    def _silent(self, row: Any, now: datetime) -> bool:
        if not row.heartbeats:
            return False  # created by someone without heartbeats (e.g. plain optuna): not ours to judge
        return (now - row.heartbeats[0].heartbeat).total_seconds() > self.grace_seconds


class Heartbeat:
    """Background thread: ``ledger.beat()`` every ``seconds`` while the ``with`` block runs."""

    def __init__(self, ledger: TrialLedger, seconds: float = HEARTBEAT_SECONDS) -> None:
        self.ledger, self.seconds = ledger, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="upotbo-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Wait for the thread's last beat; interrupted, wait briefly only: an interrupt raised
        inside the main thread's ``with`` of a shared lock can leave it held (CPython bpo-29988), and a
        beat waiting on it must not keep the search from exiting (the thread is a daemon)."""
        self._stop.set()
        self._thread.join(timeout=None if exc_type is None else 2.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.ledger.beat()
            except Exception:  # a missed beat is retried next time; the grace period covers several
                pass


def _bulk(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT (executemany): the ORM's per-object bookkeeping was most of the cost."""
    if rows:
        session.execute(sqlalchemy.insert(model), rows)


def _param_rows(trial_id: int, trial: FrozenTrial) -> list[dict[str, Any]]:
    return [
        {
            "trial_id": trial_id,
            "param_name": name,
            "param_value": trial.distributions[name].to_internal_repr(value),
            "distribution_json": distribution_to_json(trial.distributions[name]),
        }
        for name, value in trial.params.items()
    ]


def _attr_rows(trial_id: int, attrs: dict[str, Any], skip: Iterable[str] = ()) -> list[dict[str, Any]]:
    skip = set(skip)
    return [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
        if key not in skip
    ]


def _value_rows(trial_id: int, value: float | None) -> list[dict[str, Any]]:
    if value is None:
        return []
    stored, kind = adapter.stored_value(value)
    return [{"trial_id": trial_id, "objective": 0, "value": stored, "value_type": kind}]


def _server_now(session: Any) -> datetime:
    now = session.execute(sqlalchemy.select(sqlalchemy.func.current_timestamp())).scalar()
    if isinstance(now, str):  # SQLite returns text
        now = datetime.fromisoformat(now)
    return now.replace(tzinfo=None)
