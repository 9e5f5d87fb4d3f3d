"""Time the landscape maps and project the paper-size one.

1. the 400-crystal Zr4C4 map (paper Fig. 2a), 2. a ZrmCn map (m, n = 1..5, --per-point crystals
each; the paper uses 100), 3. the paper42 binary pool map's throughput on a random sample of its
slots (so every composition class is represented), projected to all 903 x 25 x 30 = 677,250 crystals
on one machine and on N machines (each streaming 1/N of the slots; UMAP of the whole map runs once).
Every map is the real job: space + builder + CHGNet + run database + UMAP + figure.

    python benchmarks/landscape_maps.py [--per-point 100] [--pool-sample 300] [--workers 8]

Prints a table and writes benchmarks/results/landscape_maps.json. The machine is shared: the load
average before and after each stage is recorded with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import torch

from upotbo.landscape import LandscapeJob, formula_map, pool_map, stoichiometry_map, write_map
from upotbo.landscape.job import format_seconds
from upotbo.potentials import load_potential

RESULTS = Path(__file__).parent / "results" / "landscape_maps.json"
PAPER_MAP = 903 * 25 * 30


def full_map(name: str, spec, potential, root: Path) -> dict:
    """Stream, store, UMAP and draw one map; the wall time of each stage."""
    load0 = os.getloadavg()[0]
    job = LandscapeJob(spec, potential, root / name, batch_size=100)
    t0 = time.perf_counter()
    result = job.run()
    stream = time.perf_counter() - t0
    t1 = time.perf_counter()
    summary, _, _ = write_map(spec, job.record, root / name, seed=0)
    outputs = time.perf_counter() - t1
    return {
        "crystals": spec.total,
        "scored": result.scored,
        "failed": result.failed,
        "stream_seconds": round(stream, 1),
        "umap_seconds": round(summary.umap_seconds, 1),
        "outputs_seconds_incl_umap": round(outputs, 1),
        "wall_seconds": round(stream + outputs, 1),
        "crystals_per_second_stream": round(spec.total / stream, 2),
        "crystals_per_second_end_to_end": round(spec.total / (stream + outputs), 2),
        "lowest": summary.best_label,
        "load_average_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def pool_rate(potential, root: Path, sample: int, seed: int = 0) -> dict:
    """Throughput of the paper42 map's own slots, a random sample spread over all compositions."""
    spec = pool_map("paper42", ncomp=2, nchem=5, per_point=30)
    job = LandscapeJob(spec, potential, root / "pool", batch_size=100)
    slots = np.sort(np.random.default_rng(seed).choice(spec.total, size=sample, replace=False))
    job.step(slots[:10].tolist())  # warm caches
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    scored = failed = 0
    for start in range(10, sample, 100):
        ok, bad = job.step(slots[start : start + 100].tolist())
        scored, failed = scored + ok, failed + bad
    seconds = time.perf_counter() - t0
    db = root / "pool" / "study.db"
    return {
        "sampled_slots": int(sample - 10),
        "scored": scored,
        "failed": failed,
        "seconds": round(seconds, 1),
        "crystals_per_second": round((sample - 10) / seconds, 2),
        "database_bytes_per_crystal": round(db.stat().st_size / sample),
        "load_average_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-point", type=int, default=100, help="crystals per ZrmCn stoichiometry")
    parser.add_argument("--pool-sample", type=int, default=310, help="paper42 slots timed")
    parser.add_argument("--workers", type=int, default=8, help="N for the N-machine projection")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    potential = load_potential("chgnet")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        zr4c4 = full_map("zr4c4", formula_map("Zr4C4", 400), potential, root)
        zrmcn = full_map("zrmcn", stoichiometry_map("Zr,C", 5, args.per_point), potential, root)
        pool = pool_rate(potential, root, args.pool_sample)
    # UMAP cost per point from the larger map (umap-learn is ~n log n: linear extrapolation is a floor)
    umap_per_point = zrmcn["umap_seconds"] / zrmcn["crystals"]
    stream_1 = PAPER_MAP / pool["crystals_per_second"]
    umap_all = umap_per_point * PAPER_MAP
    projection = {
        "crystals": PAPER_MAP,
        "stream_seconds_1_machine": round(stream_1),
        "umap_seconds_estimate": round(umap_all),
        "wall_seconds_1_machine": round(stream_1 + umap_all),
        "workers": args.workers,
        f"wall_seconds_{args.workers}_machines": round(stream_1 / args.workers + umap_all),
        "database_gb": round(pool["database_bytes_per_crystal"] * PAPER_MAP / 1e9, 2),
    }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "zr4c4_400": zr4c4,
        f"zrmcn_25x{args.per_point}": zrmcn,
        "paper42_pool_sample": pool,
        "paper42_677250_projection": projection,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("| map | crystals | stream | UMAP | wall | crystals/s (stream) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in (("Zr4C4", zr4c4), (f"ZrmCn 25x{args.per_point}", zrmcn)):
        print(
            f"| {name} | {m['crystals']} | {m['stream_seconds']} s | {m['umap_seconds']} s | "
            f"{m['wall_seconds']} s | {m['crystals_per_second_stream']} |"
        )
    rate, size = pool["crystals_per_second"], pool["database_bytes_per_crystal"]
    print(f"paper42 slots: {rate} crystals/s, {size} B/crystal in the database")
    print(
        f"677,250-crystal map: {format_seconds(projection['wall_seconds_1_machine'])} on 1 machine, "
        f"{format_seconds(projection[f'wall_seconds_{args.workers}_machines'])} on {args.workers} machines "
        f"(UMAP ~{format_seconds(umap_all)} of it), database ~{projection['database_gb']} GB"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
