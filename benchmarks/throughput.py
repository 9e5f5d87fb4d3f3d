"""End-to-end throughput of the search pipeline vs the potential's own batched rate (issue 4).

Paper42 binaries, single points (``relax_steps=0``), TPE. For 1 and 2 build workers: crystals per
second end to end (steady state: from the end of the first batch to the end of the run), next to the
potential's own batched energy-only rate on the very same structures, measured batch by batch in the
same run; the ratio; and where the main thread's wall time went (sampler / build wait / score wait /
describe: symmetry + JSON / storage; scoring runs in a process of its own, its busy time is reported
apart).
Then the sampler's share with 500 and 5000 trials of history: a random search fills a study
to that size, and TPE resumes it for ``--measure-steps`` more trials.

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
from pymatgen.core import Structure

from upotbo.potentials import load_potential
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search
from upotbo.search.study import STAGES, SearchConfig, StudyAccess
from upotbo.space import SearchSpace

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
            report["sampler_history"] = sampler_history(potential, args, work)
            print(
                "\n| trials in study | TPE ms per trial | sampler % | crystals/s | potential alone (/s) "
                "| load |"
            )
            print("| ---: | ---: | ---: | ---: | ---: | --- |")
            for r in report["sampler_history"]:
                print(
                    f"| {r['history']} | {r['ms_per_trial']['sampler']} | {r['share_pct']['sampler']} | "
                    f"{r['crystals_per_s']} | {r['potential_alone']['structures_per_s']} | "
                    f"{r['load_before'][0]}→{r['load_after'][0]} |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
