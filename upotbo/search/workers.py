"""Crystal building off the main process, so it overlaps with the potential's batched scoring.

The main process owns the sampler and the potential; ``Builder`` turns a batch of candidate
descriptions into structures either inline (``workers=0``) or in ``workers`` helper processes
(forked by the fork server of ``processes``, never by the search: forking a process that holds torch's
thread pools can deadlock). Results come back
in submission order, and a crystal is a pure function of its candidate, so the run does not depend
on the number of workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Structure

from upotbo.crystal import build_structure
from upotbo.errors import CandidateFailed, InputError
from upotbo.search.processes import child_setup, helper_pool, stop_children
from upotbo.space.space import Candidate
from upotbo.storage.run_record import describe_crystal


@dataclass
class Built:
    """One candidate's build: the structure, or the reason it could not be built; CPU seconds; and,
    when asked, the crystal's stored description (``describe_crystal``), made here off the main process."""

    structure: Structure | None
    error: str | None
    seconds: float
    attrs: dict[str, Any] = field(default_factory=dict)


def check_workers(workers: int | None) -> int | None:
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise InputError(
            f"workers={workers!r}: use a whole number of build processes, 0 = build inline, None = auto"
        )
    return workers


def build_many(candidates: Sequence[Candidate | Structure], describe: bool = False) -> list[Built]:
    """Build each candidate (a seed crystal comes built); a failed build is a recorded outcome, never
    an exception.

    ``describe``: also describe each crystal (single points score the built crystal unchanged).
    """
    out = []
    for candidate in candidates:
        t0 = time.process_time()
        try:
            structure = candidate if isinstance(candidate, Structure) else build_structure(candidate)
            error = None
        except CandidateFailed as exc:
            structure, error = None, str(exc)
        attrs = describe_crystal(structure) if describe and structure is not None else {}
        out.append(Built(structure, error, time.process_time() - t0, attrs))
    return out


class _Done:
    """A finished result with the ``Future.result()`` shape (inline builds)."""

    def __init__(self, value: list[Built]) -> None:
        self.value = value

    def result(self) -> list[Built]:
        return self.value


class _Gathered:
    """Several chunk futures read back as one list, in order."""

    def __init__(self, futures: list[Future]) -> None:
        self.futures = futures

    def result(self) -> list[Built]:
        return [built for future in self.futures for built in future.result()]


class Builder:
    """Builds batches of candidates inline or in worker processes; use as a context manager."""

    def __init__(self, workers: int = 0, describe: bool = False) -> None:
        self.workers = check_workers(workers)
        self.describe = describe
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Builder:
        if self.workers > 0:
            self._pool = helper_pool(self.workers, child_setup, (os.getpid(),))
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._pool is not None:
            if exc_type is not None:  # interrupted or failed: the builds in flight are abandoned
                stop_children()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, candidates: Sequence[Candidate | Structure]) -> _Done | _Gathered:
        """Start building; ``.result()`` on the returned handle waits and gives one ``Built`` each."""
        if self._pool is None or not candidates:
            return _Done(build_many(candidates, self.describe))
        size = max(1, -(-len(candidates) // self.workers))  # one chunk per worker: few pickles
        chunks = [list(candidates[i : i + size]) for i in range(0, len(candidates), size)]
        return _Gathered([self._pool.submit(build_many, chunk, self.describe) for chunk in chunks])
