"""Command line: ``upotbo search | report`` (more subcommands register themselves the same way).

User errors print one line, ``upotbo: error: ...``, and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from upotbo.errors import InputError

Command = Callable[[argparse.Namespace], int]
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]) -> Callable:
    SUBCOMMANDS.append(register)
    return register


def _int_in(low: int, high: int, name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} {value} is out of range: use {low} to {high}")
        return value

    return parse


@subcommand
def _register_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search composition x stoichiometry x structure for the best crystals")
    p.add_argument("--pool", default="paper42", help="named pool (paper42, zrc) or symbols, e.g. Zr,C,N,B")
    p.add_argument("--ncomp", type=int, default=2, help="elements drawn per crystal, with replacement (1-4)")
    p.add_argument("--nchem", type=int, default=5, help="max atoms of each drawn element in the cell")
    p.add_argument("--max-atoms", type=int, default=None, help="max atoms per cell (default ncomp*nchem)")
    p.add_argument("--element-scale", default="melting",
                   help="order the sampler sees elements in: melting (default) or pettifor")
    p.add_argument("--sampler", default="tpe", help="tpe (default) or random")
    p.add_argument("--n-init", type=_int_in(0, 10**6, "--n-init"), default=200, help="random initial steps")
    p.add_argument("--steps", type=_int_in(1, 10**7, "--steps"), default=2000, help="total steps (trials)")
    p.add_argument(
        "--relax-steps",
        type=_int_in(0, 2000, "--relax-steps"),
        default=40,
        help="FIRE steps per candidate, positions and cell (0 = single point)",
    )
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation force threshold, eV/Å")
    p.add_argument("--prune-margin", type=float, default=2.0,
                   help="stop relaxing candidates this far (eV/atom) above the best so far; 0 = never")
    p.add_argument(
        "--batch-size",
        type=_int_in(1, 4096, "--batch-size"),
        default=32,
        help="candidates per potential batch",
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same run")
    p.add_argument(
        "--potential", default="chgnet", help="chgnet (default), chgnet:0.2.0 or chgnet:/path/model"
    )
    p.add_argument("--out", default="runs/search", help="run directory (database, tables, CIFs, plots)")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL instead of OUT/study.db")
    p.add_argument("--resume", action="store_true", help="continue the study stored in --out/--storage")
    p.add_argument("--join", action="store_true",
                   help="share the --storage study with other upotbo processes (cluster; created if missing)")
    p.add_argument("--workers", type=_int_in(1, 1024, "--workers"), default=None,
                   help="crystal-building processes (default: the machine's cores)")
    p.add_argument("--heartbeat", type=float, default=10.0,
                   help="seconds between heartbeats; a trial silent for 6 is failed and retried")
    p.add_argument("--target", type=float, default=None, help="stop once a crystal reaches this value")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds (resume later)")
    p.add_argument("--top", type=_int_in(1, 10**4, "--top"), default=20, help="rows in the top table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_search)


def _search(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from upotbo.potentials import load_potential
    from upotbo.properties import CohesiveEnergy
    from upotbo.report import markdown_table, write_report
    from upotbo.search import Search, SearchConfig, StudyAccess
    from upotbo.search.workers import default_workers
    from upotbo.space import SearchSpace
    from upotbo.storage.study_db import display_url

    space = SearchSpace.create(args.pool, args.ncomp, args.nchem, args.max_atoms, args.element_scale)
    if args.fmax <= 0:
        raise InputError(f"--fmax {args.fmax} must be positive: a typical value is 0.05 eV/Å")
    if not args.heartbeat > 0:
        raise InputError(f"--heartbeat {args.heartbeat} must be positive seconds (default 10)")
    if args.prune_margin < 0:
        raise InputError(f"--prune-margin {args.prune_margin} must be >= 0 eV/atom (0 turns pruning off)")
    potential = load_potential(args.potential)
    search = Search(
        space,
        potential,
        CohesiveEnergy(),
        args.out,
        SearchConfig(
            sampler=args.sampler,
            n_init=args.n_init,
            seed=args.seed,
            relax_steps=args.relax_steps,
            fmax=args.fmax,
            prune_margin=args.prune_margin or None,
            batch_size=args.batch_size,
            workers=args.workers or default_workers(),
        ),
        StudyAccess(
            storage=args.storage,
            resume=args.resume,
            join=args.join,
            heartbeat_seconds=args.heartbeat,
            grace_seconds=6 * args.heartbeat,
        ),
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
        print("interrupted: every scored step is stored; continue with --resume", file=sys.stderr)
        write_report(args.out, top=args.top)
        return 130
    bar.close()
    rows = write_report(args.out, top=args.top)
    print(
        f"{result.steps} steps ({result.scored} scored, {result.failed} failed), {result.elapsed:.0f} s this "
        f"session, potential: {potential.name}, relaxation: {args.relax_steps} steps"
    )
    if result.best_value is not None:
        print(
            f"best: {result.best_formula} at step {result.best_step}, "
            f"{objective.label} = {result.best_value:.3f} {objective.unit}"
        )
    print(markdown_table(rows[:10], objective))
    study = "study.db" if args.storage is None else f"the study in {display_url(args.storage)}"
    print(f"outputs in {args.out}: top.csv, top.md, cifs/, convergence.png, compositions.png, {study}")
    return 0


@subcommand
def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rewrite the tables, CIFs and plots of a run directory")
    p.add_argument("run_dir")
    p.add_argument("--top", type=_int_in(1, 10**4, "--top"), default=20)
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from upotbo.report import markdown_table, write_report
    from upotbo.storage import RunDirectory

    rows = write_report(args.run_dir, top=args.top)
    print(markdown_table(rows, RunDirectory.open(args.run_dir).objective))
    return 0


@subcommand
def _register_validate(sub: argparse._SubParsersAction) -> None:
    from upotbo.validate.cli import register

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
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"upotbo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
