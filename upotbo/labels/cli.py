"""``upotbo label RUN_DIR``: GPAW PBE labels for a run's best, most disputed and most diverse crystals.

``register(sub)`` adds the subcommand; user errors raise ``InputError`` (one line, exit status 2).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from upotbo.cli_args import finite_float, int_in


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="GPAW PBE energies, forces and stresses for a run's best, disputed and diverse crystals",
    )
    p.add_argument("run_dir", help="--out folder of a search")
    p.add_argument("--potential", default="chgnet", help="the run's potential (default chgnet)")
    add_label_arguments(p)
    p.add_argument("--out", default=None, help="label folder (default RUN_DIR/labels)")
    p.set_defaults(func=run)


def add_label_arguments(p: argparse.ArgumentParser) -> None:
    """How many crystals, which potentials pick them, GPAW's settings (shared with ``refine``)."""
    p.add_argument("--k", type=int_in(1, None, "--k"), default=20, help="crystals to label (default 20)")
    p.add_argument(
        "--top", type=int_in(0, None, "--top"), default=10, help="of them, the best compositions (default 10)"
    )
    p.add_argument(
        "--committee",
        default=None,
        help="potentials whose disagreement picks crystals (default: sevenn when installed; none)",
    )
    for flag, default, unit, what in (
        ("--ecut", 500.0, "eV", "GPAW plane-wave cutoff, eV"),
        ("--kdensity", 4.0, "points per Å^-1", "GPAW k-point density, points per Å^-1"),
    ):
        fix = f"the default is {default:g} {unit}"
        p.add_argument(flag, type=finite_float(flag, "positive", fix), default=default, help=what)


def run(args: argparse.Namespace) -> int:
    from upotbo.dft import require_gpaw
    from upotbo.labels.runner import FOLDER, label_run
    from upotbo.potentials import load_potential
    from upotbo.storage import RunDirectory

    require_gpaw()
    RunDirectory.open(args.run_dir)
    potential = load_potential(args.potential)
    committee = committee_from(args.committee, potential)
    out = Path(args.out) if args.out else Path(args.run_dir) / FOLDER
    labels = label_run(
        args.run_dir,
        [potential, *committee],
        k=args.k,
        top=args.top,
        labeller=labeller_from(args),
        out=out,
        log=lambda m: print(m, flush=True),
    )
    print(table(labels))
    print(f"{len(labels)} label(s) in {out / 'labels.db'} (ASE database; GPAW logs in {out / 'gpaw'})")
    return 0


def labeller_from(args: argparse.Namespace):  # noqa: ANN201 - GPAWLabeller, imported late
    from upotbo.dft import DFTSettings
    from upotbo.labels.runner import GPAWLabeller

    return GPAWLabeller(DFTSettings(ecut=args.ecut, kdensity=args.kdensity))


def committee_from(specs: str | None, potential):  # noqa: ANN001, ANN201
    """``--committee``: the potentials named, or SevenNet-0 when installed and nothing was named."""
    from upotbo.potentials import load_committee

    if specs is None:
        try:
            import sevenn  # noqa: F401
        except ImportError:
            print("note: SevenNet is not installed, so no committee picks: pip install 'upotbo[sevenn]'")
            return []
        specs = "sevenn"
    return [] if specs.strip().lower() == "none" else load_committee(specs, potential)


def table(labels: list) -> str:
    """Markdown: each label's GPAW E_c next to every potential's single point on the same cell, and
    the mean absolute error of each potential against GPAW."""
    names = list(dict.fromkeys(n for label in labels for n in label.pick.upot))
    lines = [
        "| label | reason | formula | atoms | E_c GPAW (eV/atom) | "
        + " | ".join(f"E_c {n} (eV/atom)" for n in names)
        + " | GPAW time (s) |",
        "| --- | --- | --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for label in labels:
        pick = label.pick
        dft = f"{label.ec:.3f}" if label.ok else f"failed: {label.error}"
        upot = " | ".join(_fmt(pick.upot.get(n, math.nan)) for n in names)
        lines.append(
            f"| {pick.name} | {pick.reason} | {pick.structure.composition.reduced_formula} | "
            f"{len(pick.structure)} | {dft} | {upot} | {label.seconds:.0f} |"
        )
    ok = [label for label in labels if label.ok]
    for n in names:
        errors = [abs(x.pick.upot[n] - x.ec) for x in ok if math.isfinite(x.pick.upot.get(n, math.nan))]
        if errors:
            mae = sum(errors) / len(errors)
            lines.append(f"\nMAE {n} vs GPAW: {mae:.3f} eV/atom over {len(errors)} label(s)")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else ""
