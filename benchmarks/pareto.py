"""Pareto search: the stiffest and the lightest crystals at once, stable against the run's hull.

    python benchmarks/pareto.py --steps 300 --timeout 900

Runs ``upotbo search --property bulk_modulus,density:min --constraint "e_above_hull<=0.1"`` through
the CLI over a light-element pool and prints its Pareto front (the top table), the front's
hypervolume by step, and the wall time, beside the potential's own bulk modulus and density of the
light, stiff crystals the front should approach (each relaxed fully with the same potential), and
their measured bulk moduli: diamond 443 GPa (McSkimin & Andreatch, J. Appl. Phys. 43, 2944 (1972)),
c-BN 369 GPa (Grimsditch et al., Phys. Rev. B 50, 5440 (1994)), 3C-SiC 225 GPa (Lambrecht et al.,
Phys. Rev. B 44, 3685 (1991)), Si 98 GPa (Hall, Phys. Rev. 161, 756 (1967)).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hardness import relaxed_values  # a sibling script (python puts this folder on sys.path)

RESULTS = Path(__file__).parent / "results" / "pareto.json"
POOL = "B,C,N,O,Si,Al,Mg,Ti"

MEASURED = {"diamond": 443.0, "c-BN": 369.0, "3C-SiC": 225.0, "Si": 98.0}  # bulk modulus, GPa


def known_crystals() -> dict[str, dict]:
    """The light, stiff references of ``hardness.py`` (the same structures), bulk modulus and density."""
    names = list(MEASURED)
    structures, moduli = relaxed_values("bulk_modulus", names)
    return {n: {"bulk_modulus": b, "density": s.density, "measured": MEASURED[n]}
            for n, b, s in zip(names, moduli, structures, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=POOL)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/pareto")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    known = known_crystals()
    command = [sys.executable, "-m", "upotbo.cli", "search", "--pool", args.pool, "--nchem", "3",
               "--property", "bulk_modulus,density:min", "--constraint", "e_above_hull<=0.1",
               "--steps", str(args.steps), "--n-init", str(min(100, args.steps // 3)), "--batch-size", "16",
               "--seed", str(args.seed), "--timeout", str(args.timeout), "--out", args.out,
               "--no-progress", "--top", "20"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    from upotbo.report.pareto import hypervolume_history
    from upotbo.storage import RunDirectory, completed_records

    run = RunDirectory.open(args.out)
    records = completed_records(run.study())
    history = hypervolume_history(records, run.objectives)
    print("hypervolume by step (fraction of the run's box):",
          ", ".join(f"{step}: {volume:.3f}" for step, volume in history))
    print("\n| crystal | B under CHGNet (GPa) | rho (g/cm^3) | B measured (GPa) |")
    print("| --- | ---: | ---: | ---: |")
    for name, v in known.items():
        b = v["bulk_modulus"] if isinstance(v["bulk_modulus"], str) else f"{v['bulk_modulus']:.0f}"
        print(f"| {name} | {b} | {v['density']:.3f} | {v['measured']:.0f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "command": " ".join(command[2:]), "seconds": round(seconds, 1), "search_output": proc.stdout,
        "top_csv": (Path(args.out) / "top.csv").read_text(), "hypervolume": history, "known": known,
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }, indent=1))
    print(f"{seconds:.0f} s; written {args.json}")


if __name__ == "__main__":
    main()
