"""CHGNet's forces and stress: its own ``predict_graph(task="efs")`` vs upotbo's one backward pass.

Crystals: those a random paper42 search of ``--steps`` single points scored, each strained and rattled
as the search does before relaxing (``break_symmetry``), so forces and stresses are far from zero. Both
paths run on the same CHGNet graphs in batches of ``--batch`` (a potential process's half of the
search's 32) on one torch thread, alternating, ``--passes`` times each; the script prints crystals per
second of each, their ratio, and the largest differences in energy, force and stress.

    python benchmarks/chgnet_forces.py --steps 256 --passes 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from upotbo.potentials import load_potential
from upotbo.potentials.chgnet_forces import predict_forces
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.search.evaluate import break_symmetry
from upotbo.space import SearchSpace
from upotbo.storage import RunDirectory
from upotbo.storage.run_record import completed_records


def crystals(steps: int, seed: int, work: Path) -> list:
    config = SearchConfig(sampler="random", relax_steps=0, seed=seed)
    space = SearchSpace.create("paper42", 2, 5)
    Search(space, load_potential("chgnet"), CohesiveEnergy(), work, config).run(steps)
    return [break_symmetry(r.structure) for r in completed_records(RunDirectory.open(work).study())]


def rate(predict, graphs: list, batch: int) -> tuple[float, list]:
    out: list = []
    t0 = time.perf_counter()
    for i in range(0, len(graphs), batch):
        out += predict(graphs[i : i + batch])
    return len(graphs) / (time.perf_counter() - t0), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--json", default="benchmarks/results/chgnet_forces.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        structures = crystals(args.steps, args.seed, Path(tmp) / "run")
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    model = load_potential("chgnet").model
    graphs = [model.graph_converter(s) for s in structures]
    paths = {
        "CHGNet predict_graph": lambda g: model.predict_graph(g, task="efs", batch_size=len(g)),
        "one backward pass": lambda g: predict_forces(model, g, stress=True),
    }
    for predict in paths.values():  # warm both up
        predict(graphs[: args.batch])
    rates: dict[str, list[float]] = {name: [] for name in paths}
    results = {}
    for _ in range(args.passes):
        for name, predict in paths.items():
            r, results[name] = rate(predict, graphs, args.batch)
            rates[name].append(r)
    theirs, ours = results.values()
    pairs = list(zip(ours, theirs, strict=True))
    diff = {k: float(max(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max() for a, b in pairs)) for k in "efs"}
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["one backward pass"] / median["CHGNet predict_graph"]
    print(f"{len(graphs)} crystals ({np.mean([len(s) for s in structures]):.1f} atoms on average), ", end="")
    print(f"batches of {args.batch}, one torch thread, {args.passes} passes each")
    print("| path | crystals/s (median) | passes |")
    print("| --- | ---: | --- |")
    for name, r in rates.items():
        print(f"| {name} | {median[name]:.1f} | {', '.join(f'{x:.1f}' for x in r)} |")
    print(f"ratio {ratio:.2f}; largest difference: energy {diff['e']:.1e} eV/atom, force {diff['f']:.1e} "
          f"eV/Å, stress {diff['s']:.1e} GPa; load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "crystals": len(graphs), "batch": args.batch, "rates": rates, "median": median, "ratio": ratio,
        "max_difference": diff, "load_before": load_before, "load_after": os.getloadavg()[0],
    }, indent=1))


if __name__ == "__main__":
    main()
