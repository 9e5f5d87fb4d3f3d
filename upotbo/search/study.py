"""The search: ties space, sampler, builder, potential, property and storage together.

A pipeline in batches. The sampler works on an in-memory optuna study (fast asks, no per-parameter
database round trips): ask a batch, draw each candidate and hand the crystals to the ``Builder``
(``workers`` processes). While they are built, the previous batch is scored in one batched potential
call by the ``Scorer`` (a process of its own for single points) while the main thread samples the
next batch; then it is told to the sampler and written to the database in one transaction. So each
batch is asked while the one before it is still being scored (the sampler sees it as running: TPE's
constant liar), sampling and building overlap scoring, and the schedule is the same for any number
of workers: same seed and settings, same run.

``Search.irun`` is that loop as an iterator: it yields a ``Progress`` after each batch (observers,
progress bars and early stops hang off it, as off ASE's ``Optimizer.irun``); ``run`` drains it.
Where trials go is the store's business (``SoloStore``: stored once finished, so a kill never
leaves one RUNNING; ``SharedStore``: reserved RUNNING with heartbeats, for ``--join``), and where
the time goes is ``Timings``'.
"""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pymatgen.core import Composition, Structure

from upotbo.errors import CandidateFailed, WorkerDied
from upotbo.optuna_adapter import frozen_trial, set_constraints, tell, trial_id, with_constraints
from upotbo.potentials.base import Potential
from upotbo.properties import check_objectives
from upotbo.properties.base import Property
from upotbo.properties.constraints import Constraint
from upotbo.search.cores import CoreShare, available_cores, one_blas_thread
from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.mirror import FinishedFront, MirrorStorage
from upotbo.search.moves import Child, Moves, default_sampler, proposes_moves
from upotbo.search.processes import start_helpers
from upotbo.search.samplers import make_sampler
from upotbo.search.scoring import Departed, RollingBatch, Scorer
from upotbo.search.split_potential import PotentialProcesses
from upotbo.search.workers import Builder, Built, check_workers
from upotbo.space.formula import FormulaSpace
from upotbo.space.seeds import Seed, cell_formula
from upotbo.space.space import Candidate, SearchSpace
from upotbo.storage.ledger import GRACE_SECONDS, HEARTBEAT_SECONDS, Heartbeat, TrialLedger
from upotbo.storage.run_record import FailStage, Objective, RunDirectory, is_step, mark_failed, run_settings

# Main-thread wall time per stage ("score": waiting for the scorer) and, apart, the scorer's own busy
# time ("score_busy", overlapping the sampler and the build workers).
STAGES = ("sampler", "build", "score", "describe", "storage")
LANES = 2  # rolling batches taking turns at the potential's processes (``Search._irun_rolling``)


@dataclass(frozen=True)
class SearchConfig:
    """How candidates are drawn and scored: the sampler (None: ``tpe+moves``, with a fixed formula
    ``tpe``; ``upotbo.search.moves``), its random start and seed, the in-loop
    relaxation (``optimizer`` and its steps, force threshold in eV/Å, pruning margin in the property's
    unit), the potential's batch size, the crystal-building processes (0 = build in this process; None:
    0 for a rolling batch, whose potential runs in processes of its own, else one per core) and the cores the
    search may use (None: ``available_cores()``, torch running on those other processes leave free;
    a number pins torch's threads, for runs that repeat bit for bit). ``rolling=False`` relaxes in
    fixed batches instead of a rolling one (slower; kept to measure the two side by side)."""

    sampler: str | None = None
    n_init: int = 200
    seed: int | None = 0
    relax_steps: int = 0
    fmax: float = 0.05
    optimizer: str = "bfgs"
    prune_margin: float | None = 2.0
    batch_size: int = 32
    workers: int | None = None
    threads: int | None = None
    rolling: bool = True


@dataclass(frozen=True)
class StudyAccess:
    """Where the study lives and who else writes it: ``storage`` (any SQLAlchemy URL; default the run
    directory's SQLite file), ``resume`` a stored study, ``join`` one shared with other processes
    (a database server; created if missing), whose trials send heartbeats every ``heartbeat_seconds``
    and are declared lost after ``grace_seconds`` of silence."""

    storage: str | None = None
    resume: bool = False
    join: bool = False
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    grace_seconds: float = GRACE_SECONDS


@dataclass
class Progress:
    """What observers see after each batch (values in the property's unit)."""

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


class Timings:
    """Main-thread wall seconds per stage of the pipeline, plus the scorer's own busy seconds."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys((*STAGES, "score_busy"), 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0


class SoloStore:
    """One process owns the study: trials are stored once finished, so a kill never leaves one RUNNING
    (what was in flight dies with the process and is simply asked again on ``--resume``)."""

    shared = False

    def __init__(self, ledger: TrialLedger, resume: bool) -> None:
        self.ledger = ledger
        self.unstored = 0  # trials asked but not stored yet
        if resume:
            ledger.recover(everything=True)  # a solo run resuming: what was in flight died with it

    def admit(
        self, fresh: list[optuna.Trial], steps: int, frozen: Callable[[optuna.Trial], FrozenTrial]
    ) -> list[tuple[int | None, int | None]]:
        """New trials of a batch: kept in memory until finished (no database id or number yet)."""
        self.unstored += len(fresh)
        return [(None, None)] * len(fresh)

    def stored(self, n: int) -> None:
        self.unstored -= n


class SharedStore:
    """Processes sharing one study (``--join``): a batch is reserved RUNNING, with heartbeats, before
    it is built, so others see it as taken; the ledger keeps the books (unique numbers, the budget
    never overshot, trials of a dead process failed and retried)."""

    shared = True
    unstored = 0

    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger

    def admit(
        self, fresh: list[optuna.Trial], steps: int, frozen: Callable[[optuna.Trial], FrozenTrial]
    ) -> list[tuple[int | None, int | None]]:
        """Reserve as many of ``fresh`` as the study's budget has room for; their (id, number)."""
        return list(self.ledger.reserve([frozen(t) for t in fresh], steps=steps))

    def stored(self, n: int) -> None:
        return None


@dataclass
class _Batch:
    """Trials asked together: their database ids, candidates (None: failed to draw) and builds."""

    trials: list[optuna.Trial]
    ids: list[int | None]  # None: not in the database yet (a solo run stores trials once finished)
    candidates: list[Candidate | Structure | None]  # a seed crystal comes built
    builds: Any  # handle from Builder.submit


class Search:
    """A resumable UPot-BO search writing to the run directory ``out_dir``.

    ``prop``: the property to optimise, or two or three at once (a sequence) for their Pareto front;
    the first is then the trials' value, the progress bar's "best" and what ``target`` is met on.

    ``space``: a composition search (``SearchSpace``) or a fixed-composition structure search
    (``FormulaSpace``). ``seeds`` (``upotbo.space.seeds.load_seeds``): crystals scored first, in
    order, as trials carrying their own parameters; on ``resume`` only those not stored yet.

    With ``access.join``, each process samples with its own seed stream so that processes sharing a
    study do not propose the same candidates.
    """

    def __init__(
        self,
        space: SearchSpace | FormulaSpace,
        potential: Potential,
        prop: Property | Sequence[Property],
        out_dir: str | Path,
        config: SearchConfig = SearchConfig(),
        access: StudyAccess = StudyAccess(),
        constraints: Sequence[Constraint] = (),
        seeds: Sequence[Seed] = (),
    ) -> None:
        potential.check_elements(space.pool)
        start_helpers(potential.worker_modules)  # its imports run while this search sets up
        prop, *further = check_objectives((prop,) if isinstance(prop, Property) else tuple(prop))
        self.space, self.potential, self.prop, self.config = space, potential, prop, config
        self.objective = Objective.of(prop)
        self.objectives = [self.objective, *(Objective.of(p) for p in further)]
        self.constraints = tuple(constraints)
        self.heartbeat_seconds = access.heartbeat_seconds
        check_workers(config.workers)
        self.evaluator = Evaluator(
            potential,
            prop,
            config.relax_steps,
            config.fmax,
            prune_margin=config.prune_margin,
            constraints=self.constraints,
            objectives=further,
            optimizer=config.optimizer,
        )
        for p in self.evaluator.properties:
            p.check_elements(space.pool)
        sampler_name = config.sampler or default_sampler(space)
        settings = run_settings(
            space,
            potential,
            prop,
            config.relax_steps,
            config.fmax,
            prune_margin=config.prune_margin,
            optimizer=config.optimizer,
            sampler=sampler_name,
            n_init=config.n_init,
            seed=config.seed,
            batch_size=config.batch_size,
            storage=access.storage,
            **({"constraints": [c.text for c in self.constraints]} if self.constraints else {}),
            **({"objectives": [o.as_setting() for o in self.objectives[1:]]} if further else {}),
        )
        self.evaluator.prepare(space.pool)  # before the run directory exists: a failure leaves no trace
        seed = _process_seed(config.seed) if access.join else config.seed
        pareto = tuple((o.name, o.sign) for o in self.objectives[1:])
        distinct = "structure" if isinstance(space, FormulaSpace) else "composition"
        sampler = make_sampler(sampler_name, seed, config.n_init, pareto, distinct)
        self.moves = Moves(space) if proposes_moves(sampler_name, space) else None
        self.run_dir, study = RunDirectory.start(
            out_dir, settings, access.storage, resume=access.resume, join=access.join
        )
        self.ledger = TrialLedger(study, grace_seconds=access.grace_seconds)
        self.store = SharedStore(self.ledger) if access.join else SoloStore(self.ledger, access.resume)
        self.memory = optuna.create_study(storage=MirrorStorage(), sampler=sampler, direction=prop.direction)
        self.db_number: dict[int, int] = {}  # in-memory trial number -> study trial number
        self._tally = _Tally()
        self._rolling_trials: dict[int, _Ready] = {}  # in a rolling batch, by in-memory trial number
        self._sync()
        stored = {t.user_attrs.get("seed") for t in self.memory.get_trials(deepcopy=False)}
        # crystals to score as given, by the trial's user attr "seed" or "child", until drawn
        self.given: dict[str, Structure] = {seed.name: seed.structure for seed in seeds}
        self._unseeded = [seed for seed in seeds if seed.name not in stored]
        if self.evaluator.observes_run:  # a resumed run's crystals are part of what it knows
            attrs = [t.user_attrs for t in self.completed()]
            self.evaluator.observe([(Composition(a["cell_formula"]), a["energy"]) for a in attrs])
        self.potential_calls = 0
        self.timings = Timings()
        self._last_recover = time.monotonic()
        self.cores = CoreShare(config.threads or available_cores(), adaptive=config.threads is None)

    @property
    def settings(self) -> dict[str, Any]:
        return self.run_dir.settings

    def run(
        self,
        steps: int,
        target: float | None = None,
        callbacks: tuple[Callable[[Progress], None], ...] = (),
        timeout: float | None = None,
    ) -> SearchResult:
        """``irun`` to the end, calling each of ``callbacks`` with every progress report."""
        batches = self.irun(steps, target, timeout)
        while True:
            try:
                progress = next(batches)
            except StopIteration as done:
                return done.value
            for callback in callbacks:
                callback(progress)

    def irun(
        self, steps: int, target: float | None = None, timeout: float | None = None
    ) -> Iterator[Progress]:
        """Search batch by batch, yielding progress after each; returns the ``SearchResult``.

        Runs until the study holds ``steps`` steps (counting earlier sessions and other processes),
        ``target`` is reached, or ``timeout`` seconds have passed (checked between batches, like a
        walltime limit). Trials already handed out are always finished before it returns.
        """
        if self._rolling:
            return (yield from self._irun_rolling(steps, target, timeout))
        return (yield from self._irun_batched(steps, target, timeout))

    @property
    def _rolling(self) -> bool:
        """Relaxations run in a rolling batch; single points and crystals relaxed on to a minimum
        (moduli) in batches."""
        minimum = any(p.needs_minimum for p in self.evaluator.properties)
        return self.config.rolling and self.evaluator.relax_steps > 0 and not minimum

    @property
    def _workers(self) -> int:
        """Build processes: as configured; by default none beside a rolling batch's potential processes
        (building in the main thread while they step was faster: 300 paper42 steps in 38 s vs 47 s
        with one build process, 49 s with two), else one per core."""
        if self.config.workers is not None:
            return self.config.workers
        return 0 if self._rolling else self.cores.budget

    def _irun_batched(
        self, steps: int, target: float | None, timeout: float | None
    ) -> Generator[Progress, None, SearchResult]:
        """Batch by batch: each batch is sampled and built while the one before it is scored."""
        start = time.perf_counter()
        reached = self._reached(target)
        with (
            Builder(self._workers, describe=self.evaluator.relax_steps == 0) as builder,
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
                    yield self._progress(steps, time.perf_counter() - start)
                elif upcoming is None:
                    if stop or self.steps >= steps:
                        break
                    time.sleep(min(1.0, self.heartbeat_seconds))  # others' trials in flight: wait
                    self._recover()
                current = upcoming
        return self._result(time.perf_counter() - start, reached)

    def _irun_rolling(
        self, steps: int, target: float | None, timeout: float | None
    ) -> Generator[Progress, None, SearchResult]:
        """Step by step of ``batch_size`` relaxations in ``RollingBatch``-es: while the potential takes
        a step, the sampler asks for the places freed before it (keeping ``batch_size // 2`` built
        crystals in reserve) and the builders build them; they join at the next step. Asks and joins
        follow counts of finished crystals, never the clock: same seed and settings, same run.

        With the potential in processes of its own, the relaxations are split in two batches (lanes)
        taking turns: while one's forces are computed, the other's optimizer steps, pruning and
        descriptions run here, so the potential's processes always have a call waiting. One batch
        waited for that serial part every step (13 s of the README's search, both potential processes
        idle), and the potential runs faster on 16 crystals a call than on 32 (``benchmarks/throughput.py``).
        """
        start = time.perf_counter()
        reached = self._reached(target)
        size = self.config.batch_size
        ready: deque[_Ready] = deque()
        # while the helpers' fork server imports (starting the potential's processes waits for it)
        self.potential.energy_reference.warm()
        with (
            Builder(self._workers) as builder,
            Heartbeat(self.ledger, self.heartbeat_seconds),
            PotentialProcesses(self.evaluator.potential, self.cores.budget) as potential,
            Scorer(self.evaluator, threads=LANES if potential.remote else 1) as scorer,
            one_blas_thread() if potential.remote else nullcontext(),
        ):
            lanes = [RollingBatch(self.evaluator, potential) for _ in range(LANES if potential.remote else 1)]
            stepping: list[Future | None] = [None] * len(lanes)
            lane_size = -(-size // len(lanes))
            turn, stepped = 0, False
            while True:
                out_of_time = timeout is not None and time.perf_counter() - start > timeout
                stop = out_of_time or reached is not None
                lane = lanes[turn]  # its step was waited for: it takes newcomers and steps again
                while len(lane) < lane_size and ready:
                    joining = ready.popleft()
                    lane.add(joining.trial.number, joining.structure, exact=joining.child)
                    self._rolling_trials[joining.trial.number] = joining
                if lane:
                    stepped = True
                    best = self.best()
                    threads = None if potential.remote else self.cores.threads()
                    stepping[turn] = scorer.step(lane, best.value if best else None, threads)
                # the first ask is small, so the potential starts as soon as its processes are up;
                # later ones refill the batches and a reserve of half a batch, half a batch at a time
                # (crystals relaxing counted here, as they joined and departed: a lane's own count
                # changes as it steps)
                cap = max(1, size // 2 if stepped else size // 4)
                want = min(cap, size + size // 2 - len(self._rolling_trials) - len(ready))
                if want < min(cap, size // 4) and len(ready) >= size // 4:
                    want = 0  # asks of a quarter of the batch at least: each ask and write has its own cost
                upcoming = None if stop or want <= 0 else self._launch(steps, builder, want)
                turn = (turn + 1) % len(lanes)  # the lane stepped longest ago
                waited, stepping[turn] = stepping[turn], None
                unbuilt: list[tuple[int | None, optuna.Trial]] = []
                if upcoming is not None:
                    joining, unbuilt = self._collect(upcoming)
                    ready.extend(joining)
                if waited is not None:
                    departed = self._scores(waited)
                    self._depart(departed, unbuilt)
                    reached = self._reached(target)
                    if departed.keys:
                        yield self._progress(steps, time.perf_counter() - start)
                elif unbuilt:
                    self._store(unbuilt)
                if upcoming is None and waited is None and not any(stepping) and not ready and not any(lanes):
                    if stop or self.steps >= steps:
                        break
                    time.sleep(min(1.0, self.heartbeat_seconds))  # others' trials in flight: wait
                    self._recover()
        return self._result(time.perf_counter() - start, reached)

    # -- the pipeline --------------------------------------------------------------------------------

    def _launch(self, steps: int, builder: Builder, size: int | None = None) -> _Batch | None:
        """Ask a batch of ``size`` (default ``batch_size``; retries of lost trials first), admit it to
        the store, start building it.

        New trials only fill the steps not yet stored, in flight or waiting (counted in the database,
        so processes sharing a study stop together at ``steps``); none left: returns None.
        """
        with self.timings.stage("storage"):
            if self.store.shared:  # alone, nobody else writes: the database holds what the sampler saw
                self._sync()
            counts = self.ledger.counts()
            waiting = counts.get(TrialState.WAITING, 0)
            in_flight = counts.get(TrialState.RUNNING, 0) + self.store.unstored
            room = steps - self.steps - in_flight - waiting
            size = size or self.config.batch_size
            claimed = self.ledger.claim_waiting(min(waiting, size))
            n_new = max(0, min(size - len(claimed), room))
        if not claimed and not n_new:
            return None
        with self.timings.stage("sampler"):
            for frozen in claimed:
                self.memory.enqueue_trial(frozen.params, skip_if_exists=False)
            seeding, self._unseeded = self._unseeded[:n_new], self._unseeded[n_new:]
            for seed in seeding:  # asked in this order: retries, seeds, children, new trials
                self.memory.enqueue_trial(seed.params, user_attrs={"seed": seed.name}, skip_if_exists=False)
            for child in self._children(n_new - len(seeding)):
                parent = self._number(child.parent)
                name = f"{child.move} from {parent}"
                self.given[name] = child.structure
                attrs = {"child": name, "parent": parent}
                self.memory.enqueue_trial(child.params, user_attrs=attrs, skip_if_exists=False)
            trials = [self.memory.ask() for _ in range(len(claimed) + n_new)]
            candidates, undrawn = self._draw(trials)
        with self.timings.stage("storage"):
            ids = self._admit(trials, claimed, steps)
            trials, candidates = trials[: len(ids)], candidates[: len(ids)]
            for trial in trials:
                if trial.number in undrawn:
                    mark_failed(self.memory, trial, FailStage.BUILD, undrawn[trial.number])
        if not trials:
            return None
        with self.timings.stage("build"):
            builds = builder.submit([c for c in candidates if c is not None])
        return _Batch(trials, ids, candidates, builds)

    def _children(self, slots: int) -> list[Child]:
        """Children of the best trials for up to a share of ``slots`` (``upotbo.search.moves``), once
        a batch has been scored; none unless the sampler is one ``+moves``."""
        if self.moves is None or slots <= 0 or self._tallied()[1] < self.config.batch_size:
            return []
        sign = self.objective.sign
        trials = self.memory.get_trials(deepcopy=False)
        return self.moves.children(trials, slots, lambda t: (_violation(t), sign * t.value, t.number))

    def _draw(self, trials: list[optuna.Trial]) -> tuple[list[Candidate | Structure | None], dict[int, str]]:
        """Each trial's candidate (None where none could be drawn, with the reason by trial number);
        a seed trial's is its crystal, its parameters drawn as given (the sampler draws the rest)."""
        candidates: list[Candidate | Structure | None] = []
        undrawn: dict[int, str] = {}
        for trial in trials:
            given = self.given.pop(trial.user_attrs.get("seed", trial.user_attrs.get("child")), None)
            if given is not None:  # a seed's or a child's crystal, scored as given
                try:
                    self.space.suggest(trial)
                except CandidateFailed:
                    pass  # the parameters so far are recorded; the crystal is the one given
                candidates.append(given)
                trial.set_user_attr("cell_formula", cell_formula(given))
                continue
            try:
                candidates.append(self.space.suggest(trial))
            except CandidateFailed as exc:
                undrawn[trial.number] = str(exc)
                candidates.append(None)
                continue
            trial.set_user_attr("cell_formula", candidates[-1].formula)
        return candidates, undrawn

    def _admit(self, trials: list[optuna.Trial], claimed: list[FrozenTrial], steps: int) -> list[int | None]:
        """Database ids of the batch's trials that will run (claimed retries first, then the new ones
        the store admits); new trials the budget has no room for are finished as unused."""
        ids: list[int | None] = [trial_id(c) for c in claimed]
        self._map(trials[: len(claimed)], [c.number for c in claimed])
        fresh = trials[len(claimed) :]
        admitted = self.store.admit(fresh, steps, self._frozen)
        ids += [db_id for db_id, _ in admitted]
        self._map(fresh[: len(admitted)], [number for _, number in admitted])
        for trial in fresh[len(admitted) :]:  # others took the budget meanwhile: never run, not a step
            reason = "the study's --steps budget was taken by other processes"
            mark_failed(self.memory, trial, FailStage.UNUSED, reason)
        return ids

    def _start_scoring(self, batch: _Batch, scorer: Scorer) -> _Scoring:
        """Wait for the batch's crystals and start scoring (and describing) them in the scorer.

        The next batch is sampled meanwhile; the results are told only after that, which keeps the
        schedule, and the run, the same as a serial loop.
        """
        scoring = _Scoring(self._built(batch))
        if scoring.crystals:
            best = self.best()
            scoring.future = scorer.submit(
                [c.structure for c in scoring.crystals],
                best.value if best else None,
                [c.described for c in scoring.crystals],
                self.cores.threads(),
                exact=[i for i, c in enumerate(scoring.crystals) if c.child],
            )
        return scoring

    def _built(self, batch: _Batch) -> list[_Ready]:
        """Wait for the batch's builds; the crystals built, each with its trial (failed builds are
        marked failed)."""
        with self.timings.stage("build"):
            built = iter(batch.builds.result())
        crystals = []
        with self.timings.stage("describe"):
            for trial, db_id, candidate in zip(batch.trials, batch.ids, batch.candidates, strict=True):
                if candidate is None:
                    continue
                result: Built = next(built)
                if result.structure is None:
                    mark_failed(self.memory, trial, FailStage.BUILD, result.error or "build failed")
                    continue
                described = result.attrs if self.evaluator.relax_steps == 0 else {}
                crystals.append(_Ready(trial, db_id, result.structure, result.seconds, described))
        return crystals

    def _collect(self, batch: _Batch) -> tuple[list[_Ready], list[tuple[int | None, optuna.Trial]]]:
        """A rolling run's new crystals, ready to join, and the batch's failed trials, to be stored."""
        crystals = self._built(batch)
        joining = {c.trial.number for c in crystals}
        failed = [(i, t) for i, t in zip(batch.ids, batch.trials, strict=True) if t.number not in joining]
        return crystals, failed

    def _depart(self, departed: Departed, failed: list[tuple[int | None, optuna.Trial]]) -> None:
        """Tell the crystals that left a rolling batch; store them with ``failed`` (one write)."""
        crystals = [self._rolling_trials.pop(key) for key in departed.keys]
        self._told(crystals, departed.scored, departed.described, departed.seconds, departed.busy)
        self.potential_calls += departed.evaluations
        self._store([(c.db_id, c.trial) for c in crystals] + failed)

    def _finish(self, batch: _Batch, scoring: _Scoring) -> None:
        """Take the batch's scores, tell the sampler, store every trial of the batch."""
        if scoring.future is not None:
            scored, described, busy = self._scores(scoring.future)
            per_candidate = busy / len(scoring.crystals)
            self._told(scoring.crystals, scored, described, [per_candidate] * len(scored), busy)
            self.potential_calls += sum(s.relax_steps + 1 for s in scored)
        self._store(list(zip(batch.ids, batch.trials, strict=True)))

    def _scores(self, future: Future) -> Any:
        """The scorer's result, waited for; a scoring or potential process that died ends the run."""
        with self.timings.stage("score"):
            try:
                return future.result()
            except BrokenProcessPool as exc:
                raise WorkerDied(
                    "a scoring process died (killed, or out of memory): every trial finished "
                    "before it is stored, rerun with --resume to go on"
                ) from exc

    def _told(
        self,
        crystals: list[_Ready],
        scored: list[Scored],
        described: list[dict[str, Any]],
        seconds: list[float],
        busy: float,
    ) -> None:
        """Tell the sampler each crystal's outcome (``seconds``: its scorer time, build time added here)."""
        with self.timings.stage("describe"):
            self.timings.seconds["score_busy"] += busy
            for crystal, outcome, attrs, spent in zip(crystals, scored, described, seconds, strict=True):
                self._tell(crystal.trial, outcome, attrs, crystal.build_seconds + spent)
            if self.evaluator.observes_run:
                fresh = [s for s in scored if s.error is None]
                self.evaluator.observe([(s.structure.composition, s.energy) for s in fresh])

    def _store(self, pairs: list[tuple[int | None, optuna.Trial]]) -> None:
        """Store finished trials (database id None: new to the database, as a solo run's are)."""
        with self.timings.stage("storage"):
            self.ledger.finish([(i, self._frozen(t)) for i, t in pairs if i is not None])
            fresh = [t for i, t in pairs if i is None]
            self.store.stored(len(fresh))
            self._map(fresh, [number for _, number in self.ledger.store([self._frozen(t) for t in fresh])])
        self._recover()

    def _recover(self) -> None:
        """Now and then, fail and requeue trials whose process stopped sending heartbeats."""
        if time.monotonic() - self._last_recover > self.heartbeat_seconds:
            self._last_recover = time.monotonic()
            self.ledger.recover()

    def _sync(self) -> None:
        """Bring trials finished elsewhere (earlier sessions, other processes) into the sampler."""
        foreign = self.ledger.new_finished()
        if not foreign:
            return
        first = len(self.memory.get_trials(deepcopy=False))
        if self.constraints:
            foreign = [
                with_constraints(t, (_violation(t),)) if t.state == TrialState.COMPLETE else t
                for t in foreign
            ]
        self.memory.add_trials(foreign)
        for k, trial in enumerate(foreign):
            self.db_number[first + k] = trial.number

    def _map(self, trials: Sequence[optuna.Trial], numbers: Sequence[int | None]) -> None:
        for trial, number in zip(trials, numbers, strict=True):
            if number is not None:
                self.db_number[trial.number] = number

    def _frozen(self, trial: optuna.Trial) -> FrozenTrial:
        return frozen_trial(self.memory, trial)

    def _tell(self, trial: optuna.Trial, result: Scored, attrs: dict[str, Any], seconds: float) -> None:
        if result.error is not None:
            mark_failed(self.memory, trial, FailStage.SCORE, result.error)
            return
        for key, value in {**attrs, "seconds": seconds}.items():
            trial.set_user_attr(key, value)
        if self.constraints:
            set_constraints(self.memory, trial, (result.violation,))
        tell(self.memory, trial, result.value)

    # -- reading the outcome -------------------------------------------------------------------------

    def _tallied(self) -> tuple[int, int, FrozenTrial | None]:
        """Steps, scored trials and the best one (best value, then first stored)."""
        trials = self.memory.get_trials(deepcopy=False)
        sign = self.objective.sign
        return self._tally.read(trials, lambda t: (_violation(t), sign * t.value, self._number(t)))

    @property
    def steps(self) -> int:
        """Steps stored so far (earlier sessions and other processes included)."""
        return self._tallied()[0]

    def completed(self) -> list[FrozenTrial]:
        """The scored trials the sampler knows (this session's, earlier sessions', other processes')."""
        return self.memory.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def _number(self, trial: FrozenTrial) -> int:
        """The trial's number in the stored study (what the top table and other processes show)."""
        return self.db_number.get(trial.number, trial.number)

    def _reached(self, target: float | None) -> int | None:
        if target is None:
            return None
        best = self.best()
        if best is None or not self.objective.reached(best.value, target):  # the usual case: no scan
            return None
        return min(
            self._number(t)
            for t in self.completed()
            if self.objective.reached(t.value, target) and not _violation(t)
        )

    def best(self) -> FrozenTrial | None:
        """The best feasible scored trial so far (ties: the first stored); None before the first."""
        best = self._tallied()[2]
        return best if best is not None and not _violation(best) else None

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
        best = self.best()
        history: list[tuple[int, float]] = []
        for t in sorted(self.completed(), key=self._number):
            if _violation(t):
                continue
            if not history or self.objective.better(t.value, history[-1][1]):
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
            seconds=dict(self.timings.seconds),
        )


def _violation(trial: FrozenTrial) -> float:
    """How far a scored trial is from meeting the run's constraints (0: feasible, or none)."""
    return float(trial.user_attrs.get("violation", 0.0))


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
class _Ready:
    """A built crystal and its trial (database id None: not stored yet), on its way to be scored."""

    trial: optuna.Trial
    db_id: int | None
    structure: Structure
    build_seconds: float
    described: dict[str, Any]  # by the build workers (single points), else empty

    @property
    def child(self) -> bool:
        """A move's child: relaxed from where it is (``Evaluator.start``)."""
        return "child" in self.trial.user_attrs


@dataclass
class _Scoring:
    """A batch's built crystals on their way through the potential (in the scorer)."""

    crystals: list[_Ready] = field(default_factory=list)
    future: Future | None = None


def _process_seed(seed: int | None) -> int | None:
    """A seed of its own for each process sharing a study (same --seed on every Slurm task)."""
    if seed is None:
        return None
    return zlib.crc32(f"{seed}/{socket.gethostname()}/{os.getpid()}/{time.time_ns()}".encode()) & 0x7FFFFFFF
