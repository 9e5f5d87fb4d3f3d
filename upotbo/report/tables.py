"""Top-N table (best crystal per distinct composition) as CSV and Markdown, plus a CIF for each."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pymatgen.io.cif import CifWriter

from upotbo.cells import SYMPREC
from upotbo.storage.run_record import Objective, Record

COLUMNS = (
    "rank",
    "formula",
    "cell_formula",
    "natoms",
    "spacegroup",
    "spacegroup_number",
    "value",
    "step",
    "cif",
)


@dataclass(frozen=True)
class TopRow:
    rank: int
    record: Record
    cif: str


def best_per_composition(records: list[Record], n: int, objective: Objective) -> list[Record]:
    """Best value per reduced formula (the first found among equals), the ``n`` best of those."""
    best: dict[str, Record] = {}
    for r in records:
        if r.formula not in best or objective.better(r.value, best[r.formula].value):
            best[r.formula] = r
    return sorted(best.values(), key=lambda r: objective.sign * r.value)[:n]


def write_top(records: list[Record], out_dir: Path, objective: Objective, n: int = 20) -> list[TopRow]:
    """Write ``top.csv``, ``top.md`` and ``cifs/NN_<cell formula>.cif``; return the rows."""
    cif_dir = out_dir / "cifs"
    cif_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rank, record in enumerate(best_per_composition(records, n, objective), start=1):
        path = cif_dir / f"{rank:02d}_{record.cell_formula}.cif"
        CifWriter(record.structure, symprec=SYMPREC).write_file(path)
        rows.append(TopRow(rank, record, str(path.relative_to(out_dir))))
    value_header = f"value_{objective.unit.replace('/', '_per_')}"
    with open(out_dir / "top.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([value_header if c == "value" else c for c in COLUMNS])
        for row in rows:
            r = row.record
            writer.writerow(
                [
                    row.rank,
                    r.formula,
                    r.cell_formula,
                    r.natoms,
                    r.spacegroup,
                    r.spacegroup_number,
                    f"{r.value:.4f}",
                    r.number,
                    row.cif,
                ]
            )
    (out_dir / "top.md").write_text(markdown_table(rows, objective) + "\n")
    return rows


def markdown_table(rows: list[TopRow], objective: Objective) -> str:
    lines = [
        f"| rank | formula | cell | atoms | space group | {objective.label} ({objective.unit}) | step |",
        "| ---: | --- | --- | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        r = row.record
        lines.append(
            f"| {row.rank} | {r.formula} | {r.cell_formula} | {r.natoms} | "
            f"{r.spacegroup} ({r.spacegroup_number}) | {r.value:.3f} | {r.number} |"
        )
    return "\n".join(lines)
