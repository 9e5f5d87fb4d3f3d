"""In-loop relaxation: BFGS vs FIRE on the crystals a real search relaxes, same starts, same steps.

A default search (paper42 binaries) runs for ``--steps``; every crystal that survives the energy-only
screening has its relaxation start recorded (the strained, rattled cell the search relaxed). A sample
of them (the best ``--best`` by the search's value plus ``--others`` drawn at random) is then relaxed
again in this process with each optimizer for ``--relax-steps`` steps, and the script prints, per
optimizer: evaluations, the median number of steps to come within 0.05 eV/atom of FIRE's final energy,
the mean gap to FIRE's final energy after 10 and 20 steps, and the final energy against FIRE's.

    python benchmarks/optimizers.py --steps 2000 --best 30 --others 40
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from upotbo.potentials import load_potential, relax_batch
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig, scoring
from upotbo.space import SearchSpace

FIRE = "fire"


def recorded_starts(args, work: Path) -> tuple[dict, dict]:
    """Run the search; the start of every crystal that relaxed past its screening, and its value."""
    starts, relaxed = {}, {}
    add, step = scoring.RollingBatch.add, scoring.RollingBatch.step

    def recording_add(self, key, structure):  # noqa: ANN001, ANN202
        add(self, key, structure)
        starts[key] = self.starts[key]

    def recording_step(self, *a, **k):  # noqa: ANN002, ANN003, ANN202
        departed = step(self, *a, **k)
        for key, scored in zip(departed.keys, departed.scored, strict=True):
            if scored.error is None and scored.relax_steps > 0:
                relaxed[key] = scored.value
        return departed

    scoring.RollingBatch.add, scoring.RollingBatch.step = recording_add, recording_step
    try:
        config = SearchConfig(relax_steps=args.relax_steps, seed=args.seed, optimizer=args.search_optimizer)
        space = SearchSpace.create("paper42", 2, 5)
        Search(space, load_potential("chgnet"), CohesiveEnergy(), work, config).run(args.steps)
    finally:
        scoring.RollingBatch.add, scoring.RollingBatch.step = add, step
    return starts, relaxed


def trajectories(potential, structures: list, optimizer: str, steps: int) -> tuple[list[dict], float]:
    """Energy per atom at every step of each structure's relaxation, and the seconds it took."""
    seen: list[dict] = [{} for _ in structures]

    def log(i: int, step: int, energy: float) -> bool:
        seen[i][step] = energy / len(structures[i])
        return False

    t0 = time.perf_counter()
    relax_batch(potential, structures, steps=steps, fmax=0.05, stop=log, optimizer=optimizer)
    return seen, time.perf_counter() - t0


def at(trajectory: dict, step: int) -> float:
    return trajectory[max(s for s in trajectory if s <= step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="search steps that provide the starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-steps", type=int, default=40)
    parser.add_argument("--search-optimizer", default=FIRE, help="optimizer of the recording search")
    parser.add_argument("--best", type=int, default=30)
    parser.add_argument("--others", type=int, default=40)
    parser.add_argument("--optimizers", default="fire,bfgs")
    parser.add_argument("--json", default="benchmarks/results/optimizers.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        starts, relaxed = recorded_starts(args, Path(work))
    ranked = sorted(relaxed, key=relaxed.get)
    rest = ranked[args.best :]
    chosen = ranked[: args.best] + random.Random(args.seed).sample(rest, min(args.others, len(rest)))
    structures = [starts[k] for k in chosen]
    potential = load_potential("chgnet")
    runs = {
        name: trajectories(potential, structures, name, args.relax_steps)
        for name in args.optimizers.split(",")
    }
    fire = runs[FIRE][0]
    final = [t[max(t)] for t in fire]
    rows = []
    print(
        f"{len(structures)} relaxations recorded from a {args.steps}-step search, "
        f"{args.relax_steps} steps each"
    )
    print(
        "| optimizer | evaluations | s | median steps to FIRE's final + 0.05 eV/atom "
        "| gap after 10 / 20 steps (eV/atom) | final - FIRE final: mean (eV/atom) | lower / higher by > 0.1 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (traj, seconds) in runs.items():
        reach = [
            min((s for s, e in t.items() if e <= f + 0.05), default=99)
            for t, f in zip(traj, final, strict=True)
        ]
        diff = [t[max(t)] - f for t, f in zip(traj, final, strict=True)]
        row = {
            "optimizer": name,
            "evaluations": sum(max(t) + 1 for t in traj),
            "seconds": round(seconds, 1),
            "median_steps_to_fire_final": statistics.median(reach),
            "gap_after_10": statistics.fmean(at(t, 10) - f for t, f in zip(traj, final, strict=True)),
            "gap_after_20": statistics.fmean(at(t, 20) - f for t, f in zip(traj, final, strict=True)),
            "final_minus_fire_mean": statistics.fmean(diff),
            "lower_by_0.1": sum(d < -0.1 for d in diff),
            "higher_by_0.1": sum(d > 0.1 for d in diff),
        }
        rows.append(row)
        print(
            f"| {name} | {row['evaluations']} | {row['seconds']} | {row['median_steps_to_fire_final']} | "
            f"{row['gap_after_10']:.2f} / {row['gap_after_20']:.2f} | {row['final_minus_fire_mean']:+.3f} | "
            f"{row['lower_by_0.1']} / {row['higher_by_0.1']} |"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps({"settings": vars(args), "crystals": len(structures), "rows": rows}, indent=2)
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
