"""Validate the paper's Table 1 compounds built by hand: UPot (CHGNet) relaxation, hull, phonons, and
GPAW PBE single points when GPAW is installed; UPot vs GPAW vs the paper's DFT.

    python benchmarks/validate_table1.py [--no-dft] [--out DIR] [--potential SPEC] [--committee SPECS]

``--committee sevenn,sevenn:7net-l3i5`` adds each potential's relaxed E_c and its MAE against GPAW;
``--potential chgnet:/path/model.pth.tar`` validates a fine-tuned model (use another ``--out``).

Prints a table (eV/atom, THz) with the MAE of each pair and the wall time per validation step, and
writes OUT/summary.json next to validation.csv/.md. Resumable: finished steps are kept in OUT/state.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from pymatgen.core import Lattice, Structure

from upotbo.potentials import load_committee, load_potential
from upotbo.validate import Crystal, DFTSettings, ValidationSettings, validate
from upotbo.validate.committee import column
from upotbo.validate.table import mae

# Paper Table 1, DFT-relaxed E_c (eV/atom); None where the paper has no value.
PAPER = {
    "ZrC": -8.034,
    "TiC": -7.869,
    "ZrN": -7.592,
    "NbC": None,
    "ZrB2": -7.402,
    "C_diamond": -7.910,
    "C_graphite": None,
}


def table1() -> list[Crystal]:
    def rocksalt(a: str, b: str, lattice: float) -> Structure:
        return Structure.from_spacegroup(225, Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])

    return [
        Crystal("ZrC", rocksalt("Zr", "C", 4.70)),
        Crystal("TiC", rocksalt("Ti", "C", 4.33)),
        Crystal("ZrN", rocksalt("Zr", "N", 4.58)),
        Crystal("NbC", rocksalt("Nb", "C", 4.47)),
        Crystal(
            "ZrB2",
            Structure.from_spacegroup(
                191, Lattice.hexagonal(3.17, 3.53), ["Zr", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]
            ),
        ),
        Crystal(
            "C_diamond",
            Structure.from_spacegroup(216, Lattice.cubic(3.57), ["C", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        ),
        Crystal(
            "C_graphite",
            Structure(
                Lattice.hexagonal(2.46, 6.70),
                ["C"] * 4,
                [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
            ),
        ),
    ]


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return format(value, spec) if value is not None else "—"


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-dft", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/validate_table1")
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--committee", default=None)
    args = parser.parse_args()
    dft = None
    if not args.no_dft:
        try:
            import gpaw  # noqa: F401

            dft = DFTSettings()
        except ImportError:
            print("GPAW not installed: UPot only (pip install 'upotbo[dft]', see docs/validate.md)")
    start = time.perf_counter()
    potential = load_potential(args.potential)
    committee = load_committee(args.committee, potential) if args.committee else []
    settings = ValidationSettings(dft=dft)
    rows = validate(
        table1(), potential, args.out, settings, log=lambda m: print(m, flush=True), committee=committee
    )
    for r in rows:
        r["paper"] = PAPER.get(r["name"])
    print(
        "\n| crystal | space group | prototype | E_c UPot relaxed | E_c GPAW PBE | paper DFT | "
        "E_above_hull | formation | lowest phonon | "
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['name']} | {r.get('spacegroup', '')} | {r.get('prototype', '')} | "
            f"{_fmt(r.get('ec_relaxed'))} | {_fmt(r.get('ec_dft'))} | {_fmt(r['paper'])} | "
            f"{_fmt(r.get('e_above_hull'))} | {_fmt(r.get('formation_energy'))} | "
            f"{_fmt(r.get('min_frequency'), '.2f')} THz |"
        )
    print("(energies in eV/atom)")
    pairs = (
        ("ec_relaxed", "ec_dft", "UPot vs GPAW"),
        ("ec_relaxed", "paper", "UPot vs paper"),
        ("ec_dft", "paper", "GPAW vs paper"),
        *((column(m.name), "ec_dft", f"{m.name} vs GPAW") for m in committee),
    )
    for m in committee:
        values = ", ".join(f"{r['name']} {_fmt(r.get(column(m.name)))}" for r in rows)
        print(f"E_c {m.name} relaxed (eV/atom): {values}")
    for line in settings.summary:
        print(line)
    maes = {label: {"mae_eV_per_atom": v, "n": n} for label, (v, n) in mae(rows, pairs).items()}
    for label, m in maes.items():
        print(f"MAE {label}: {m['mae_eV_per_atom']:.3f} eV/atom over {m['n']} crystal(s)")
    total = time.perf_counter() - start
    print(
        "wall time per crystal: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in settings.timings.items())
        + f"; total this session {total:.0f} s"
    )
    result = {
        "rows": rows,
        "mae": maes,
        "seconds_per_crystal": settings.timings,
        "session_seconds": total,
        "potential": potential.name,
        "committee": [m.name for m in committee],
        "summary": settings.summary,
        "dft": None if dft is None else vars(dft),
    }
    path = Path(args.out) / "summary.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
