"""Time-to-target in the paper42 binary space: TPE vs random, several seeds.

Target: within 0.02 eV/atom of the potential's own relaxed rock-salt ZrC (or lower). Each run stops at
the target, at --max-steps, or at --max-seconds (a walltime cap, reported as such). Prints a table
(steps, potential evaluations, wall seconds to target; median/min/max; the compound each run ended
on) and writes JSON.

    python benchmarks/time_to_target.py --seeds 5 --samplers tpe,random --parallel 2

With ``--parallel 2`` each seed's TPE and random runs go side by side, one process and one torch
thread each, so both see the same machine load (these machines are shared): the ratio is fair even
when the absolute seconds are not.

``--baseline DIR`` runs each seed's searches a second time, side by side, with the upotbo source tree
in DIR (e.g. a ``git worktree`` of an older commit), labelled ``SAMPLER@baseline``: a code change
measured against the code before it, under the same load.

    python benchmarks/time_to_target.py --seeds 5 --samplers tpe --parallel 2 --baseline /tmp/old

A sampler may name the in-loop relaxation too, ``SAMPLER/OPTIMIZER:STEPS`` (e.g. ``tpe/bfgs:20``), to
compare relaxation settings side by side: ``--samplers tpe,tpe/bfgs:20``; and the batch size,
``tpe/bfgs:20/48``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
from pymatgen.core import Lattice, Structure

from upotbo.potentials import load_potential, relax_batch
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
PAPER = {"steps": 878, "cpu_seconds": 3.44 * 3600}


def zrc_reference(potential) -> float:
    zrc = Structure.from_spacegroup(225, Lattice.cubic(4.7), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    relaxed = relax_batch(potential, [zrc], steps=200, fmax=0.01)[0]
    return CohesiveEnergy().value(relaxed.structure, relaxed.energy, potential)


def variant(sampler: str, args) -> dict:
    """The ``SearchConfig`` fields a sampler label sets: ``tpe``, ``tpe/bfgs:20`` or ``tpe/bfgs:20/48``
    (the last part: the batch size, else ``--batch-size``)."""
    name, _, rest = sampler.partition("/")
    relaxation, _, batch = rest.partition("/")
    optimizer, _, steps = relaxation.partition(":")
    return {
        "sampler": name,
        "optimizer": optimizer or "fire",
        "relax_steps": int(steps or args.relax_steps),
        "batch_size": int(batch or args.batch_size),
    }


def one_run(potential, sampler: str, seed: int, target: float, args) -> dict:
    space = SearchSpace.create(args.pool, args.ncomp, args.nchem)
    hit: dict = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.keep) / f"{sampler}-seed{seed}" if args.keep else Path(scratch)
        search = Search(
            space,
            potential,
            CohesiveEnergy(),
            out,
            SearchConfig(
                **variant(sampler, args),
                n_init=args.n_init,
                seed=seed,
                prune_margin=args.prune_margin or None,
            ),
        )

        def watch(progress) -> None:
            if not hit and progress.best_value is not None and progress.best_value <= target:
                hit.update(seconds=time.perf_counter() - start, calls=search.potential_calls)
            best = "none yet" if progress.best_value is None else f"{progress.best_value:.3f} eV/atom"
            print(
                f"  {sampler} seed {seed}: step {progress.steps}, best {best} {progress.best_formula}, "
                f"{progress.elapsed:.0f} s",
                flush=True,
            )

        result = search.run(args.max_steps, target=target, callbacks=(watch,), timeout=args.max_seconds)
        best = search.best()
    return {
        "sampler": sampler,
        "seed": seed,
        "reached": result.reached_target_at is not None,
        "steps_to_target": None if result.reached_target_at is None else result.reached_target_at + 1,
        "seconds_to_target": hit.get("seconds"),
        "potential_evaluations_to_target": hit.get("calls"),
        "steps_run": result.steps,
        "seconds_run": result.elapsed,
        "potential_evaluations_run": result.potential_calls,
        "best_value_eV_per_atom": result.best_value,
        "best_formula": result.best_formula,
        "best_spacegroup": best.user_attrs.get("spacegroup") if best else None,
    }


def child_run(sampler: str, seed: int, target: float, args) -> dict:
    """One run in its own process (own torch threads), streaming its progress lines; a sampler named
    ``NAME@baseline`` runs with the source tree of ``--baseline``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // args.parallel))}
    script, name = __file__, sampler
    if sampler.endswith("@baseline"):
        name = sampler.removesuffix("@baseline")
        script = str(Path(args.baseline) / "benchmarks" / Path(__file__).name)
        env["PYTHONPATH"] = str(Path(args.baseline).resolve())
    argv = [a for a in sys.argv[1:] if a != "--baseline" and a != args.baseline]
    cmd = [sys.executable, script, *argv, "--one", name, str(seed), str(target)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    last = ""
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("{"):
            last = line
        else:
            print(line, end="", flush=True)
    proc.wait()
    return {**json.loads(last), "sampler": sampler}


def summarize(runs: list[dict], key: str) -> dict:
    """Median over *all* runs, a run that missed the target counting as slower than any that reached
    it (a censored median: ``None`` when half or more missed); min and max over the runs that reached
    it, ``max`` ``None`` when some did not (it is then above the cap)."""
    values = sorted(r[key] for r in runs if r["reached"])
    ranked = values + [math.inf] * (len(runs) - len(values))
    median = statistics.median(ranked) if ranked else math.inf
    return {
        "median": None if math.isinf(median) else median,
        "min": values[0] if values else None,
        "max": values[-1] if values and len(values) == len(runs) else None,
        "reached": f"{len(values)}/{len(runs)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", default="tpe,random")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--pool", default="paper42")
    parser.add_argument("--ncomp", type=int, default=2)
    parser.add_argument("--nchem", type=int, default=5)
    parser.add_argument("--n-init", type=int, default=200)
    parser.add_argument("--relax-steps", type=int, default=40)
    parser.add_argument("--prune-margin", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--tolerance", type=float, default=0.02, help="eV/atom above relaxed rock-salt ZrC")
    parser.add_argument("--json", default="benchmarks/results/time_to_target.json")
    parser.add_argument("--keep", default=None, help="keep each run directory under this folder")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once, one process each")
    parser.add_argument("--baseline", default=None, help="also run each search with the source tree in DIR")
    parser.add_argument("--one", nargs=3, metavar=("SAMPLER", "SEED", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:  # a child process: one run, its JSON on the last line of stdout
        potential = load_potential("chgnet")
        sampler, seed, target = args.one[0], int(args.one[1]), float(args.one[2])
        print(json.dumps(one_run(potential, sampler, seed, target, args)), flush=True)
        return
    potential = load_potential("chgnet")
    reference = zrc_reference(potential)
    target = reference + args.tolerance
    print(
        f"target: E_c <= {target:.3f} eV/atom "
        f"(relaxed rock-salt ZrC {reference:.3f} eV/atom + {args.tolerance})"
    )
    samplers = args.samplers.split(",")
    if args.baseline:
        samplers = [name for s in samplers for name in (s, f"{s}@baseline")]
    jobs = [(s, seed) for seed in range(args.first_seed, args.first_seed + args.seeds) for s in samplers]
    load_before = os.getloadavg()[0]
    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(lambda job: child_run(job[0], job[1], target, args), jobs))

    print("\n| sampler | seed | reached | steps | potential evals | wall s | ended on | E_c (eV/atom) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | --- | ---: |")
    for r in runs:
        steps = r["steps_to_target"] if r["reached"] else f">{r['steps_run']}"
        secs = f"{r['seconds_to_target']:.0f}" if r["reached"] else f">{r['seconds_run']:.0f}"
        evals = r["potential_evaluations_to_target"] if r["reached"] else f">{r['potential_evaluations_run']}"
        print(
            f"| {r['sampler']} | {r['seed']} | {r['reached']} | {steps} | {evals} | {secs} | "
            f"{r['best_formula']} {r['best_spacegroup']} | {r['best_value_eV_per_atom']:.3f} |"
        )
    summary = {}
    for sampler in samplers:
        subset = [r for r in runs if r["sampler"] == sampler]
        summary[sampler] = {
            k: summarize(subset, k)
            for k in ("steps_to_target", "seconds_to_target", "potential_evaluations_to_target")
        }
        s = summary[sampler]
        steps, secs = s["steps_to_target"], s["seconds_to_target"]
        missed = "not reached in half or more of the runs"
        print(
            f"{sampler}: reached {steps['reached']}; median "
            + (f"{steps['median']} steps, {secs['median']:.0f} s" if steps["median"] is not None else missed)
            + f" (fastest {secs['min'] if secs['min'] is None else round(secs['min'])} s)"
        )
    print(f"paper (UPot-BO, M3GNet): {PAPER['steps']} steps, {PAPER['cpu_seconds']:.0f} CPU s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "target_eV_per_atom": target,
                "reference_zrc": reference,
                "settings": vars(args),
                "load_average_at_start": load_before,
                "load_average_at_end": os.getloadavg()[0],
                "runs": runs,
                "summary": summary,
                "paper": PAPER,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
