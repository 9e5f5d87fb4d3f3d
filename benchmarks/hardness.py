"""Hardness search: does ``--property hardness --constraint "e_above_hull<=0.05"`` find superhard crystals?

Runs the search through the CLI over a light-element pool, then prints its top 10 next to the
potential's own hardness of the known superhard and hard crystals, relaxed the same way (so the
search is judged against what the potential can say), and their experimental Vickers hardness.

    python benchmarks/hardness.py --steps 300 --timeout 1200

Experimental Vickers hardness (GPa): diamond 96 +- 5 and c-BN 66 (Brazhkin et al., Philos. Mag. A 82,
231 (2002)); B4C 30 and SiC 28 (Teter, MRS Bull. 23, 22 (1998)); Si 12 (ibid.); TiC 30 and TiN 23
(Chen et al., Intermetallics 19, 1275 (2011), Table 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pymatgen.core import Lattice, Structure

RESULTS = Path(__file__).parent / "results" / "hardness.json"
POOL = "B,C,N,O,Si,Ti,Al,Mg"


def _binary(group: int, a: float, first: str, second: str, shift: float) -> Structure:
    return Structure.from_spacegroup(group, Lattice.cubic(a), [first, second], [[0, 0, 0], [shift] * 3])


KNOWN = {  # name -> (structure, experimental Vickers hardness in GPa)
    "diamond": (Structure.from_spacegroup(227, Lattice.cubic(3.567), ["C"], [[0, 0, 0]]), 96.0),
    "c-BN": (_binary(216, 3.615, "B", "N", 0.25), 66.0),
    "3C-SiC": (_binary(216, 4.36, "Si", "C", 0.25), 28.0),
    "TiC": (_binary(225, 4.33, "Ti", "C", 0.5), 30.0),
    "TiN": (_binary(225, 4.24, "Ti", "N", 0.5), 23.0),
    "Si": (Structure.from_spacegroup(227, Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]), 12.0),
}


SOFT = {  # superhard phase -> its soft polymorph, to measure how far above the hull the hard one sits
    "diamond": Structure.from_spacegroup(194, Lattice.hexagonal(2.46, 6.70), ["C", "C"],
                                         [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]]),  # graphite
    "c-BN": Structure.from_spacegroup(194, Lattice.hexagonal(2.50, 6.66), ["B", "N"],
                                      [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.25]]),  # h-BN
}


def metastability() -> dict[str, float]:
    """eV/atom of diamond above graphite and of c-BN above h-BN under the potential (both relaxed fully):
    an ``e_above_hull`` bound below these excludes the superhard phase once the soft one is known."""
    from upotbo.potentials import load_potential, relax_batch

    potential = load_potential("chgnet")
    names = list(SOFT)
    relaxed = relax_batch(potential, [KNOWN[n][0] for n in names] + [SOFT[n] for n in names],
                          steps=300, fmax=0.01)
    per_atom = [r.energy / len(r.structure) for r in relaxed]
    return {n: per_atom[i] - per_atom[i + len(names)] for i, n in enumerate(names)}


def relaxed_values(prop: str, names: list[str]) -> tuple[list[Structure], list[float | str]]:
    """The ``KNOWN`` crystals ``names``, relaxed fully (fmax 0.01 eV/Å) under CHGNet, and ``prop`` of each."""
    from upotbo.potentials import load_potential, relax_batch
    from upotbo.properties import get_property

    potential = load_potential("chgnet")
    relaxed = relax_batch(potential, [KNOWN[n][0] for n in names], steps=300, fmax=0.01)
    structures, energies = [r.structure for r in relaxed], [r.energy for r in relaxed]
    return structures, get_property(prop).values(structures, energies, potential)


def known_hardness() -> dict[str, dict]:
    names = list(KNOWN)
    _, values = relaxed_values("hardness", names)
    return {n: {"chgnet": v, "experiment": KNOWN[n][1]} for n, v in zip(names, values, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=POOL)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/hardness")
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--metastability", action="store_true",
                        help="only print how far diamond and c-BN lie above graphite and h-BN")
    args = parser.parse_args()
    above = metastability()
    print("| superhard phase | above its soft polymorph under CHGNet (eV/atom) |\n| --- | ---: |")
    for name, gap in above.items():
        print(f"| {name} | {gap:.3f} |")
    if args.metastability:
        return
    load_before = os.getloadavg()[0]
    known = known_hardness()
    command = [sys.executable, "-m", "upotbo.cli", "search", "--pool", args.pool, "--nchem", "3",
               "--property", "hardness", "--constraint", "e_above_hull<=0.05", "--steps", str(args.steps),
               "--n-init", str(min(100, args.steps // 3)), "--batch-size", "16", "--seed", str(args.seed),
               "--timeout", str(args.timeout), "--out", args.out, "--no-progress", "--top", "10"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    print("| crystal | H_V under CHGNet (GPa) | experiment (GPa) |\n| --- | ---: | ---: |")
    for name, v in known.items():
        shown = v["chgnet"] if isinstance(v["chgnet"], str) else f"{v['chgnet']:.1f}"
        print(f"| {name} | {shown} | {v['experiment']:.0f} |")
    top = (Path(args.out) / "top.csv").read_text()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "command": " ".join(command[2:]), "seconds": round(seconds, 1), "search_output": proc.stdout,
        "top_csv": top, "known": known, "above_soft_polymorph": above,
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }, indent=1))
    print(f"{seconds:.0f} s; written {args.json}")


if __name__ == "__main__":
    main()
