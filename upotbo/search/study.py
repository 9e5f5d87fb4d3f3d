"""The search: ties space, sampler, builder, potential, property and storage together.

One loop, in batches: ask ``batch_size`` trials, build each crystal (a failed build is a FAIL trial
with its reason), score the built ones in one batched potential call (with the optional relaxation),
tell every result. The sampler works on an in-memory optuna study (fast asks, no per-parameter
database round trips); each finished trial is copied into the run's database right after its batch
is scored. A killed run loses at most the batch being scored, never a stored step, and ``resume``
replays the stored trials into the sampler and goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.build import build_structure
from upotbo.errors import CandidateFailed
from upotbo.potentials.base import Potential
from upotbo.properties.base import Property
from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.samplers import make_sampler
from upotbo.space.space import SearchSpace
from upotbo.storage.study_db import open_study, prepare_out_dir, storage_url, write_settings

SYMPREC = 0.1  # Å, spglib tolerance for naming the space group of a found crystal
_STORED = (TrialState.COMPLETE, TrialState.FAIL)


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


class Search:
    """A resumable UPot-BO search writing to ``out_dir`` (or ``storage``, any SQLAlchemy URL)."""

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
    ) -> None:
        potential.check_elements(space.pool)
        prop.check_elements(space.pool)
        self.space, self.potential, self.prop = space, potential, prop
        self.out_dir = Path(out_dir)
        self.batch_size = batch_size
        self.evaluator = Evaluator(
            potential, prop, relax_steps=relax_steps, fmax=fmax, prune_margin=prune_margin
        )
        self.settings: dict[str, Any] = {
            **space.settings(),
            "potential": potential.name,
            "property": prop.name,
            "unit": prop.unit,
            "relax_steps": relax_steps,
            "fmax": fmax,
            "prune_margin": prune_margin,
            "sampler": sampler,
            "n_init": n_init,
            "seed": seed,
            "batch_size": batch_size,
            "storage": storage,
        }
        sampler_obj = make_sampler(sampler, seed, n_init)
        prepare_out_dir(self.out_dir)
        self.record = open_study(storage_url(self.out_dir, storage), self.settings, resume)
        write_settings(self.out_dir, self.settings)
        self.memory = optuna.create_study(sampler=sampler_obj, direction="minimize")
        self.memory.add_trials(self.record.get_trials(deepcopy=False, states=_STORED))
        self.potential_calls = 0

    def run(
        self,
        steps: int,
        target: float | None = None,
        callbacks: tuple[Callable[[Progress], None], ...] = (),
        timeout: float | None = None,
    ) -> SearchResult:
        """Run until ``steps`` steps are stored (counting earlier sessions), ``target`` is reached, or
        ``timeout`` seconds have passed (checked between batches, like a walltime limit)."""
        start = time.perf_counter()
        reached = self._reached(target)
        while self._steps() < steps and reached is None:
            if timeout is not None and time.perf_counter() - start > timeout:
                break
            self._step_batch(min(self.batch_size, steps - self._steps()))
            reached = self._reached(target)
            progress = self._progress(steps, time.perf_counter() - start)
            for callback in callbacks:
                callback(progress)
        return self._result(time.perf_counter() - start, reached)

    def _step_batch(self, n: int) -> None:
        asked: list[optuna.Trial] = []
        trials, structures, build_seconds = [], [], []
        for _ in range(n):
            trial = self.memory.ask()
            asked.append(trial)
            t0 = time.perf_counter()
            try:
                candidate = self.space.suggest(trial)
                structure = build_structure(candidate)
            except CandidateFailed as exc:
                self._fail(trial, "build", str(exc))
                continue
            trial.set_user_attr("cell_formula", candidate.formula)
            trials.append(trial)
            structures.append(structure)
            build_seconds.append(time.perf_counter() - t0)
        if structures:
            t0 = time.perf_counter()
            best = self._best()
            scored = self.evaluator.score(structures, best=best.value if best else None)
            per_candidate = (time.perf_counter() - t0) / len(structures)
            self.potential_calls += sum(s.relax_steps + 1 for s in scored)
            for trial, result, built in zip(trials, scored, build_seconds, strict=True):
                self._tell(trial, result, built + per_candidate)
        frozen = self.memory.get_trials(deepcopy=False)
        self.record.add_trials([frozen[t.number] for t in asked])

    def _tell(self, trial: optuna.Trial, result: Scored, seconds: float) -> None:
        if result.error is not None:
            self._fail(trial, "score", result.error)
            return
        structure = result.structure
        try:
            sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
            symbol, number = sga.get_space_group_symbol(), sga.get_space_group_number()
        except Exception:  # spglib can fail on distorted cells; the crystal is still valid
            symbol, number = "P1", 1
        attrs = {
            "formula": structure.composition.reduced_formula,
            "natoms": len(structure),
            "elements": sorted({el.symbol for el in structure.composition.elements}),
            "spacegroup": symbol,
            "spacegroup_number": number,
            "energy": result.energy,
            "initial_value": result.initial_value,
            "relax_steps": result.relax_steps,
            "seconds": seconds,
            "structure": json.dumps(structure.as_dict()),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.memory.tell(trial, result.value)

    def _fail(self, trial: optuna.Trial, stage: str, reason: str) -> None:
        trial.set_user_attr("fail_stage", stage)
        trial.set_user_attr("fail_reason", reason)
        self.memory.tell(trial, state=TrialState.FAIL)

    def _steps(self) -> int:
        return len(self.memory.get_trials(deepcopy=False, states=_STORED))

    def _complete(self) -> list[FrozenTrial]:
        return self.memory.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def _reached(self, target: float | None) -> int | None:
        if target is None:
            return None
        hits = [t.number for t in self._complete() if t.value <= target]
        return min(hits) if hits else None

    def _best(self) -> FrozenTrial | None:
        complete = self._complete()
        return min(complete, key=lambda t: t.value) if complete else None

    def _progress(self, total: int, elapsed: float) -> Progress:
        best, steps, scored = self._best(), self._steps(), len(self._complete())
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
        for t in self._complete():
            if not history or t.value < history[-1][1]:
                history.append((t.number, float(t.value)))
        steps, scored = self._steps(), len(self._complete())
        return SearchResult(
            steps=steps,
            best_value=best.value if best else None,
            best_formula=best.user_attrs["cell_formula"] if best else None,
            best_step=best.number if best else None,
            elapsed=elapsed,
            scored=scored,
            failed=steps - scored,
            potential_calls=self.potential_calls,
            reached_target_at=reached,
            history=history,
        )
