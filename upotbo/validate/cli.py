"""``upotbo validate RUN_DIR`` / ``upotbo validate --cif a.cif b.cif --out DIR``.

``register(sub)`` adds the subcommand to the main parser (``upotbo.cli``); user errors raise
``InputError``, which the main CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from upotbo.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="relax, symmetry, hull, phonons and DFT spot checks of a run's best crystals (or CIFs)",
    )
    p.add_argument("run_dir", nargs="?", help="--out folder of a finished search")
    p.add_argument("--cif", nargs="+", default=None, help="validate these CIF files instead of a run")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/validation)")
    p.add_argument("--top", type=int, default=10, help="distinct compositions to validate (best first)")
    p.add_argument(
        "--per-composition",
        type=int,
        default=1,
        help="best crystals per composition; same-crystal duplicates are merged",
    )
    p.add_argument("--potential", default="chgnet", help="potential for relaxation, hull and phonons")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation force threshold, eV/Å")
    p.add_argument("--relax-steps", type=int, default=500, help="FIRE step limit (positions and cell)")
    p.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance, Å")
    p.add_argument("--no-phonons", action="store_true", help="skip phonons")
    p.add_argument("--phonon-min-length", type=float, default=8.0, help="min supercell width, Å")
    p.add_argument(
        "--phonon-max-atoms", type=int, default=100, help="cap on supercell atoms (potential memory)"
    )
    p.add_argument("--phonon-mesh", type=int, default=12, help="q-mesh per axis for the lowest frequency")
    p.add_argument(
        "--phonon-tol", type=float, default=0.1, help="stable if the lowest frequency is above -TOL THz"
    )
    p.add_argument("--dft", action="store_true", help="GPAW PBE single points (needs upotbo[dft])")
    p.add_argument("--dft-relax", action="store_true", help="also relax with GPAW (slow)")
    p.add_argument("--ecut", type=float, default=500.0, help="GPAW plane-wave cutoff, eV")
    p.add_argument("--kdensity", type=float, default=4.0, help="GPAW k-point density, points per Å^-1")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if (args.run_dir is None) == (args.cif is None):
        raise InputError("give either a run directory or --cif FILE [FILE ...] (one of the two)")
    if args.cif is not None and args.out is None:
        raise InputError("--cif needs --out DIR for the validation outputs")
    positive = {
        "--fmax": args.fmax,
        "--symprec": args.symprec,
        "--phonon-min-length": args.phonon_min_length,
        "--ecut": args.ecut,
        "--kdensity": args.kdensity,
        "--top": args.top,
        "--per-composition": args.per_composition,
        "--phonon-mesh": args.phonon_mesh,
        "--phonon-max-atoms": args.phonon_max_atoms,
    }
    for flag, value in positive.items():
        if not value > 0:
            raise InputError(f"{flag} {value} must be positive")
    if args.relax_steps < 0 or args.phonon_tol < 0:
        raise InputError("--relax-steps and --phonon-tol must be >= 0")


def run(args: argparse.Namespace) -> int:
    """Validate, print the table, return 0 (``InputError`` propagates: the main CLI prints it, exit 2)."""
    from upotbo.dft import DFTSettings, require_gpaw
    from upotbo.potentials import load_potential
    from upotbo.storage import prepare_out_dir
    from upotbo.validate.inputs import from_cifs, from_run
    from upotbo.validate.runner import ValidationSettings, validate
    from upotbo.validate.table import markdown

    _check(args)
    dft = None
    if args.dft or args.dft_relax:
        require_gpaw()
        dft = DFTSettings(ecut=args.ecut, kdensity=args.kdensity, relax=args.dft_relax)
    if args.cif is not None:
        crystals, entries, out = from_cifs(args.cif), [], Path(args.out)
    else:
        crystals, entries, run_potential = from_run(args.run_dir, args.top, args.per_composition)
        out = Path(args.out) if args.out else Path(args.run_dir) / "validation"
    prepare_out_dir(out)
    potential = load_potential(args.potential)
    if entries and run_potential != potential.name:
        print(
            f"note: the run was scored with {run_potential}, not {potential.name}: its crystals stay out "
            f"of the hull (energies on two scales must not mix)"
        )
        entries = []
    for c in crystals:
        potential.check_elements([el.symbol for el in c.structure.composition.elements])
    settings = ValidationSettings(
        fmax=args.fmax,
        relax_steps=args.relax_steps,
        symprec=args.symprec,
        phonons=not args.no_phonons,
        phonon_min_length=args.phonon_min_length,
        phonon_max_atoms=args.phonon_max_atoms,
        phonon_mesh=args.phonon_mesh,
        phonon_tolerance=args.phonon_tol,
        dft=dft,
    )
    start = time.perf_counter()
    rows = validate(crystals, potential, out, settings, entries, log=lambda m: print(m, flush=True))
    print(markdown(rows))
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in settings.timings.items())
    print(
        f"{len(rows)} crystal(s) validated in {time.perf_counter() - start:.0f} s "
        f"(mean per crystal: {timing}); outputs in {out}: validation.csv, validation.md, relaxed/, "
        f"phonons/, hull/, state.json"
    )
    return 0
