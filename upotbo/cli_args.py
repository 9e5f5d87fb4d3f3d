"""What the ``upotbo`` subcommands share: argument types and the flags they declare alike.

Kept out of the main CLI module, which imports the subcommands, so that no subcommand imports it back.
Bad values fail while parsing, before a model is loaded or a folder written, as one line that names the
value and the fix (the main parser prints it and exits with status 2).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from upotbo.properties import Property
    from upotbo.properties.constraints import Constraint

Bound = Literal["finite", "positive", "non-negative"]

_BOUNDS: dict[str, tuple[Callable[[float], bool], str]] = {
    "finite": (lambda value: True, ""),
    "positive": (lambda value: value > 0, "must be positive"),
    "non-negative": (lambda value: value >= 0, "must be >= 0"),
}


def int_in(low: int, high: int | None, name: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (``None``: no upper limit)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"{low} or more" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"{name} {value} is out of range: use {span}")
        return value

    return parse


def finite_float(name: str, bound: Bound = "finite", fix: str = "") -> Callable[[str], float]:
    """An argparse type: a number that is not NaN or infinite (NaN passes every ``<``/``>`` check
    unnoticed and fails hours later), optionally positive or non-negative; ``fix`` ends the error."""
    within, rule = _BOUNDS[bound]
    hint = f": {fix}" if fix else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}{hint}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} {text} must be a finite number{hint}")
        if not within(value):
            raise argparse.ArgumentTypeError(f"{name} {text} {rule}{hint}")
        return value

    return parse


def objectives_type(spec: str) -> tuple[Property, ...]:
    """An argparse type: ``NAME`` or ``NAME:min``/``NAME:max``, or two or three of them separated by
    commas (a Pareto search); unknown names refused."""
    from upotbo.properties import get_objectives

    return _argument(get_objectives, spec)


def constraint_type(text: str) -> Constraint:
    """An argparse type: ``NAME<=VALUE`` or ``NAME>=VALUE`` (a ``Constraint``)."""
    from upotbo.properties.constraints import parse_constraint

    return _argument(parse_constraint, text)


def optimizer_type(name: str) -> str:
    """An argparse type: one of the relaxation's ASE optimizers (``OPTIMIZERS``)."""
    from upotbo.potentials.relax import check_optimizer

    return _argument(check_optimizer, name)


def _argument(parse: Callable[[str], Any], text: str) -> Any:
    from upotbo.errors import InputError

    try:
        return parse(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_potential_flags(
    p: argparse.ArgumentParser, *, relax_steps: int, max_relax_steps: int | None = 2000
) -> None:
    """``--potential``, ``--relax-steps``, ``--fmax``: how every subcommand that scores crystals runs the
    potential (defaults differ: a search relaxes a little, a map not at all, validation to convergence)."""
    p.add_argument(
        "--potential",
        default="chgnet",
        help="chgnet (default), chgnet:0.2.0, chgnet:/path/model, sevenn (SevenNet-0), sevenn:7net-l3i5",
    )
    p.add_argument(
        "--relax-steps",
        type=int_in(0, max_relax_steps, "--relax-steps"),
        default=relax_steps,
        help=f"optimizer steps per crystal, positions and cell (default {relax_steps}; 0 = single point)",
    )
    p.add_argument(
        "--fmax",
        type=finite_float("--fmax", "positive", "a typical value is 0.05 eV/Å"),
        default=0.05,
        help="relaxation force threshold, eV/Å",
    )


def add_run_flags(p: argparse.ArgumentParser, *, batch_size: int, out: str | None, out_help: str) -> None:
    """``--property``, ``--batch-size``, ``--seed``, ``--out``, ``--storage``, ``--resume``, ``--timeout``,
    ``--no-progress``: the flags of a subcommand that streams scored crystals into a resumable study."""
    from upotbo.properties import PROPERTIES

    p.add_argument(
        "--property",
        dest="prop",
        type=objectives_type,
        default="cohesive_energy",
        metavar="NAME[,NAME]",
        help=f"property to optimise, one of: {', '.join(PROPERTIES)} (default cohesive_energy); "
        "NAME:min or NAME:max sets its direction; two or three, comma-separated, search their Pareto front",
    )
    p.add_argument(
        "--batch-size",
        type=int_in(1, 4096, "--batch-size"),
        default=batch_size,
        help=f"crystals per potential batch, stored together (default {batch_size})",
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same crystals")
    p.add_argument("--out", default=out, help=out_help)
    p.add_argument("--storage", default=None, help="SQLAlchemy URL instead of OUT/study.db")
    p.add_argument("--resume", action="store_true", help="continue the study stored in --out/--storage")
    p.add_argument(
        "--timeout",
        type=finite_float("--timeout", "non-negative", "give the seconds to run, e.g. 3600"),
        default=None,
        help="stop after this many seconds, between batches (continue later with --resume)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
