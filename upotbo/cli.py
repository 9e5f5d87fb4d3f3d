"""Command line: ``upotbo search | report`` (more subcommands register themselves the same way).

User errors print one line, ``upotbo: error: ...``, and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence

from upotbo.cli_args import (
    add_potential_flags,
    add_run_flags,
    constraint_type,
    finite_float,
    int_in,
    optimizer_type,
)
from upotbo.errors import InputError, WorkerDied

Command = Callable[[argparse.Namespace], int]
# ``CHGNetPotential.worker_modules``, named here so that the search command starts the helpers' fork
# server before it imports the potentials package (tests/test_processes.py checks they agree)
DEFAULT_HELPER_MODULES = ("torch", "chgnet.model", "upotbo.potentials.chgnet")
STRUCTURE_N_INIT = 32  # a --formula search's random start: one batch (its crystals relax fully: ~1 per s)
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]) -> Callable:
    SUBCOMMANDS.append(register)
    return register


@subcommand
def _register_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search composition x stoichiometry x structure for the best crystals")
    p.add_argument("--pool", default=None,
                   help="named pool (paper42, the default; zrc) or symbols, e.g. Zr,C,N,B")
    p.add_argument("--ncomp", type=int, default=None, help="elements drawn per crystal, with replacement "
                   "(1-4, default 2)")
    p.add_argument("--nchem", type=int, default=None, help="max atoms of each drawn element in the cell "
                   "(default 5)")
    p.add_argument("--max-atoms", type=int, default=None,
                   help="max atoms per cell (default ncomp*nchem; with --formula 20)")
    p.add_argument("--formula", default=None,
                   help="search the structure of this composition alone (crystal structure prediction), "
                        "e.g. ZrB2; instead of --pool/--ncomp/--nchem")
    p.add_argument("--max-z", type=int_in(1, 1000, "--max-z"), default=None,
                   help="with --formula: formula units per cell, 1 to this (default 4, within --max-atoms)")
    p.add_argument("--seed-structures", nargs="+", default=[], metavar="CIF",
                   help="crystals (CIF/POSCAR) scored first, as trials the sampler learns from")
    p.add_argument("--element-scale", default="melting",
                   help="order the sampler sees elements in: melting (default) or pettifor")
    p.add_argument("--sampler", default=None,
                   help="tpe+moves (default; with --formula tpe): TPE, a share of each batch children of the "
                   "best crystals (an element swapped for a neighbour, common structure types); tpe; random")
    p.add_argument("--n-init", type=int_in(0, 10**6, "--n-init"), default=None,
                   help="random initial steps (default 200; with --formula 32)")
    p.add_argument("--steps", type=int_in(1, 10**7, "--steps"), default=2000, help="total steps (trials)")
    add_potential_flags(p, relax_steps=20)
    p.add_argument("--optimizer", type=optimizer_type, default="bfgs",
                   help="ASE optimizer of the in-loop relaxation: bfgs (default) or fire")
    p.add_argument(
        "--prune-margin",
        type=finite_float("--prune-margin", "non-negative", "eV/atom above the best; 0 turns pruning off"),
        default=2.0,
        help="stop relaxing candidates this far (eV/atom) above the best so far; 0 = never",
    )
    add_run_flags(
        p, batch_size=32, out="runs/search", out_help="run directory (database, tables, CIFs, plots)"
    )
    p.add_argument("--join", action="store_true",
                   help="share the --storage study with other upotbo processes (cluster; created if missing)")
    p.add_argument("--workers", type=int_in(1, 1024, "--workers"), default=None,
                   help="crystal-building processes (default: none when relaxing, the potential runs in "
                        "--threads processes of its own; one per thread for single points)")
    p.add_argument("--threads", type=int_in(1, 1024, "--threads"), default=None,
                   help="torch threads, fixed (bit-reproducible runs); default: the cores other processes "
                        "leave free of its CPU set, OMP_NUM_THREADS or container quota")
    p.add_argument(
        "--heartbeat",
        type=finite_float("--heartbeat", "positive", "seconds between heartbeats, default 10"),
        default=10.0,
        help="seconds between heartbeats; a trial silent for 6 is failed and retried",
    )
    p.add_argument(
        "--target",
        type=finite_float("--target", fix="a value of the property, e.g. -7.5 eV/atom"),
        default=None,
        help="stop once a crystal reaches this value",
    )
    p.add_argument("--top", type=int_in(1, 10**4, "--top"), default=20, help="rows in the top table")
    p.add_argument("--constraint", dest="constraints", type=constraint_type, action="append", default=[],
                   metavar="NAME<=VALUE",
                   help="keep a property within a bound, e.g. 'e_above_hull<=0.05' (repeatable); "
                        "crystals outside are stored and shown apart")
    p.add_argument("--competing", nargs="+", default=[], metavar="CIF",
                   help="competing phases (CIFs) for the e_above_hull hull, relaxed with the same potential")
    p.set_defaults(func=_search)


def _search(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from upotbo.potentials import load_potential
    from upotbo.properties.thermo import use_competing
    from upotbo.report import markdown_table, top_columns, write_report
    from upotbo.search import Search, SearchConfig, StudyAccess
    from upotbo.space.seeds import load_seeds
    from upotbo.storage import RunDirectory
    from upotbo.storage.study_db import display_url

    space = _space(args)
    seeds = load_seeds(space, args.seed_structures)
    use_competing(args.competing, [*args.prop, *(c.prop for c in args.constraints)])
    potential = load_potential(args.potential)
    search = Search(
        space,
        potential,
        args.prop,
        args.out,
        SearchConfig(
            sampler=args.sampler,
            n_init=_n_init(args),
            seed=args.seed,
            relax_steps=args.relax_steps,
            fmax=args.fmax,
            optimizer=args.optimizer,
            prune_margin=args.prune_margin or None,
            batch_size=args.batch_size,
            workers=args.workers,
            threads=args.threads,
        ),
        StudyAccess(
            storage=args.storage,
            resume=args.resume,
            join=args.join,
            heartbeat_seconds=args.heartbeat,
            grace_seconds=6 * args.heartbeat,
        ),
        args.constraints,
        seeds,
    )
    objective = search.objective
    bar = tqdm(
        total=args.steps,
        initial=min(search.steps, args.steps),
        unit="step",
        disable=args.no_progress,
        dynamic_ncols=True,
    )

    def show(progress) -> None:
        bar.n = progress.steps
        if progress.best_value is not None:
            bar.set_postfix_str(
                f"best {objective.label} {progress.best_value:.3f} {objective.unit} {progress.best_formula}, "
                f"failed {progress.failed}"
            )
        bar.refresh()

    try:
        result = search.run(args.steps, target=args.target, callbacks=(show,), timeout=args.timeout)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"interrupted after {search.steps} steps, each stored; the batches in flight were dropped "
            f"(continue with --resume)",
            file=sys.stderr,
        )
        write_report(args.out, top=args.top)
        return 130
    bar.close()
    rows = write_report(args.out, top=args.top)
    print(
        f"{result.steps} steps ({result.scored} scored, {result.failed} failed), {result.elapsed:.0f} s this "
        f"session, potential: {potential.name}, relaxation: {_relaxation(args)}"
    )
    pareto = len(search.objectives) > 1
    if pareto and rows:
        names = ", ".join(o.header for o in search.objectives)
        print(f"Pareto front of {names}: {len(rows)} crystal(s) (the first {args.top} at most)")
    elif result.best_value is not None:
        print(
            f"best: {result.best_formula} at step {result.best_step}, "
            f"{objective.label} = {result.best_value:.3f} {objective.unit}"
        )
    if args.constraints and not rows:
        met = ", ".join(c.text for c in args.constraints)
        print(f"no crystal met the constraints yet ({met}): the best that break them are in top.md")
    run = RunDirectory.open(args.out)
    print(markdown_table(rows[:10], objective, top_columns(run)))
    study = "study.db" if args.storage is None else f"the study in {display_url(args.storage)}"
    plots = "pareto.png, convergence.png (hypervolume)" if pareto else "convergence.png"
    plots += ", polymorphs.png" if run.structure_search else ", compositions.png"
    print(f"outputs in {args.out}: top.csv, top.md, cifs/, {plots}, {study}")
    return 0


def _n_init(args: argparse.Namespace) -> int:
    """Random steps before the model: fewer for one formula, whose space has no composition axes."""
    if args.n_init is not None:
        return args.n_init
    return STRUCTURE_N_INIT if args.formula else 200


def _space(args: argparse.Namespace):
    """The composition search of --pool/--ncomp/--nchem, or the structure search of --formula."""
    from upotbo.space import FormulaSpace, SearchSpace

    if args.formula is None:
        if args.max_z is not None:
            raise InputError("--max-z counts formula units of --formula: give --formula, or drop --max-z")
        ncomp = 2 if args.ncomp is None else args.ncomp
        nchem = 5 if args.nchem is None else args.nchem
        return SearchSpace.create(args.pool or "paper42", ncomp, nchem, args.max_atoms, args.element_scale)
    given = [flag for flag, value in (("--pool", args.pool), ("--ncomp", args.ncomp), ("--nchem", args.nchem))
             if value is not None]
    if given:
        raise InputError(f"--formula fixes the composition: drop {', '.join(given)}")
    return FormulaSpace.create(args.formula, args.max_z, args.max_atoms)


@subcommand
def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rewrite the tables, CIFs and plots of a run directory")
    p.add_argument("run_dir")
    p.add_argument("--top", type=int_in(1, 10**4, "--top"), default=20)
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from upotbo.report import markdown_table, top_columns, write_report
    from upotbo.storage import RunDirectory

    rows = write_report(args.run_dir, top=args.top)
    run = RunDirectory.open(args.run_dir)
    print(markdown_table(rows, run.objective, top_columns(run)))
    return 0


@subcommand
def _register_validate(sub: argparse._SubParsersAction) -> None:
    from upotbo.validate.cli import register

    register(sub)


@subcommand
def _register_label(sub: argparse._SubParsersAction) -> None:
    from upotbo.labels.cli import register

    register(sub)


@subcommand
def _register_finetune(sub: argparse._SubParsersAction) -> None:
    from upotbo.finetune.cli import register

    register(sub)


@subcommand
def _register_refine(sub: argparse._SubParsersAction) -> None:
    from upotbo.refine.cli import register

    register(sub)


@subcommand
def _register_landscape(sub: argparse._SubParsersAction) -> None:
    from upotbo.landscape.cli import register

    register(sub)


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; users get the error line alone, and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"upotbo: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="upotbo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if list(sys.argv[1:] if argv is None else argv)[:1] == ["search"]:
        # before the parser imports the properties and potentials (0.6 s): the helpers' fork server
        # imports torch and the default potential meanwhile (a server running keeps its imports)
        from upotbo.search.processes import start_helpers

        start_helpers(DEFAULT_HELPER_MODULES)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _log_to_stderr()
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # Slurm's warning before SIGKILL: stop as on Ctrl-C
    try:
        return args.func(args)
    except InputError as exc:
        print(f"upotbo: error: {exc}", file=sys.stderr)
        return 2
    except WorkerDied as exc:
        print(f"upotbo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "upotbo: interrupted: what was stored stays stored; rerun to go on (a search: with --resume)",
            file=sys.stderr,
        )
        return 130


def _relaxation(args: argparse.Namespace) -> str:
    """How each crystal was relaxed, as the summary line says it."""
    if not args.relax_steps:
        return "none (single points)"
    return f"{args.relax_steps} {args.optimizer.upper()} steps"


def _log_to_stderr() -> None:
    """The library's notes (e.g. one-off work before a run starts) as ``upotbo: ...`` lines on stderr."""
    logger = logging.getLogger("upotbo")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("upotbo: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
