"""The DFT-checked ranking: a run's best compositions relaxed under every potential, beside their DFT
labels, with the winner and its margin under each.

The cells are the ones labelling uses (spglib's standard primitive cell of each stored crystal), so a
composition's label is a single point on exactly the cell every potential starts its relaxation from.
Each potential relaxes to validation's ``fmax`` (0.05 eV/Å, 500 steps): a ranking of unrelaxed cells
would rank the starting geometry, not the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from upotbo.labels import Label
from upotbo.labels.select import standard_cell
from upotbo.potentials import Potential
from upotbo.report import ranked
from upotbo.storage import RunDirectory, completed_records
from upotbo.validate.committee import agreement, column, rank, winner
from upotbo.validate.relax import relax_crystals

FMAX, STEPS = 0.05, 500  # eV/Å and the step cap, as validation relaxes


@dataclass(frozen=True)
class Contender:
    """One of the run's best compositions: its trial, formula and the cell every potential relaxes."""

    trial: int
    formula: str
    structure: Structure


def contenders(run_dir: str | Path, n: int) -> list[Contender]:
    """The run's ``n`` best compositions (one crystal each, as its top table)."""
    run = RunDirectory.open(run_dir)
    best = ranked(completed_records(run.study()), run.objectives, n, run.structure_search)
    return [Contender(r.number, r.formula, standard_cell(r.structure)) for r in best[:n]]


def relaxed_values(potential: Potential, crystals: Sequence[Contender]) -> list[float]:
    """E_c (eV/atom) of each crystal relaxed under ``potential``; NaN where the relaxation failed."""
    return [r.value for r in relax_crystals(potential, [c.structure for c in crystals], FMAX, STEPS)]


def order(crystals: Sequence[Contender], values: Sequence[float]) -> list[str]:
    """The formulas from the most to the least bound (a failed relaxation last)."""
    pairs = zip(values, (c.formula for c in crystals), strict=True)
    return [formula for _, formula in sorted(pairs, key=lambda p: math.inf if math.isnan(p[0]) else p[0])]


def save_values(path: Path, values: dict[str, list[float]], crystals: Sequence[Contender]) -> None:
    """Store relaxed E_c per potential (the step is done: a rerun reads it instead of relaxing again)."""
    trials = [c.trial for c in crystals]
    path.write_text(json.dumps({"trials": trials, "values": values}, indent=1) + "\n")


def load_values(path: Path, crystals: Sequence[Contender]) -> dict[str, list[float]] | None:
    """The stored values if ``path`` holds them for these crystals, else None."""
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored["values"] if stored.get("trials") == [c.trial for c in crystals] else None


def report(
    crystals: Sequence[Contender],
    values: dict[str, list[float]],
    labels: Sequence[Label],
    reference: str = "GPAW",
) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, summary lines): each crystal's E_c under every potential and, where labelled, under the
    ``reference`` (the labels' source), the spread and ranks; the winner and margin under each; each
    potential's Spearman ρ against the reference."""
    dft = {x.pick.trial: x.ec for x in labels if x.ok}
    names = list(values)
    rows = []
    for i, c in enumerate(crystals):
        row: dict[str, Any] = {"name": f"trial {c.trial}", "formula": c.formula, "atoms": len(c.structure)}
        row |= {column(n): float(values[n][i]) for n in names}
        row[column(reference)] = float(dft.get(c.trial, math.nan))
        rows.append(row)
    lines = rank(rows, names)
    best = winner(rows, column(reference), f"{reference} (single point on the labelled cell)")
    lines += [best] if best else []
    lines += agreement(rows, {n: column(n) for n in names}, column(reference))
    return rows, lines


def markdown(rows: list[dict[str, Any]], names: Sequence[str], reference: str = "GPAW") -> str:
    """The ranking table: E_c (eV/atom) per potential and the reference, the spread and the ranks."""
    head = " | ".join(f"E_c {n} (eV/atom)" for n in [*names, reference])
    lines = [
        f"| # | formula | atoms | {head} | spread (eV/atom) | rank per potential |",
        "| ---: | --- | ---: | " + " | ".join("---:" for _ in [*names, reference]) + " | ---: | --- |",
    ]
    for k, r in enumerate(rows, start=1):
        cells = " | ".join(_fmt(r[column(n)]) for n in [*names, reference])
        spread = _fmt(r.get("committee_spread", math.nan))
        lines.append(
            f"| {k} | {r['formula']} | {r['atoms']} | {cells} | {spread} | {r.get('committee_ranks', '')} |"
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "–"

