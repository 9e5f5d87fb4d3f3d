"""End-to-end throughput of the search pipeline vs the potential's own batched rate (issue 4).

Paper42 binaries, single points (``relax_steps=0``), TPE. For 1 and 2 build workers: crystals per
second end to end (steady state: from the end of the first batch to the end of the run), then the
potential's own batched energy-only rate on the very same structures in the same process right after,
the ratio, and where the main process's wall time went (sampler / build wait / score / describe:
symmetry + JSON / storage). Then the sampler's share with 500 and 5000 trials of history: a random
search fills a study to that size, and TPE resumes it for ``--measure-steps`` more trials.

    python benchmarks/throughput.py --steps 1000 --history 500,5000

The machine is shared: the load average before and after each phase goes into the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import optuna

from upotbo.potentials import load_potential
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search
from upotbo.search.study import STAGES
from upotbo.space import SearchSpace
from upotbo.storage import completed_records, load_existing, storage_url

optuna.logging.set_verbosity(optuna.logging.WARNING)
RESULTS = Path(__file__).parent / "results" / "throughput.json"


def _search(potential, out: Path, args, **kwargs) -> Search:
    space = SearchSpace.create(args.pool, 2, 5)
    options = dict(n_init=200, relax_steps=0, batch_size=args.batch_size, seed=args.seed) | kwargs
    return Search(space, potential, CohesiveEnergy(), out, **options)


def _timed_run(search: Search, steps: int) -> dict:
    """Run; steady-state rate from the first batch's end; main-process seconds per stage in %."""
    marks: list[tuple[float, int]] = []
    start_steps = search._steps()
    result = search.run(steps, callbacks=(lambda p: marks.append((p.elapsed, p.steps)),))
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    spent = sum(result.seconds.values())
    return {
        "steps": result.steps - start_steps,
        "wall_s": round(result.elapsed, 2),
        "crystals_per_s": round((s1 - s0) / (t1 - t0) if t1 > t0 else s1 / t1, 2),
        "share_pct": {k: round(100 * result.seconds[k] / result.elapsed, 1) for k in STAGES},
        "other_pct": round(100 * (result.elapsed - spent) / result.elapsed, 1),
        "ms_per_trial": {
            k: round(1000 * result.seconds[k] / (result.steps - start_steps), 2) for k in STAGES
        },
        "best": result.best_formula,
        "best_value": result.best_value,
    }


def _potential_rate(potential, out: Path, batch: int) -> dict:
    """The potential alone, energy-only batches, on the structures this run scored."""
    structures = [r.structure for r in completed_records(load_existing(storage_url(out)))]
    potential.energies(structures[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(structures), batch):
        potential.energies(structures[i : i + batch])
    seconds = time.perf_counter() - start
    return {
        "structures": len(structures),
        "seconds": round(seconds, 2),
        "structures_per_s": round(len(structures) / seconds, 1),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pipeline(potential, args, work: Path) -> list[dict]:
    rows = []
    for workers in args.workers:
        out = work / f"pipeline-w{workers}"
        load_before = _load()
        run = _timed_run(_search(potential, out, args, workers=workers), args.steps)
        alone = _potential_rate(potential, out, args.batch_size)
        rows.append(
            {
                "workers": workers,
                **run,
                "potential_alone": alone,
                "ratio": round(run["crystals_per_s"] / alone["structures_per_s"], 3),
                "load_before": load_before,
                "load_after": _load(),
            }
        )
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
            workers=args.workers[-1],
            resume=(filled / "study.db").exists(),
        ).run(size)
        copy = work / f"tpe-{size}"
        shutil.copytree(filled, copy)
        tpe = _search(potential, copy, args, sampler="tpe", workers=args.workers[-1], resume=True)
        run = _timed_run(tpe, size + args.measure_steps)
        rows.append({"history": size, **run, "load_before": load_before, "load_after": _load()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="paper42")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--history", default="500,5000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--measure-steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="phases to skip: pipeline,history")
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
                "| score % | describe % | storage % | load |"
            )
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            for r in report["pipeline"]:
                s, alone = r["share_pct"], r["potential_alone"]["structures_per_s"]
                print(
                    f"| {r['workers']} | {r['crystals_per_s']} | {alone} | "
                    f"{r['ratio']:.2f} | {s['sampler']} | {s['build']} | {s['score']} | {s['describe']} | "
                    f"{s['storage']} | {r['load_before'][0]}→{r['load_after'][0]} |"
                )
        if "history" not in args.skip:
            report["sampler_history"] = sampler_history(potential, args, work)
            print("\n| trials in study | TPE ms per trial | sampler % | crystals/s | load |")
            print("| ---: | ---: | ---: | ---: | --- |")
            for r in report["sampler_history"]:
                print(
                    f"| {r['history']} | {r['ms_per_trial']['sampler']} | {r['share_pct']['sampler']} | "
                    f"{r['crystals_per_s']} | {r['load_before'][0]}→{r['load_after'][0]} |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
