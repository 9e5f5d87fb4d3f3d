"""``upotbo validate RUN_DIR`` / ``upotbo validate --cif a.cif b.cif --out DIR``.

``register(sub)`` adds the subcommand to the main ``upotbo`` parser; user errors raise
``InputError``, which the main CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from upotbo.cli_args import add_potential_flags, finite_float, int_in
from upotbo.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="relax, symmetry, hull, phonons and DFT spot checks of a run's best crystals (or CIFs)",
    )
    p.add_argument("run_dir", nargs="?", help="--out folder of a finished search")
    p.add_argument("--cif", nargs="+", default=None, help="validate these CIF files instead of a run")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/validation)")
    _count(p, "--top", 10, "distinct compositions to validate (best first)")
    _count(p, "--per-composition", 1, "best crystals per composition; same-crystal duplicates are merged")
    add_potential_flags(p, relax_steps=500, max_relax_steps=None)
    p.add_argument(
        "--committee",
        default=None,
        metavar="POTENTIAL[,POTENTIAL]",
        help="more potentials that relax every crystal again, e.g. sevenn,sevenn:7net-l3i5: the table "
        "shows each one's E_c, their spread and which ranks depend on the potential",
    )
    _positive(p, "--symprec", 0.1, "Å", "spglib tolerance, Å")
    p.add_argument("--no-phonons", action="store_true", help="skip phonons")
    _positive(p, "--phonon-min-length", 8.0, "Å", "min supercell width, Å")
    _count(p, "--phonon-max-atoms", 100, "cap on supercell atoms (potential memory)")
    _count(p, "--phonon-mesh", 12, "q-mesh per axis for the lowest frequency")
    p.add_argument(
        "--phonon-tol",
        type=finite_float("--phonon-tol", "non-negative", "the default is 0.1 THz"),
        default=0.1,
        help="stable if the lowest frequency is above -TOL THz",
    )
    p.add_argument("--dft", action="store_true", help="GPAW PBE single points (needs upotbo[dft])")
    p.add_argument("--dft-relax", action="store_true", help="also relax with GPAW (slow)")
    _positive(p, "--ecut", 500.0, "eV", "GPAW plane-wave cutoff, eV")
    _positive(p, "--kdensity", 4.0, "points per Å^-1", "GPAW k-point density, points per Å^-1")
    p.set_defaults(func=run)


def _count(p: argparse.ArgumentParser, flag: str, default: int, what: str) -> None:
    p.add_argument(flag, type=int_in(1, None, flag), default=default, help=what)


def _positive(p: argparse.ArgumentParser, flag: str, default: float, unit: str, what: str) -> None:
    fix = f"the default is {default:g} {unit}"
    p.add_argument(flag, type=finite_float(flag, "positive", fix), default=default, help=what)


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot say per flag: which inputs go together."""
    if (args.run_dir is None) == (args.cif is None):
        raise InputError("give either a run directory or --cif FILE [FILE ...] (one of the two)")
    if args.cif is not None and args.out is None:
        raise InputError("--cif needs --out DIR for the validation outputs")


def run(args: argparse.Namespace) -> int:
    """Validate, print the table, return 0 (``InputError`` propagates: the main CLI prints it, exit 2)."""
    from upotbo.dft import DFTSettings, require_gpaw
    from upotbo.potentials import load_committee, load_potential
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
    potential = load_potential(args.potential)
    committee = load_committee(args.committee, potential) if args.committee is not None else []
    prepare_out_dir(out)
    if entries and run_potential != potential.name:
        print(
            f"note: the run was scored with {run_potential}, not {potential.name}: its crystals stay out "
            f"of the hull (energies on two scales must not mix)"
        )
        entries = []
    for c in crystals:
        for p in (potential, *committee):
            p.check_elements([el.symbol for el in c.structure.composition.elements])
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
    rows = validate(
        crystals, potential, out, settings, entries, log=lambda m: print(m, flush=True), committee=committee
    )
    print(markdown(rows, settings.summary))
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in settings.timings.items())
    print(
        f"{len(rows)} crystal(s) validated in {time.perf_counter() - start:.0f} s "
        f"(mean per crystal: {timing}); outputs in {out}: validation.csv, validation.md, relaxed/, "
        f"phonons/, hull/, state.json"
    )
    return 0
