"""End-to-end throughput of the search pipeline vs the potential's own batched rate (issue 4).

Paper42 binaries, single points (``relax_steps=0``), TPE. For 1 and 2 build workers: crystals per
second end to end (steady state: from the end of the first batch to the end of the run), next to the
potential's own batched energy-only rate on the very same structures, measured batch by batch in the
same run; the ratio; and where the main thread's wall time went (sampler / build wait / score wait /
describe: symmetry + JSON / storage; scoring runs in a process of its own, its busy time is reported
apart).
Then the sampler's share with 500 and 5000 trials of history: a random search fills a study
to that size, and TPE (``--history-sampler``, e.g. ``tpe+moves``) resumes it for ``--measure-steps``
more trials.

    python benchmarks/throughput.py --steps 1000 --history 500,5000
    python benchmarks/throughput.py --skip pipeline,relaxing,potentials,startup --history-sampler tpe+moves

The relaxing phase (the README's search: 20 BFGS steps, the default sampler) runs the search with a
rolling batch and with fixed batches side by side. Each run's potential calls are sampled as they happen
(512 forces + stress and 512 energy-only evaluations, reservoir-sampled, and their counts); the
potential alone then evaluates those samples in batches of the size the run's calls had (a rolling run
splits its ``--relax-batch`` in lanes: 16 crystals a call of 32) on the same processes (one per core):
the ideal is the run's evaluation counts at those rates, next to the search's time. Then the forces +
stress rate on the same sample by batch size (how the default ``--batch-size`` was chosen).
``--relax-modes rolling`` skips the fixed batches.

    python benchmarks/throughput.py --skip pipeline,history,startup --relax-run-steps 2000

``startup``: a real ``upotbo search --steps 64`` command, from its launch to its first stored trial,
its first scored crystal and its exit, three times (the first may find the disk cache cold).

    python benchmarks/throughput.py --skip pipeline,history,potentials,relaxing

The machine is shared: the load average before and after each phase goes into the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import optuna
from pymatgen.core import Structure

from upotbo.potentials import Potential, load_potential
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search
from upotbo.search import study as study_module
from upotbo.search.cores import available_cores
from upotbo.search.split_potential import PotentialProcesses
from upotbo.search.study import STAGES, SearchConfig, StudyAccess
from upotbo.space import SearchSpace
from upotbo.storage import RunDirectory, completed_records

optuna.logging.set_verbosity(optuna.logging.WARNING)
RESULTS = Path(__file__).parent / "results" / "throughput.json"


def _search(potential, out: Path, args, resume: bool = False, **kwargs) -> Search:
    space = SearchSpace.create(args.pool, 2, 5)
    options = dict(n_init=200, relax_steps=0, batch_size=args.batch_size, seed=args.seed) | kwargs
    access = StudyAccess(resume=resume)
    return Search(space, potential, CohesiveEnergy(), out, SearchConfig(**options), access)


class _Reference:
    """Progress callback: after each batch, the potential alone on that batch's crystals (energy only).

    Interleaved batch by batch, so the pipeline and the potential alone see the same machine load;
    the pipeline is paused meanwhile, and the pause is taken out of its wall time.
    """

    def __init__(self, search: Search) -> None:
        self.search, self.seen = search, len(search.completed())
        self.structures, self.seconds, self.paused = 0, 0.0, 0.0
        self.marks: list[tuple[float, int]] = []
        self.stages: list[dict[str, float]] = []  # the search's seconds per stage at each mark

    def __call__(self, progress) -> None:
        t0 = time.perf_counter()
        self.marks.append((progress.elapsed - self.paused, progress.steps))
        self.stages.append(dict(self.search.timings.seconds))
        complete = self.search.completed()
        new, self.seen = complete[self.seen :], len(complete)
        structures = [Structure.from_dict(json.loads(t.user_attrs["structure"])) for t in new]
        t1 = time.perf_counter()
        if structures:
            self.search.potential.energies(structures)
        self.seconds += time.perf_counter() - t1
        self.structures += len(structures)
        self.paused += time.perf_counter() - t0


def _timed_run(search: Search, steps: int) -> dict:
    """Run; rate and main-thread seconds per stage (%) in steady state: from the first batch's end
    (worker start-up, first asks) to the last batch's end."""
    start_steps = search.steps
    reference = _Reference(search)
    result = search.run(steps, callbacks=(reference,))
    (t0, s0), (t1, s1) = reference.marks[0], reference.marks[-1]
    first, last = reference.stages[0], reference.stages[-1]
    if len(reference.marks) < 2:  # a single batch: no steady state to speak of, take the whole run
        t0, s0, first = 0.0, start_steps, dict.fromkeys(last, 0.0)
    wall = t1 - t0
    n = s1 - s0
    stage = {k: last[k] - first[k] for k in last}
    rate = n / wall
    alone = reference.structures / reference.seconds
    return {
        "steps": n,
        "wall_s": round(wall, 2),
        "crystals_per_s": round(rate, 2),
        "potential_alone": {
            "structures": reference.structures,
            "seconds": round(reference.seconds, 2),
            "structures_per_s": round(alone, 1),
        },
        "ratio": round(rate / alone, 3),
        "share_pct": {k: round(100 * stage[k] / wall, 1) for k in STAGES},
        "scorer_busy_pct": round(100 * stage["score_busy"] / wall, 1),
        "ms_per_trial": {k: round(1000 * v / n, 2) for k, v in stage.items()},
        "total_wall_s": round(result.elapsed - reference.paused, 2),
        "best": result.best_formula,
        "best_value": result.best_value,
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pipeline(potential, args, work: Path) -> list[dict]:
    rows = []
    for workers in args.workers:
        load_before = _load()
        run = _timed_run(_search(potential, work / f"pipeline-w{workers}", args, workers=workers), args.steps)
        rows.append({"workers": workers, **run, "load_before": load_before, "load_after": _load()})
    return rows


def sampler_history(potential, args, work: Path) -> list[dict]:
    rows = []
    filled = work / "history"
    for size in sorted(args.history):
        load_before = _load()
        _search(
            potential,
            filled,
            args,
            sampler="random",
            seed=args.seed + size,  # a resumed random sampler would otherwise repeat its first draws
            workers=args.workers[-1],
            resume=(filled / "study.db").exists(),
        ).run(size)
        copy = work / f"tpe-{size}"
        shutil.copytree(filled, copy)
        sampler = args.history_sampler
        tpe = _search(potential, copy, args, sampler=sampler, workers=args.workers[-1], resume=True)
        run = _timed_run(tpe, size + args.measure_steps)
        rows.append({"history": size, **run, "load_before": load_before, "load_after": _load()})
    return rows


class _Sample:
    """A fixed-seed sample of the crystals a run's potential calls send (forces + stress and energy-only
    apart) and their counts: the geometries a relaxing search really evaluates (starting cells,
    half-relaxed ones), not its relaxed finds."""

    samples: dict[bool, list[Structure]] = {}
    counts: dict[bool, int] = {}
    rng = random.Random(0)

    @classmethod
    def reset(cls, seed: int) -> None:
        cls.samples, cls.counts, cls.rng = {True: [], False: []}, {True: 0, False: 0}, random.Random(seed)

    @classmethod
    def keep(cls, structures, forces: bool) -> None:
        sample = cls.samples[forces]
        for structure in structures:  # reservoir sampling: every evaluation equally likely kept
            cls.counts[forces] += 1
            if len(sample) < SAMPLE:
                sample.append(structure)
            elif (j := cls.rng.randrange(cls.counts[forces])) < SAMPLE:
                sample[j] = structure


class _RecordedProcesses(PotentialProcesses):
    """A rolling run's potential processes, sampling what they get (every call comes here)."""

    def calculate_mixed(self, structures, forces, stress=False):
        for kind in (True, False):
            _Sample.keep([s for s, f in zip(structures, forces, strict=True) if f == kind], kind)
        return super().calculate_mixed(structures, forces, stress)


class _Recorded(Potential):
    """A potential called in this process (fixed batches), sampling what it gets."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.elements = inner, inner.name, inner.elements
        self.energy_reference = inner.energy_reference

    def calculate(self, structures, forces=False, stress=False):
        _Sample.keep(structures, forces)
        return self.inner.calculate(structures, forces=forces, stress=stress)


SAMPLE = 512


def potential_rate(
    potential, structures: list[Structure], batch: int, forces: bool, repeats: int = 3
) -> float:
    """Crystals per second of the potential alone, in batches of ``batch`` (forces + stress or energy):
    the best of ``repeats`` passes (one pass of 512 crystals, ~3 s, varied by 10 % from run to run)."""
    potential.calculate(structures[:batch], forces=forces, stress=forces)  # warm the model up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(structures), batch):
            potential.calculate(structures[i : i + batch], forces=forces, stress=forces)
        best = min(best, time.perf_counter() - t0)
    return len(structures) / best


def potentials(args, work: Path) -> list[dict]:
    """Each bundled potential's batched rate on the same crystals: those a random single-point search
    of the pool scored (CHGNet), evaluated in this process on all cores, one potential after another."""
    result = _search(load_potential("chgnet"), work / "potentials", args, sampler="random").run(args.steps)
    structures = [r.structure for r in completed_records(RunDirectory.open(work / "potentials").study())]
    rows = []
    for spec in args.potentials:
        load_before = _load()
        potential = load_potential(spec)
        rows.append({
            "potential": potential.name,
            "crystals": len(structures),
            "mean_atoms": round(sum(len(s) for s in structures) / len(structures), 2),
            "energy_per_s": round(potential_rate(potential, structures, args.relax_batch, False), 1),
            "forces_stress_per_s": round(potential_rate(potential, structures, args.relax_batch, True), 1),
            "load_before": load_before,
            "load_after": _load(),
        })
    print(f"(crystals: the {result.scored} a random {args.pool} search scored)")
    return rows


def relaxing(potential, args, work: Path) -> dict:
    """Rolling vs fixed batches, each next to the potential alone on the same evaluations."""
    rows, sizes = [], {}
    study_module.PotentialProcesses = _RecordedProcesses  # the search's own processes, sampling
    for rolling in (mode == "rolling" for mode in args.relax_modes):
        load_before = _load()
        _Sample.reset(args.seed)
        space = SearchSpace.create(args.pool, 2, 5)
        config = SearchConfig(  # the README's search: 20 BFGS steps, the default sampler
            relax_steps=20, optimizer="bfgs", batch_size=args.relax_batch, seed=args.seed, rolling=rolling
        )
        scored = potential if rolling else _Recorded(potential)
        result = Search(space, scored, CohesiveEnergy(), work / f"relax-{rolling}", config).run(
            args.relax_run_steps
        )
        samples, counts = dict(_Sample.samples), dict(_Sample.counts)
        with PotentialProcesses(potential, available_cores()) as alone:
            # the crystals per call the search made: a rolling run splits its batch in lanes
            batch = -(-args.relax_batch // (study_module.LANES if rolling and alone.remote else 1))
            forces = potential_rate(alone, samples[True], batch, forces=True)
            energy = potential_rate(alone, samples[False], batch, False) if counts[False] else 0
            if rolling:
                for batch in args.batch_sizes:
                    sizes[batch] = round(potential_rate(alone, samples[True], batch, forces=True), 1)
        ideal = counts[True] / forces + (counts[False] / energy if counts[False] else 0.0)
        rows.append({
            "mode": "rolling batch" if rolling else "fixed batches",
            "crystals_per_call": batch,
            "steps": result.steps,
            "scored": result.scored,
            "evaluations_forces_stress": counts[True],
            "evaluations_energy_only": counts[False],
            "search_s": round(result.elapsed, 1),
            "evaluations_per_s": round(sum(counts.values()) / result.elapsed, 1),
            "crystals_per_s": round(result.steps / result.elapsed, 2),
            "alone_forces_stress_per_s": round(forces, 1),
            "alone_energy_per_s": round(energy, 1),
            "ideal_s": round(ideal, 1),
            "ratio": round(ideal / result.elapsed, 2),
            "best": result.best_formula,
            "best_value_eV_per_atom": result.best_value,
            "best_step": result.best_step,
            "main_thread_s": {k: round(v, 1) for k, v in result.seconds.items()},
            "load_before": load_before,
            "load_after": _load(),
        })
    study_module.PotentialProcesses = PotentialProcesses
    return {"runs": rows, "forces_stress_per_s_by_batch": sizes}


def startup(args, work: Path) -> list[dict]:
    """A real command: seconds from its launch to its first stored trial, and to its exit."""
    import datetime
    import sqlite3
    import subprocess

    rows = []
    for attempt in ("first", "second", "third"):
        out = work / f"startup-{attempt}"
        load_before = _load()
        launched = datetime.datetime.now()
        t0 = time.perf_counter()
        command = ["upotbo", "search", "--steps", "64", "--out", str(out), "--no-progress"]
        subprocess.run(command, check=True, capture_output=True)
        total = time.perf_counter() - t0
        with sqlite3.connect(out / "study.db") as db:
            (first,) = db.execute("select min(datetime_complete) from trials").fetchone()
            (scored,) = db.execute(
                "select min(datetime_complete) from trials where state = 'COMPLETE'"
            ).fetchone()
        rows.append({
            "attempt": attempt,
            "first_trial_s": round((datetime.datetime.fromisoformat(first) - launched).total_seconds(), 1),
            "first_scored_s": round((datetime.datetime.fromisoformat(scored) - launched).total_seconds(), 1),
            "exit_s": round(total, 1),
            "load_before": load_before,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="paper42")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--history", default="500,5000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--history-sampler", default="tpe", help="the sampler that resumes the history")
    parser.add_argument("--measure-steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-run-steps", type=int, default=2000)
    parser.add_argument("--relax-batch", type=int, default=32)
    parser.add_argument("--relax-modes", default="rolling,fixed", type=lambda s: s.split(","))
    numbers = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--batch-sizes", default="8,16,32,64,128", type=numbers)
    parser.add_argument(
        "--skip", default="", help="phases to skip: pipeline,history,relaxing,potentials,startup"
    )
    parser.add_argument(
        "--potentials", default="chgnet,sevenn,sevenn:7net-l3i5", type=lambda s: s.split(","),
        help="potentials compared in the potentials phase",
    )
    args = parser.parse_args()
    potential = load_potential("chgnet")
    report: dict = {
        "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items()},
    }
    work = Path(tempfile.mkdtemp(prefix="upotbo-throughput-"))
    try:
        if "pipeline" not in args.skip:
            report["pipeline"] = pipeline(potential, args, work)
            print(
                "| workers | crystals/s end to end | potential alone (/s) | ratio | sampler % | build wait % "
                "| score wait % | describe % | storage % | scorer busy % | load |"
            )
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            for r in report["pipeline"]:
                s, alone = r["share_pct"], r["potential_alone"]["structures_per_s"]
                print(
                    f"| {r['workers']} | {r['crystals_per_s']} | {alone} | "
                    f"{r['ratio']:.2f} | {s['sampler']} | {s['build']} | {s['score']} | {s['describe']} | "
                    f"{s['storage']} | {r['scorer_busy_pct']} | "
                    f"{r['load_before'][0]}→{r['load_after'][0]} |"
                )
        if "history" not in args.skip:
            key = "sampler_history" + ("" if args.history_sampler == "tpe" else f"_{args.history_sampler}")
            report[key] = sampler_history(potential, args, work)
            print(
                f"\n| trials in study | {args.history_sampler} ms per trial | sampler % | crystals/s | "
                "potential alone (/s) "
                "| load |"
            )
            print("| ---: | ---: | ---: | ---: | ---: | --- |")
            for r in report[key]:
                print(
                    f"| {r['history']} | {r['ms_per_trial']['sampler']} | {r['share_pct']['sampler']} | "
                    f"{r['crystals_per_s']} | {r['potential_alone']['structures_per_s']} | "
                    f"{r['load_before'][0]}→{r['load_after'][0]} |"
                )
        if "potentials" not in args.skip:
            report["potentials"] = potentials(args, work)
            print(
                "\n| potential | crystals (mean atoms) | energy only (crystals/s) "
                "| forces + stress (crystals/s) | load |"
            )
            print("| --- | ---: | ---: | ---: | --- |")
            for r in report["potentials"]:
                print(
                    f"| {r['potential']} | {r['crystals']} ({r['mean_atoms']}) | {r['energy_per_s']} | "
                    f"{r['forces_stress_per_s']} | {r['load_before'][0]}→{r['load_after'][0]} |"
                )
        if "relaxing" not in args.skip:
            report["relaxing"] = relaxing(potential, args, work)
            print(
                "\n| mode | steps | evaluations (forces+stress / energy) | search (s) | evaluations/s "
                "| alone: forces+stress /s "
                "| energy /s | ideal (s) | ideal / actual | best | load |"
            )
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
            for r in report["relaxing"]["runs"]:
                print(
                    f"| {r['mode']} | {r['steps']} | "
                    f"{r['evaluations_forces_stress']} / {r['evaluations_energy_only']} | {r['search_s']} | "
                    f"{r['evaluations_per_s']} | {r['alone_forces_stress_per_s']} | "
                    f"{r['alone_energy_per_s']} | "
                    f"{r['ideal_s']} | {r['ratio']} | {r['best']} {r['best_value_eV_per_atom']:.3f} eV/atom "
                    f"(step {r['best_step']}) | {r['load_before'][0]}→{r['load_after'][0]} |"
                )
            by_batch = report["relaxing"]["forces_stress_per_s_by_batch"]
            print("\n| batch size | " + " | ".join(str(b) for b in by_batch) + " |")
            print("| --- |" + " ---: |" * len(by_batch))
            rates = " | ".join(str(v) for v in by_batch.values())
            print(f"| CHGNet forces + stress (crystals/s) | {rates} |")
        if "startup" not in args.skip:
            report["startup"] = startup(args, work)
            print("\n| start-up | first stored trial (s) | first scored crystal (s) | 64 steps done (s) |")
            print("| --- | ---: | ---: | ---: |")
            for r in report["startup"]:
                print(f"| {r['attempt']} | {r['first_trial_s']} | {r['first_scored_s']} | {r['exit_s']} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # phases skipped keep their figures
    RESULTS.write_text(json.dumps(kept | report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
