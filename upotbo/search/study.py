"""The search: ties space, sampler, builder, potential, property and storage together.

A pipeline in batches. The sampler works on an in-memory optuna study (fast asks, no per-parameter
database round trips): ask a batch, draw each candidate and hand the crystals to the ``Builder``
(``workers`` processes). While they are built, the previous batch is scored in one batched potential
call by the ``Scorer`` (a process of its own) while the main thread samples the next batch; then it is
told to the sampler and written to the database in one transaction. So each batch is asked while the
one before it is still being scored (the sampler sees it as running: TPE's constant liar), sampling
and building overlap scoring, and the schedule is the same for any number of workers: same seed and
settings, same run.

A solo run stores trials only once finished: a kill loses at most the batches in flight and never
leaves a trial RUNNING; ``resume`` goes on from what is stored. Several processes can share one study
(``join=True``, a server database such as PostgreSQL): a batch is then reserved (RUNNING, with a
heartbeat) before it is built, each process syncs the others' finished trials into its sampler once
per batch, and the ``TrialLedger`` keeps the books (unique trial numbers, a trial scored by one
process only, trials of a process that died failed and retried).
"""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pymatgen.core import Structure

from upotbo.errors import CandidateFailed
from upotbo.optuna_adapter import tell
from upotbo.potentials.base import Potential
from upotbo.properties.base import Property
from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.mirror import FinishedFront, MirrorStorage
from upotbo.search.samplers import make_sampler
from upotbo.search.scoring import Scorer
from upotbo.search.workers import SYMPREC as SYMPREC  # re-exported: the landscape names groups alike
from upotbo.search.workers import Builder, Built, check_workers
from upotbo.space.space import Candidate, SearchSpace
from upotbo.storage.ledger import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    UNUSED,
    Heartbeat,
    TrialLedger,
    is_step,
)
from upotbo.storage.study_db import open_study, prepare_out_dir, run_settings, storage_url, write_settings

# Main-thread wall time per stage ("score": waiting for the scorer) and, apart, the scorer's own busy
# time ("score_busy", overlapping the sampler and the build workers).
STAGES = ("sampler", "build", "score", "describe", "storage")


@dataclass
class Progress:
    """What observers see after each batch."""

    steps: int
    total: int
    best_value: float | None
    best_formula: str | None
    scored: int
    failed: int
    elapsed: float


@dataclass
class SearchResult:
    steps: int
    best_value: float | None
    best_formula: str | None
    best_step: int | None
    elapsed: float
    scored: int
    failed: int
    potential_calls: int
    reached_target_at: int | None = None
    history: list[tuple[int, float]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # main-process wall time per stage


@dataclass
class _Batch:
    """Trials asked together: their database ids, candidates (None: failed to draw) and builds."""

    trials: list[optuna.Trial]
    ids: list[int | None]  # None: not in the database yet (a solo run stores trials once finished)
    candidates: list[Candidate | None]
    builds: Any  # handle from Builder.submit


class Search:
    """A resumable UPot-BO search writing to ``out_dir`` (or ``storage``, any SQLAlchemy URL).

    ``workers``: crystal-building processes (0 = build in this process). ``join``: share the study in
    ``storage`` with other processes (create it if missing); each process then samples with its own
    seed stream so they do not propose the same candidates.
    """

    def __init__(
        self,
        space: SearchSpace,
        potential: Potential,
        prop: Property,
        out_dir: str | Path,
        sampler: str = "tpe",
        n_init: int = 200,
        seed: int | None = 0,
        relax_steps: int = 0,
        fmax: float = 0.05,
        batch_size: int = 32,
        storage: str | None = None,
        resume: bool = False,
        prune_margin: float | None = 2.0,
        workers: int = 0,
        join: bool = False,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        potential.check_elements(space.pool)
        prop.check_elements(space.pool)
        self.space, self.potential, self.prop = space, potential, prop
        self.out_dir = Path(out_dir)
        self.batch_size = batch_size
        self.workers = check_workers(workers)
        self.heartbeat_seconds = heartbeat_seconds
        self.join = join
        self.evaluator = Evaluator(
            potential, prop, relax_steps=relax_steps, fmax=fmax, prune_margin=prune_margin
        )
        self.settings = run_settings(
            space,
            potential,
            prop,
            relax_steps,
            fmax,
            prune_margin=prune_margin,
            sampler=sampler,
            n_init=n_init,
            seed=seed,
            batch_size=batch_size,
            storage=storage,
        )
        sampler_obj = make_sampler(sampler, _process_seed(seed) if join else seed, n_init)
        prepare_out_dir(self.out_dir)
        self.record = open_study(storage_url(self.out_dir, storage), self.settings, resume, join=join)
        write_settings(self.out_dir, self.settings)
        self.ledger = TrialLedger(self.record, grace_seconds=grace_seconds)
        if resume and not join:
            self.ledger.recover(everything=True)  # a solo run resuming: what was in flight died with it
        self.memory = optuna.create_study(storage=MirrorStorage(), sampler=sampler_obj, direction="minimize")
        self.db_number: dict[int, int] = {}  # in-memory trial number -> study trial number
        self._tally = _Tally()
        self._sync()
        self.potential_calls = 0
        self._unstored = 0  # trials of this solo run asked but not stored yet
        self.seconds = dict.fromkeys((*STAGES, "score_busy"), 0.0)
        self._last_recover = time.monotonic()

    def run(
        self,
        steps: int,
        target: float | None = None,
        callbacks: tuple[Callable[[Progress], None], ...] = (),
        timeout: float | None = None,
    ) -> SearchResult:
        """Run until the study holds ``steps`` steps (counting earlier sessions and other processes),
        ``target`` is reached, or ``timeout`` seconds have passed (checked between batches, like a
        walltime limit). Trials already handed out are always finished before returning."""
        start = time.perf_counter()
        reached = self._reached(target)
        with (
            Builder(self.workers, describe=self.evaluator.relax_steps == 0) as builder,
            Heartbeat(self.ledger, self.heartbeat_seconds),
            Scorer(self.evaluator) as scorer,
        ):
            current: _Batch | None = None
            while True:
                out_of_time = timeout is not None and time.perf_counter() - start > timeout
                stop = out_of_time or reached is not None
                scoring = self._start_scoring(current, scorer) if current is not None else None
                upcoming = None if stop else self._launch(steps, builder)  # while ``current`` is scored
                if current is not None and scoring is not None:
                    self._finish(current, scoring)
                    reached = self._reached(target)
                    progress = self._progress(steps, time.perf_counter() - start)
                    for callback in callbacks:
                        callback(progress)
                elif upcoming is None:
                    if stop or self._steps() >= steps:
                        break
                    time.sleep(min(1.0, self.heartbeat_seconds))  # others' trials in flight: wait
                    self._recover()
                current = upcoming
        return self._result(time.perf_counter() - start, reached)

    # -- the pipeline --------------------------------------------------------------------------------

    def _launch(self, steps: int, builder: Builder) -> _Batch | None:
        """Ask a batch (retries of lost trials first), reserve it, start building its crystals.

        New trials only fill the steps not yet stored, in flight or waiting (counted in the database,
        so processes sharing a study stop together at ``steps``); none left: returns None.
        """
        t0 = time.perf_counter()
        if self.join:  # alone, nobody else writes: the database holds what the sampler has seen
            self._sync()
        counts = self.ledger.counts()
        waiting = counts.get(TrialState.WAITING, 0)
        in_flight = counts.get(TrialState.RUNNING, 0) + self._unstored
        room = steps - self._steps() - in_flight - waiting
        claimed = self.ledger.claim_waiting(min(waiting, self.batch_size))
        n_new = max(0, min(self.batch_size - len(claimed), room))
        if not claimed and not n_new:
            self.seconds["storage"] += time.perf_counter() - t0
            return None
        t1 = time.perf_counter()
        for frozen in claimed:
            self.memory.enqueue_trial(frozen.params, skip_if_exists=False)
        trials = [self.memory.ask() for _ in range(len(claimed) + n_new)]
        candidates: list[Candidate | None] = []
        undrawn: dict[int, str] = {}  # trial number -> why no candidate could be drawn
        for trial in trials:
            try:
                candidates.append(self.space.suggest(trial))
            except CandidateFailed as exc:
                undrawn[trial.number] = str(exc)
                candidates.append(None)
                continue
            trial.set_user_attr("cell_formula", candidates[-1].formula)
        t2 = time.perf_counter()
        ids: list[int | None] = [c._trial_id for c in claimed]
        self._map(trials[: len(claimed)], [c.number for c in claimed])
        if self.join:  # others must see these as taken: RUNNING, with heartbeats, until finished
            fresh = trials[len(claimed) :]
            reserved = self.ledger.reserve([self._frozen(t) for t in fresh], steps=steps)
            ids += [trial_id for trial_id, _ in reserved]
            self._map(fresh[: len(reserved)], [number for _, number in reserved])
            kept = len(claimed) + len(reserved)
            for trial in trials[kept:]:  # others took the budget meanwhile: never run, not a step
                self._fail(trial, UNUSED, "the study's --steps budget was taken by other processes")
            trials, candidates = trials[:kept], candidates[:kept]
        else:  # alone: stored once finished, so a kill never leaves a trial RUNNING
            ids += [None] * (len(trials) - len(claimed))
            self._unstored += len(trials) - len(claimed)
        for trial in trials:
            if trial.number in undrawn:
                self._fail(trial, "build", undrawn[trial.number])
        t3 = time.perf_counter()
        self.seconds["sampler"] += t2 - t1
        self.seconds["storage"] += (t1 - t0) + (t3 - t2)
        if not trials:
            return None
        builds = builder.submit([c for c in candidates if c is not None])
        self.seconds["build"] += time.perf_counter() - t3
        return _Batch(trials, ids, candidates, builds)

    def _start_scoring(self, batch: _Batch, scorer: Scorer) -> _Scoring:
        """Wait for the batch's crystals and start scoring (and describing) them in the scorer.

        The next batch is sampled meanwhile; the results are told only after that, which keeps the
        schedule, and the run, the same as a serial loop.
        """
        t0 = time.perf_counter()
        built = iter(batch.builds.result())
        t1 = time.perf_counter()
        scoring = _Scoring()
        for trial, candidate in zip(batch.trials, batch.candidates, strict=True):
            if candidate is None:
                continue
            result: Built = next(built)
            if result.structure is None:
                self._fail(trial, "build", result.error or "build failed")
                continue
            scoring.trials.append(trial)
            scoring.structures.append(result.structure)
            scoring.build_seconds.append(result.seconds)
            scoring.described.append(result.attrs if self.evaluator.relax_steps == 0 else {})
        if scoring.structures:
            best = self._best()
            best_value = best.value if best else None
            scoring.future = scorer.submit(scoring.structures, best_value, scoring.described)
        self.seconds["build"] += t1 - t0
        self.seconds["describe"] += time.perf_counter() - t1
        return scoring

    def _finish(self, batch: _Batch, scoring: _Scoring) -> None:
        """Take the batch's scores, tell the sampler, store every trial of the batch."""
        t0 = t1 = time.perf_counter()
        if scoring.future is not None:
            try:
                scored, described, busy = scoring.future.result()
            except BrokenProcessPool as exc:
                raise RuntimeError(
                    "the scoring process died (killed, or out of memory): every trial finished before "
                    "it is stored, rerun with --resume to go on"
                ) from exc
            t1 = time.perf_counter()
            self.seconds["score_busy"] += busy
            per_candidate = busy / len(scoring.structures)
            self.potential_calls += sum(s.relax_steps + 1 for s in scored)
            for trial, outcome, attrs, built in zip(
                scoring.trials, scored, described, scoring.build_seconds, strict=True
            ):
                self._tell(trial, outcome, attrs, built + per_candidate)
        t2 = time.perf_counter()
        pairs = list(zip(batch.ids, batch.trials, strict=True))
        self.ledger.finish([(i, self._frozen(t)) for i, t in pairs if i is not None])
        fresh = [t for i, t in pairs if i is None]
        self._unstored -= len(fresh)
        self._map(fresh, [number for _, number in self.ledger.store([self._frozen(t) for t in fresh])])
        t3 = time.perf_counter()
        self.seconds["score"] += t1 - t0
        self.seconds["describe"] += t2 - t1
        self.seconds["storage"] += t3 - t2
        self._recover()

    def _recover(self) -> None:
        """Now and then, fail and requeue trials whose process stopped sending heartbeats."""
        if time.monotonic() - self._last_recover > self.heartbeat_seconds:
            self._last_recover = time.monotonic()
            self.ledger.recover()

    def _sync(self) -> None:
        """Bring other processes' finished trials into the sampler (a no-op for a solo run)."""
        foreign = self.ledger.new_finished()
        if not foreign:
            return
        first = len(self.memory.get_trials(deepcopy=False))
        self.memory.add_trials(foreign)
        for k, trial in enumerate(foreign):
            self.db_number[first + k] = trial.number

    def _map(self, trials: list[optuna.Trial], numbers: list[int]) -> None:
        for trial, number in zip(trials, numbers, strict=True):
            self.db_number[trial.number] = number

    def _frozen(self, trial: optuna.Trial) -> FrozenTrial:
        return self.memory._storage.get_trial(trial._trial_id)

    def _tell(self, trial: optuna.Trial, result: Scored, attrs: dict[str, Any], seconds: float) -> None:
        if result.error is not None:
            self._fail(trial, "score", result.error)
            return
        for key, value in {**attrs, "seconds": seconds}.items():
            trial.set_user_attr(key, value)
        tell(self.memory, trial, result.value)

    def _fail(self, trial: optuna.Trial, stage: str, reason: str) -> None:
        trial.set_user_attr("fail_stage", stage)
        trial.set_user_attr("fail_reason", reason)
        tell(self.memory, trial, state=TrialState.FAIL)

    # -- reading the outcome -------------------------------------------------------------------------

    def _tallied(self) -> tuple[int, int, FrozenTrial | None]:
        """Steps, scored trials and the best one (lowest value, then first stored)."""
        trials = self.memory.get_trials(deepcopy=False)
        return self._tally.read(trials, lambda t: (t.value, self._number(t)))

    def _steps(self) -> int:
        return self._tallied()[0]

    def _complete(self) -> list[FrozenTrial]:
        return self.memory.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def _number(self, trial: FrozenTrial) -> int:
        """The trial's number in the stored study (what the top table and other processes show)."""
        return self.db_number.get(trial.number, trial.number)

    def _reached(self, target: float | None) -> int | None:
        if target is None:
            return None
        best = self._best()
        if best is None or best.value > target:  # the usual case: no scan
            return None
        return min(self._number(t) for t in self._complete() if t.value <= target)

    def _best(self) -> FrozenTrial | None:
        return self._tallied()[2]

    def _progress(self, total: int, elapsed: float) -> Progress:
        steps, scored, best = self._tallied()
        return Progress(
            steps=steps,
            total=total,
            best_value=best.value if best else None,
            best_formula=best.user_attrs["cell_formula"] if best else None,
            scored=scored,
            failed=steps - scored,
            elapsed=elapsed,
        )

    def _result(self, elapsed: float, reached: int | None) -> SearchResult:
        best = self._best()
        history: list[tuple[int, float]] = []
        for t in sorted(self._complete(), key=self._number):
            if not history or t.value < history[-1][1]:
                history.append((self._number(t), float(t.value)))
        steps, scored, _ = self._tallied()
        return SearchResult(
            steps=steps,
            best_value=best.value if best else None,
            best_formula=best.user_attrs["cell_formula"] if best else None,
            best_step=self._number(best) if best else None,
            elapsed=elapsed,
            scored=scored,
            failed=steps - scored,
            potential_calls=self.potential_calls,
            reached_target_at=reached,
            history=history,
            seconds=dict(self.seconds),
        )


class _Tally:
    """Steps, scored trials and the best one of the in-memory study, without rescanning it per batch.

    The finished front of the trial list is folded in a single time (``FinishedFront``); each read
    looks again only at the tail (the batches in flight). Three full scans per batch cost ~10 ms at
    5,000 trials and grew with the study.
    """

    def __init__(self) -> None:
        self.front = FinishedFront()
        self.folded: tuple[int, int, FrozenTrial | None] = (0, 0, None)  # of the front so far

    def read(self, trials: list[FrozenTrial], rank: Callable[[FrozenTrial], Any]) -> tuple[int, int, Any]:
        front, tail = self.front.advance(trials)
        self.folded = _fold(self.folded, front, rank)
        return _fold(self.folded, tail, rank)


def _fold(
    tally: tuple[int, int, Any], trials: Sequence[FrozenTrial], rank: Callable[[FrozenTrial], Any]
) -> tuple[int, int, Any]:
    steps, scored, best = tally
    for t in trials:
        steps += is_step(t)
        if t.state == TrialState.COMPLETE:
            scored += 1
            if best is None or rank(t) < rank(best):
                best = t
    return steps, scored, best


@dataclass
class _Scoring:
    """A batch's built crystals on their way through the potential (in the scorer)."""

    trials: list[optuna.Trial] = field(default_factory=list)
    structures: list[Structure] = field(default_factory=list)
    build_seconds: list[float] = field(default_factory=list)
    described: list[dict[str, Any]] = field(default_factory=list)
    future: Future | None = None


def _process_seed(seed: int | None) -> int | None:
    """A seed of its own for each process sharing a study (same --seed on every Slurm task)."""
    if seed is None:
        return None
    return zlib.crc32(f"{seed}/{socket.gethostname()}/{os.getpid()}/{time.time_ns()}".encode()) & 0x7FFFFFFF
