"""``upotbo landscape``: UMAP maps of the E_c landscape over s, (c, s), (a, c, s), or of a search run.

``register`` adds it to the main ``upotbo`` parser (the flags it shares with ``search`` come from
``upotbo.cli_args``); user errors raise ``InputError`` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from upotbo.cli_args import add_potential_flags, add_run_flags, int_in
from upotbo.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``landscape`` subparser (same conventions as ``upotbo search``)."""
    p = sub.add_parser("landscape", help="UMAP map of the E_c landscape (formula, element pair, pool or run)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--formula", help="fixed cell content, e.g. Zr4C4 (paper Fig. 2a)")
    what.add_argument("--elements", help="stoichiometry x structure of these elements, e.g. Zr,C (ZrmCn)")
    what.add_argument("--pool", help="every composition x stoichiometry of a pool (paper42, zrc, Zr,C,N)")
    what.add_argument("--run", help="a search run directory: place its crystals on the map of its space")
    p.add_argument(
        "--n",
        type=int_in(1, 10**7, "--n"),
        default=400,
        help="crystals for --formula, background crystals for --run",
    )
    p.add_argument("--nchem", type=int, default=5, help="max atoms of each element (--elements/--pool)")
    p.add_argument("--ncomp", type=int, default=2, help="elements per composition (--pool)")
    p.add_argument(
        "--per-point",
        type=int_in(1, 10**6, "--per-point"),
        default=None,
        help="crystals per stoichiometry (default 100 for --elements, 30 for --pool)",
    )
    add_potential_flags(p, relax_steps=0)
    add_run_flags(
        p, batch_size=100, out=None, out_help="map directory (default runs/landscape-<what>; RUN/landscape)"
    )
    p.add_argument(
        "--estimate-only",
        action="store_true",
        help="score the first small batch, print the wall-time estimate and stop (resumable)",
    )
    p.add_argument(
        "--cif-limit",
        type=int_in(0, 10**7, "--cif-limit"),
        default=2000,
        help="write CIFs for at most this many points (the lowest in E_c)",
    )
    p.add_argument(
        "--dft",
        type=int_in(0, 10**4, "--dft"),
        default=0,
        help="GPAW single points on a seeded subsample of this many crystals (needs upotbo[dft])",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="stream only slots K, K+N, ... into OUT/shard-K-of-N (one of N machines)",
    )
    p.add_argument(
        "--join-shards",
        type=int_in(1, 10**5, "--join-shards"),
        default=None,
        metavar="N",
        help="draw the map from the N complete shards in OUT (no streaming)",
    )
    p.set_defaults(func=landscape)


def _spec(args: argparse.Namespace):
    from upotbo.landscape.sampling import formula_map, pool_map, space_map, stoichiometry_map
    from upotbo.space import SearchSpace
    from upotbo.storage import RunDirectory

    if args.formula:
        return formula_map(args.formula, args.n, args.seed), None
    if args.elements:
        return stoichiometry_map(args.elements, args.nchem, args.per_point or 100, args.seed), None
    if args.pool:
        return pool_map(args.pool, args.ncomp, args.nchem, args.per_point or 30, args.seed), None
    run = RunDirectory.open(args.run)
    if run.structure_search:
        formula = run.settings["formula"]
        raise InputError(
            f"{args.run} is a structure search of {formula} (--formula), whose crystals share one "
            f"composition: map them with upotbo landscape --formula <cell formula, e.g. {formula}>"
        )
    run_study, settings = run.study(), run.settings
    shape = (settings[k] for k in ("pool", "ncomp", "nchem", "max_atoms"))
    space = SearchSpace.create(*shape, scale=settings.get("scale", "melting"))
    return space_map(space, args.n, args.seed), (run_study, settings)


def _default_out(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if args.run:
        return Path(args.run) / "landscape"
    tag = args.formula or (args.elements or args.pool or "map").replace(",", "")
    return Path("runs") / f"landscape-{tag}"


def landscape(args: argparse.Namespace) -> int:
    """Stream the map's crystals into the database (resumable), then UMAP and draw it."""
    from tqdm import tqdm

    from upotbo.landscape.embed import MIN_POINTS
    from upotbo.landscape.job import LandscapeJob, format_seconds
    from upotbo.landscape.maps import dft_overlay, place_run, write_map
    from upotbo.potentials import load_potential

    names = ",".join(p.name for p in args.prop)
    if names != "cohesive_energy":  # the maps, their CSVs and the DFT overlay are of E_c
        raise InputError(
            f"landscape maps colour crystals by cohesive energy (the paper's Fig. 2), not {names}: "
            "drop --property"
        )
    spec, run = _spec(args)
    if spec.total < MIN_POINTS:
        raise InputError(
            f"{spec.total} crystals is too few for a UMAP map: use at least {MIN_POINTS} (--n or --per-point)"
        )
    out = _default_out(args)
    if args.join_shards:
        return _join_shards(spec, out, args.join_shards, args.seed, args.relax_steps > 0, args.cif_limit)
    shard = _parse_shard(args.shard) if args.shard else (0, 1)
    if args.dft:
        from upotbo.dft import require_gpaw

        require_gpaw()  # before hours of streaming, not after
    potential = load_potential(args.potential)
    if run is not None and run[1].get("potential") != potential.name:
        raise InputError(
            f"the run was scored with {run[1].get('potential')}, not {potential.name}: "
            f"pass the same --potential"
        )
    job = LandscapeJob(
        spec,
        potential,
        out / f"shard-{shard[0]}-of-{shard[1]}" if args.shard else out,
        relax_steps=args.relax_steps,
        fmax=args.fmax,
        batch_size=args.batch_size,
        storage=args.storage,
        resume=args.resume,
        shard=shard,
        prop=args.prop[0],
    )
    part = f", shard {shard[0]}/{shard[1]}: {job.total} of them" if args.shard else ""
    mode = f"relaxed {args.relax_steps} steps" if args.relax_steps else "single point"
    print(
        f"map: {spec.total} crystals ({spec.npoints} point(s) x {spec.per_point}){part}, "
        f"{job.done} already stored, potential {potential.name}, {mode}"
    )
    bar = None

    def announce(e) -> None:
        nonlocal bar
        size = ""
        if e.bytes_per_crystal:
            grow = e.bytes_per_crystal * job.total
            scale = next((u for u in ((1e9, "GB"), (1e6, "MB")) if grow > u[0]), (1e3, "kB"))
            size = f", database ~{grow / scale[0]:.1f} {scale[1]}"
        print(
            f"estimate: {e.remaining} crystals left at {e.crystals_per_second:.1f} crystals/s (timed batch "
            f"of {e.probe}) -> {format_seconds(e.seconds)} wall time on this machine, plus UMAP "
            f"~{format_seconds(e.umap_seconds)}{size}",
            flush=True,
        )
        if not args.estimate_only:
            bar = tqdm(
                total=job.total,
                initial=job.done,
                unit="crystal",
                disable=args.no_progress,
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def show(progress) -> None:
        if bar is not None:
            bar.n = progress.done
            bar.set_postfix_str(f"scored {progress.scored}, failed {progress.failed}")
            bar.refresh()

    try:
        result = job.run(
            on_estimate=announce, callbacks=(show,), timeout=args.timeout, estimate_only=args.estimate_only
        )
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("interrupted: every finished batch is stored; continue with --resume", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    if result.done < result.total:
        print(
            f"stopped at {result.done}/{result.total} crystals ({result.crystals_per_second:.1f} crystals/s "
            f"this session, {result.elapsed:.0f} s): continue with --resume"
        )
        return 0
    print(
        f"{result.total} crystals stored ({result.scored} scored, {result.failed} failed this session, "
        f"{result.elapsed:.0f} s, {result.crystals_per_second:.1f} crystals/s)"
    )
    if args.shard:
        print(
            f"shard {shard[0]}/{shard[1]} complete in {job.out_dir}; once all {shard[1]} are in {out}, draw "
            f"the map with the same options and --join-shards {shard[1]}"
        )
        return 0
    summary, points, xy = write_map(
        spec, job.record, out, seed=args.seed, relaxed=args.relax_steps > 0, cif_limit=args.cif_limit
    )
    _print_map(summary, out)
    if run is not None:
        png = place_run(points, run[0], potential, out, seed=args.seed)
        print(f"search run on its landscape: {png} (and run_points.csv)")
    if args.dft:
        comp = dft_overlay(points, xy, args.dft, args.seed, out)
        print(
            f"DFT vs UPot on {comp.n} crystals: MAE {comp.mae:.3f} eV/atom (low-E half {comp.mae_low:.3f}, "
            f"high-E half {comp.mae_high:.3f} eV/atom); {comp.parity_png}, landscape_dft.png, dft.csv"
        )
    return 0


def _print_map(summary, out: Path, db: str = "study.db") -> None:
    print(f"UMAP of {summary.points} crystals: {summary.umap_seconds:.1f} s; lowest: {summary.best_label}")
    print(f"outputs in {out}: landscape.png, landscape.csv, cifs/, {db}")


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(
            f"--shard {text!r} must look like K/N, e.g. 0/8 for the first of 8 machines"
        ) from None
    if not 0 <= k < n:
        raise InputError(f"--shard {text}: use K/N with 0 <= K < N")
    return k, n


def _join_shards(spec, out: Path, n: int, seed: int, relaxed: bool, cif_limit: int) -> int:
    """One UMAP over the N shards' points (each shard must be complete)."""
    from optuna.trial import TrialState

    from upotbo.landscape.maps import MapPoints, write_map
    from upotbo.storage import load_existing, local_url

    studies = []
    for k in range(n):
        folder = out / f"shard-{k}-of-{n}"
        if not (folder / "study.db").exists():
            raise InputError(f"shard {k}/{n} missing: no {folder}/study.db (run it with --shard {k}/{n})")
        study = load_existing(local_url(folder))
        stored = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))
        expected = len(range(k, spec.total, n))
        if study.user_attrs["settings"]["landscape"]["per_point"] != spec.per_point or stored != expected:
            raise InputError(
                f"shard {k}/{n} in {folder} holds {stored} of {expected} crystals of this map: "
                f"finish it with --shard {k}/{n} --resume"
            )
        studies.append(study)
    summary, _, _ = write_map(
        spec, MapPoints.from_studies(studies), out, seed=seed, relaxed=relaxed, cif_limit=cif_limit
    )
    _print_map(summary, out, db=f"shard-*-of-{n}/study.db")
    return 0
