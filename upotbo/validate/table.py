"""Step 6: the validation table (the paper's Table S1 for our run) as CSV and Markdown, with the MAE of
the potential against DFT over the rows that have both."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from upotbo.validate.committee import column

# (key, header with unit, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("name", "crystal", "s"),
    ("formula", "formula", "s"),
    ("natoms", "atoms", "d"),
    ("spacegroup", "space group", "s"),
    ("prototype", "prototype", "s"),
    ("ec_found", "E_c UPot as found (eV/atom)", ".3f"),
    ("ec_relaxed", "E_c UPot relaxed (eV/atom)", ".3f"),
    ("relaxation_energy", "relaxation energy (eV/atom)", ".3f"),
    ("ec_dft", "E_c DFT single point (eV/atom)", ".3f"),
    ("ec_dft_relaxed", "E_c DFT relaxed (eV/atom)", ".3f"),
    ("formation_energy", "formation energy (eV/atom)", ".3f"),
    ("e_above_hull", "E_above_hull (eV/atom)", ".3f"),
    ("min_frequency", "lowest phonon frequency (THz)", ".2f"),
    ("verdict", "verdicts", "s"),
    ("merged", "same crystal as", "s"),
    ("notes", "notes", "s"),
)

# (UPot column, DFT column, label) for the mean absolute errors
PAIRS = (
    ("ec_relaxed", "ec_dft", "E_c UPot relaxed vs DFT single point"),
    ("ec_relaxed", "ec_dft_relaxed", "E_c UPot relaxed vs DFT relaxed"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, fmt) if fmt != "s" else str(value)


def mae(
    rows: list[dict[str, Any]], pairs: tuple[tuple[str, str, str], ...] = PAIRS
) -> dict[str, tuple[float, int]]:
    """label -> (MAE in eV/atom, number of rows) for each (column, column, label) pair that some row
    has both values of."""
    out = {}
    for upot, dft, label in pairs:
        diffs = [abs(r[upot] - r[dft]) for r in rows if r.get(upot) is not None and r.get(dft) is not None]
        if diffs:
            out[label] = (sum(diffs) / len(diffs), len(diffs))
    return out


def columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """``COLUMNS``, with the run's objective as found before E_c when the run optimised another
    property (its header, e.g. "H_V as found (GPa)", comes with the rows), and each committee
    member's E_c, their spread and the ranks after the main potential's E_c."""
    shown = list(COLUMNS)
    header = next((r["objective_header"] for r in rows if "objective_header" in r), None)
    if header is not None:
        shown.insert(_at(shown, "ec_found"), ("objective_found", header, ".3f"))
    members = _members(rows)
    if members:
        shown[_at(shown, "ec_relaxed") + 1 : _at(shown, "ec_relaxed") + 1] = [
            *((column(m), f"E_c {m} relaxed (eV/atom)", ".3f") for m in members),
            ("committee_spread", "committee spread (eV/atom)", ".3f"),
            ("committee_ranks", "rank per potential", "s"),
        ]
    return tuple(shown)


def pairs(rows: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """``PAIRS`` and each committee member against the DFT single point."""
    members = _members(rows)
    return PAIRS + tuple((column(m), "ec_dft", f"E_c {m} relaxed vs DFT single point") for m in members)


def _members(rows: list[dict[str, Any]]) -> list[str]:
    return next((r["committee"] for r in rows if "committee" in r), [])


def _at(shown: list[tuple[str, str, str]], key: str) -> int:
    return [k for k, _, _ in shown].index(key)


def markdown(rows: list[dict[str, Any]], summary: Sequence[str] = ()) -> str:
    shown = columns(rows)
    lines = [
        "| " + " | ".join(h for _, h, _ in shown) + " |",
        "| " + " | ".join("---" for _ in shown) + " |",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), f) for k, _, f in shown) + " |")
    for label, (value, n) in mae(rows, pairs(rows)).items():
        lines.append(f"\nMAE {label}: {value:.3f} eV/atom over {n} crystal(s)")
    lines += [f"\n{line}" for line in summary]
    return "\n".join(lines)


def write_tables(rows: list[dict[str, Any]], out_dir: Path, summary: Sequence[str] = ()) -> None:
    """``validation.csv`` and ``validation.md`` in ``out_dir``."""
    shown = columns(rows)
    with open(out_dir / "validation.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([h for _, h, _ in shown])
        for r in rows:
            writer.writerow([_cell(r.get(k), f if f in ("s", "d") else ".4f") for k, _, f in shown])
    (out_dir / "validation.md").write_text(markdown(rows, summary) + "\n")
