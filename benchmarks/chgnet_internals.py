"""CHGNet's own graphs and forces vs upotbo's (``upotbo.potentials.chgnet_internals``), side by side.

Crystals: those a random paper42 search of ``--steps`` single points scored, each strained and rattled
as the search does before relaxing (``break_symmetry``), so forces and stresses are far from zero.
Graphs: CHGNet's ``CrystalGraphConverter`` vs ``crystal_graph`` on the same crystals, alternating,
``--passes`` times each (crystals per second, and whether every index array is equal). Forces and
stress: ``predict_graph(task="efs")`` vs the one backward pass on the same graphs in batches of
``--batch`` (a potential process's half of the search's 32), one torch thread, alternating; crystals
per second, their ratio, and the largest differences in energy, force and stress.

    python benchmarks/chgnet_internals.py --steps 256 --passes 3
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
from upotbo.potentials.chgnet_internals import crystal_graph, predict_forces
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


def timed(paths: dict, items: list, batch: int, passes: int) -> tuple[dict[str, list[float]], dict]:
    """Each path over ``items`` in batches, alternating, ``passes`` times after a warm-up batch: (rates
    per path, each path's last output)."""
    for predict in paths.values():
        predict(items[:batch])
    rates: dict[str, list[float]] = {name: [] for name in paths}
    results = {}
    for _ in range(passes):
        for name, predict in paths.items():
            r, results[name] = rate(predict, items, batch)
            rates[name].append(r)
    return rates, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--json", default="benchmarks/results/chgnet_internals.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        structures = crystals(args.steps, args.seed, Path(tmp) / "run")
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    model = load_potential("chgnet").model
    converter = model.graph_converter
    builders = {
        "CHGNet CrystalGraphConverter": lambda batch: [converter(s) for s in batch],
        "crystal_graph (numpy)": lambda batch: [crystal_graph(converter, s) for s in batch],
    }
    graph_rates, built = timed(builders, structures, len(structures), args.passes)
    graphs = built["CHGNet CrystalGraphConverter"]
    fields = ("atom_graph", "neighbor_image", "directed2undirected", "undirected2directed", "bond_graph")
    same = all(
        all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
        for a, b in zip(graphs, built["crystal_graph (numpy)"], strict=True)
    )
    paths = {
        "CHGNet predict_graph": lambda g: model.predict_graph(g, task="efs", batch_size=len(g)),
        "one backward pass": lambda g: predict_forces(model, g, stress=True),
    }
    rates, results = timed(paths, graphs, args.batch, args.passes)
    theirs, ours = results.values()
    pairs = list(zip(ours, theirs, strict=True))
    diff = {k: float(max(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max() for a, b in pairs)) for k in "efs"}
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["one backward pass"] / median["CHGNet predict_graph"]
    print(f"{len(graphs)} crystals ({np.mean([len(s) for s in structures]):.1f} atoms on average), ", end="")
    print(f"batches of {args.batch}, one torch thread, {args.passes} passes each")
    graph_median = {name: statistics.median(r) for name, r in graph_rates.items()}
    graph_ratio = graph_median["crystal_graph (numpy)"] / graph_median["CHGNet CrystalGraphConverter"]
    print("| path | crystals/s (median) | passes |")
    print("| --- | ---: | --- |")
    for table in (graph_rates, rates):
        for name, r in table.items():
            print(f"| {name} | {statistics.median(r):.1f} | {', '.join(f'{x:.1f}' for x in r)} |")
    print(f"graphs: ratio {graph_ratio:.2f}, every index array equal: {same}")
    print(f"forces: ratio {ratio:.2f}; largest difference: energy {diff['e']:.1e} eV/atom, force "
          f"{diff['f']:.1e} eV/Å, stress {diff['s']:.1e} GPa; load {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "crystals": len(graphs), "batch": args.batch,
        "graphs": {"rates": graph_rates, "median": graph_median, "ratio": graph_ratio, "identical": same},
        "forces": {"rates": rates, "median": median, "ratio": ratio, "max_difference": diff},
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }, indent=1))


if __name__ == "__main__":
    main()
