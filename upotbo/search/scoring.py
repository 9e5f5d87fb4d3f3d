"""The potential's side of the pipeline: batches scored off the main thread.

Single points (``relax_steps=0``) are scored in a process of its own. The main thread samples the next
batch while the previous one is scored; on a thread the two shared the GIL, and CHGNet holds it while
it builds each crystal's neighbour graph (most of its time on the dense crystals a converged search
proposes): with 5,000 trials in the study the sampler took 4.2 ms per trial next to a scoring thread,
2.7 ms next to a scoring process, 1.0 ms alone. The process leaves one core to the sampler and the
build workers (torch threads = cores - 1): on 2 cores, torch's second thread otherwise waits at
OpenMP barriers while they run. Measured side by side, 500 trials of history, 2 cores: 70-73
crystals/s with a thread, 77-81 with a process on 2 torch threads, 92-97 on 1.

Relaxations run in a ``RollingBatch`` stepped on a thread (the potential itself may run in processes
of its own, ``PotentialProcesses``); so does an evaluator that cannot be pickled (a potential wrapping
a live handle, e.g. some ASE calculators), and one whose properties learn from the run as it goes
(``e_above_hull``: the hull the main thread extends after every batch).
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Collection, Hashable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Structure

from upotbo.potentials.base import Potential
from upotbo.potentials.relax import RelaxPool
from upotbo.search.cores import set_torch_threads
from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.processes import held, helpers_holding, stop_children
from upotbo.storage.run_record import describe_crystal, scored_attrs


class Scorer:
    """``submit`` a batch, get a ``Future`` of (scores, descriptions, busy seconds). A context manager."""

    def __init__(self, evaluator: Evaluator, threads: int = 1) -> None:
        self.evaluator, self.threads = evaluator, threads  # threads: rolling batches stepped at once
        self.in_process = False
        self._pool: Executor | None = None
        self._cancel = threading.Event()  # a scoring thread's relaxations stop at their next step

    def __enter__(self) -> Scorer:
        payload = None
        if self.evaluator.relax_steps == 0 and not self.evaluator.observes_run:
            try:
                payload = pickle.dumps(self.evaluator)
            except Exception:  # not picklable: score on a thread of this process
                payload = None
        if payload is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="upotbo-score")
            return self
        self._pool = helpers_holding(1, payload)
        self.in_process = True
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Normally wait for the batch in flight; interrupted or failed, abandon it at once."""
        if self._pool is None:
            return
        if exc_type is not None:
            self._cancel.set()
            if self.in_process:
                stop_children()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(
        self,
        structures: list[Structure],
        best: float | None,
        known: list[dict],
        cores: int = 1,
        exact: Collection[int] = (),
    ) -> Future:
        """Score ``structures`` (``best``: the best value so far, for pruning relaxations; ``exact``:
        ``Evaluator.start``'s) on ``cores``.

        A scoring process leaves one of them to the main thread's sampler and the build workers.
        """
        assert self._pool is not None, "use Scorer as a context manager"
        if self.in_process:
            return self._pool.submit(_score_installed, structures, best, known, max(1, cores - 1), exact)
        set_torch_threads(cores)
        cancelled = self._cancel.is_set
        return self._pool.submit(
            score_and_describe, self.evaluator, structures, best, known, cancelled, exact
        )

    def step(self, batch: RollingBatch, best: float | None, cores: int | None = 1) -> Future:
        """One step of a rolling batch, on the scorer's thread (a ``Future`` of ``Departed``);
        ``cores=None``: the potential runs in processes of its own, torch is not used here."""
        assert self._pool is not None and not self.in_process, "rolling batches relax on a thread"
        if cores is not None:
            set_torch_threads(cores)
        return self._pool.submit(batch.step, best, self._cancel.is_set)


def _score_installed(
    structures: list[Structure], best: float | None, known: list[dict], threads: int, exact: Collection[int]
) -> tuple[list[Scored], list[dict[str, Any]], float]:
    set_torch_threads(threads)
    return score_and_describe(held(), structures, best, known, exact=exact)


def score_and_describe(
    evaluator: Evaluator,
    structures: list[Structure],
    best: float | None,
    known: list[dict],
    cancelled: Callable[[], bool] | None = None,
    exact: Collection[int] = (),
) -> tuple[list[Scored], list[dict[str, Any]], float]:
    """The scorer's job: scores, the stored description of each crystal, busy seconds.

    ``known``: descriptions the build workers already made (single points: the scored crystal is the
    built one), or empty dicts to describe the scored (relaxed) crystal here.
    """
    t0 = time.perf_counter()
    scored = evaluator.score(structures, best=best, cancelled=cancelled, exact=exact)
    return scored, describe(scored, known), time.perf_counter() - t0


def describe(scored: list[Scored], known: list[dict] | None = None) -> list[dict[str, Any]]:
    """What the study stores of each scored crystal (empty for a failed one)."""
    return [
        scored_attrs(
            k or describe_crystal(s.structure),
            s.energy,
            s.initial_value,
            s.relax_steps,
            s.properties,
            s.violation,
        )
        if s.error is None
        else {}
        for s, k in zip(scored, known or [{}] * len(scored), strict=True)
    ]


@dataclass
class Departed:
    """What one step of a ``RollingBatch`` returns: the crystals that left it (keys, scores,
    descriptions, each one's share of the scorer's seconds over its stay), the step's own seconds and
    the crystals the potential evaluated in it."""

    keys: list[Hashable]
    scored: list[Scored]
    described: list[dict[str, Any]]
    seconds: list[float]
    busy: float
    evaluations: int


class RollingBatch:
    """The crystals a search is relaxing, stepped together: a crystal leaves scored when its relaxation
    ends (converged, pruned, out of steps) and the search puts a new one in its place, so every
    potential call sees a full batch (a fixed batch of relaxations shrinks as most of them end early).

    ``potential``: the evaluator's, or the same one run elsewhere (``PotentialProcesses``). Used from
    the main thread between steps (``add``) and from the scorer's thread (``step``).
    """

    def __init__(self, evaluator: Evaluator, potential: Potential | None = None) -> None:
        self.evaluator = evaluator
        potential = potential or evaluator.potential
        self.pool = RelaxPool(
            potential,
            evaluator.relax_steps,
            evaluator.fmax,
            energy_first=evaluator.prunes,
            optimizer=evaluator.optimizer,
        )
        self.starts: dict[Hashable, Structure] = {}
        self.busy: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self.pool)

    def add(self, key: Hashable, structure: Structure, exact: bool = False) -> None:
        """A crystal joins at the next step (``exact``: relaxed from where it is, ``Evaluator.start``)."""
        self.starts[key] = self.evaluator.start([structure], (0,) if exact else ())[0]
        self.busy[key] = 0.0
        self.pool.add(key, self.starts[key])

    def step(self, best: float | None, cancelled: Callable[[], bool] | None = None) -> Departed:
        """One potential call on all of them; the ones that leave, scored and described."""
        t0 = time.perf_counter()
        crowd, evaluated = len(self.pool), self.pool.evaluations
        done = self.pool.step(self.evaluator.stopper(self.starts, best, cancelled))
        keys = [key for key, _ in done]
        starts = [self.starts.pop(key) for key in keys]
        scored = self.evaluator.complete(starts, [r for _, r in done], cancelled)
        described = describe(scored)
        busy = time.perf_counter() - t0
        for key in self.busy:
            self.busy[key] += busy / crowd
        seconds = [self.busy.pop(key) for key in keys]
        return Departed(keys, scored, described, seconds, busy, self.pool.evaluations - evaluated)
