"""The map as a streaming, resumable job: draw a batch, score it, embed it, store it, repeat.

It runs on the search's own machinery: ``sampling.draw`` (space + builder), the search's
``Evaluator`` (potential, optional batched relaxation, cohesive energy, plausibility check) and the
run directory of ``upotbo.storage.run_record`` (one optuna trial per map slot, value = E_c,
user attrs = the crystal, its space group and its embedding). Each batch is copied into the database
as soon as it is scored, so a killed job loses at most that batch; ``resume=True`` counts the stored
slots and continues with the next one (slots are seeded individually, so the resumed map is the map
an uninterrupted job would have drawn). Before the bulk starts, a first small batch is timed and an
estimate of the wall time (and database size) is reported: the paper-size map is a job of hours.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from upotbo.errors import InputError
from upotbo.landscape.descriptor import crystal_embedding
from upotbo.landscape.sampling import MapSpec, draw
from upotbo.optuna_adapter import study_id, study_storage, tell
from upotbo.potentials.base import Potential
from upotbo.properties import CohesiveEnergy, Property
from upotbo.search.evaluate import Evaluator, Scored
from upotbo.storage.run_record import (
    FailStage,
    RunDirectory,
    describe_crystal,
    mark_failed,
    run_settings,
    scored_attrs,
)

_STORED = (TrialState.COMPLETE, TrialState.FAIL)
WARMUP_SIZE = 5  # crystals in the first batch (fills caches; not timed)
PROBE_SIZE = 20  # crystals in the second, timed batch
# UMAP wall time, measured by benchmarks/landscape_maps.py on this 2-core machine (seeded umap-learn
# runs single-threaded; the fixed part is numba compiling it); used only for the up-front estimate.
UMAP_SECONDS_FIXED = 13.0
UMAP_SECONDS_PER_POINT = 3.4e-3


@dataclass(frozen=True)
class Estimate:
    """The up-front estimate, from the first batch of this session."""

    remaining: int
    crystals_per_second: float
    seconds: float
    umap_seconds: float
    bytes_per_crystal: float | None
    probe: int


@dataclass(frozen=True)
class JobProgress:
    done: int
    total: int
    scored: int
    failed: int
    elapsed: float


@dataclass(frozen=True)
class JobResult:
    done: int
    total: int
    scored: int
    failed: int
    elapsed: float
    crystals_per_second: float


class LandscapeJob:
    """Fill the slots of ``spec`` into the run database in ``out_dir`` (or ``storage``)."""

    def __init__(
        self,
        spec: MapSpec,
        potential: Potential,
        out_dir: str | Path,
        relax_steps: int = 0,
        fmax: float = 0.05,
        batch_size: int = 100,
        storage: str | None = None,
        resume: bool = False,
        shard: tuple[int, int] = (0, 1),
        prop: Property | None = None,
    ) -> None:
        prop = prop or CohesiveEnergy()
        if not 0 <= shard[0] < shard[1]:
            raise InputError(f"--shard {shard[0]}/{shard[1]} is invalid: use K/N with 0 <= K < N")
        potential.check_elements(spec.space.pool)
        prop.check_elements(spec.space.pool)
        if batch_size < 1:
            raise InputError(f"--batch-size {batch_size} must be at least 1")
        self.spec, self.potential, self.batch_size = spec, potential, batch_size
        self.slots = range(shard[0], spec.total, shard[1])  # this worker's share of the map
        self.out_dir = Path(out_dir)
        self.evaluator = Evaluator(potential, prop, relax_steps=relax_steps, fmax=fmax, prune_margin=None)
        self.settings = run_settings(
            spec.space,
            potential,
            prop,
            relax_steps,
            fmax,
            landscape={**spec.settings(), "shard": list(shard)},
            batch_size=batch_size,
            storage=storage,
            n_init=0,
        )
        self.run_dir, self.record = RunDirectory.start(self.out_dir, self.settings, storage, resume=resume)
        self.url = self.run_dir.url
        stored_map = self.record.user_attrs.get("settings", {}).get("landscape")
        if resume and stored_map != self.settings["landscape"]:
            raise InputError(
                "cannot resume a different map (stored: "
                f"{_brief(stored_map)}; given: {_brief(self.settings['landscape'])}): "
                f"repeat the original options"
            )
        self.done = self._count()

    @property
    def total(self) -> int:
        """Slots this job fills (the whole map, or one shard of it)."""
        return len(self.slots)

    def _count(self) -> int:
        return int(study_storage(self.record).get_n_trials(study_id(self.record), state=_STORED))

    def run(
        self,
        on_estimate: Callable[[Estimate], None] | None = None,
        callbacks: tuple[Callable[[JobProgress], None], ...] = (),
        timeout: float | None = None,
        estimate_only: bool = False,
    ) -> JobResult:
        """Fill the remaining slots. A tiny warm-up batch (caches, first model call) is followed by a
        small timed one; ``on_estimate`` hears the projection from it before the bulk begins
        (``estimate_only`` stops there, keeping both batches)."""
        start = time.perf_counter()
        scored = failed = 0
        batches = 0
        db = Path(self.url.replace("sqlite:///", "")) if self.url.startswith("sqlite") else None
        while self.done < self.total:
            if timeout is not None and time.perf_counter() - start > timeout:
                break
            probing = batches < 2 and self.total - self.done > WARMUP_SIZE + PROBE_SIZE
            size = (WARMUP_SIZE, PROBE_SIZE)[batches] if probing else self.batch_size
            size = min(size, self.total - self.done)
            size0 = db.stat().st_size if db is not None and db.exists() else None
            t0 = time.perf_counter()
            ok, bad = self.step(self.slots[self.done : self.done + size])
            scored, failed = scored + ok, failed + bad
            batches += 1
            if batches == 2 or (batches == 1 and not probing):
                if on_estimate is not None:
                    grown = db.stat().st_size - size0 if size0 is not None and db is not None else None
                    on_estimate(self._estimate(size, time.perf_counter() - t0, grown))
                if estimate_only:
                    break
            progress = JobProgress(self.done, self.total, scored, failed, time.perf_counter() - start)
            for callback in callbacks:
                callback(progress)
        elapsed = time.perf_counter() - start
        return JobResult(
            self.done,
            self.total,
            scored,
            failed,
            elapsed,
            (scored + failed) / elapsed if elapsed else math.nan,
        )

    def _estimate(self, size: int, seconds: float, grown: int | None) -> Estimate:
        rate = size / seconds if seconds > 0 else math.inf
        remaining = self.total - self.done
        return Estimate(  # UMAP runs once over the whole map, whichever shard asks
            remaining=remaining,
            crystals_per_second=rate,
            seconds=remaining / rate,
            umap_seconds=UMAP_SECONDS_FIXED + UMAP_SECONDS_PER_POINT * self.spec.total,
            bytes_per_crystal=grown / size if grown and grown > 0 else None,
            probe=size,
        )

    def step(self, slots: Sequence[int]) -> tuple[int, int]:
        """Draw, score, embed and store ``slots``; returns (scored, failed)."""
        memory, drawn = draw(self.spec, slots)
        built = [d for d in drawn if d.structure is not None]
        results = self.evaluator.score([d.structure for d in built]) if built else []
        good = [r.structure for r in results if r.error is None]
        vectors = iter(crystal_embedding(self.potential, good)) if good else iter(())
        by_slot = {d.slot: r for d, r in zip(built, results, strict=True)}
        ok = 0
        for d in drawn:
            d.trial.set_user_attr("slot", d.slot)  # the point is slot // per_point
            result = by_slot.get(d.slot)
            if result is None:
                mark_failed(memory, d.trial, FailStage.BUILD, d.reason or "not built")
            elif result.error is not None:
                mark_failed(memory, d.trial, FailStage.SCORE, result.error)
            else:
                vector = next(vectors)
                if not np.all(np.isfinite(vector)):
                    reason = "the model built no crystal graph for the embedding"
                    mark_failed(memory, d.trial, FailStage.EMBED, reason)
                    continue
                _tell(memory, d.trial, result, vector)
                ok += 1
        frozen = memory.get_trials(deepcopy=False)
        self.record.add_trials([frozen[d.trial.number] for d in drawn])
        self.done += len(drawn)
        return ok, len(drawn) - ok


def _tell(memory: optuna.Study, trial: optuna.Trial, result: Scored, vector: np.ndarray) -> None:
    """Store the search's crystal record, plus the embedding."""
    description = describe_crystal(result.structure)
    attrs = scored_attrs(description, result.energy, result.initial_value, result.relax_steps)
    for key, value in {**attrs, "embedding": [round(float(v), 5) for v in vector]}.items():
        trial.set_user_attr(key, value)
    tell(memory, trial, result.value)


def _brief(settings: dict[str, Any] | None) -> str:
    if not settings:
        return "none"
    return ", ".join(f"{k}={settings[k]}" for k in ("kind", "per_point", "seed") if k in settings)


def format_seconds(seconds: float) -> str:
    """``93 s``, ``12.5 min`` or ``3.4 h``: wall times a user can read at a glance."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
