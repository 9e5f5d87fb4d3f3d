"""Formation-energy search over the paper42 binaries, its top 10 checked by ``upotbo validate``.

The search minimizes the formation energy (eV/atom, against elemental references relaxed with the
same potential); validation relaxes the top 10 fully, names their prototypes, puts them on the hull
of everything the run scored, and computes their phonons. A crystal worth reporting is on or near the
hull and dynamically stable.

    python benchmarks/formation_energy.py --steps 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "formation_energy.json"


def cli(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "upotbo.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"upotbo {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/formation")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    search = ["search", "--property", "formation_energy", "--steps", str(args.steps),
              "--seed", str(args.seed), "--out", args.out, "--no-progress", "--top", "10"]
    found, search_s = cli(*search)
    print(found)
    validate = ["validate", args.out, "--top", "10"]
    checked, validate_s = cli(*validate)
    table = (Path(args.out) / "validation" / "validation.md").read_text()
    print(table)
    print(f"search {search_s:.0f} s, validation {validate_s:.0f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "search": " ".join(search), "validate": " ".join(validate), "search_output": found,
        "validation_md": table, "search_s": round(search_s, 1), "validate_s": round(validate_s, 1),
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }, indent=1))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
