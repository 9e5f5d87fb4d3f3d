"""Top-N table (best crystal per distinct composition; a Pareto search: its front) as CSV and Markdown,
plus a CIF for each."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pymatgen.io.cif import CifWriter

from upotbo.cells import SYMPREC
from upotbo.report.pareto import pareto_front
from upotbo.report.polymorphs import COLUMNS as POLYMORPH_COLUMNS
from upotbo.report.polymorphs import polymorph_rows, polymorphs
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


def ranked(
    records: list[Record], objectives: list[Objective], n: int, distinct: bool = False
) -> list[Record]:
    """The feasible crystals a run answers with: the best per composition, a Pareto search's front,
    or (``distinct``: a structure search of one formula) its best distinct structures."""
    if len(objectives) > 1:
        return pareto_front(records, objectives, n)
    if distinct:
        return polymorph_rows(polymorphs(records, objectives[0], n))
    return best_per_composition([r for r in records if r.feasible], n, objectives[0])


def write_top(
    records: list[Record],
    out_dir: Path,
    objectives: list[Objective],
    n: int = 20,
    constraints: Sequence[str] = (),
    distinct: bool = False,
) -> list[TopRow]:
    """Write ``top.csv``, ``top.md`` and ``cifs/NN_<cell formula>.cif`` for the ``ranked`` crystals;
    return the rows. A Pareto search gets a column per further objective; a constrained run
    (``constraints``: their texts, e.g. ``e_above_hull<=0.05``) a column per constrained property, and
    the best infeasible crystals apart (``infeasible.csv``, in ``top.md``); a structure search
    (``distinct``) its distinct crystals, with prototype and energy above the lowest."""
    columns = extra_columns(objectives, constraints, distinct)
    cif_dir = out_dir / "cifs"
    cif_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rank, record in enumerate(ranked(records, objectives, n, distinct), 1):
        path = cif_dir / f"{rank:02d}_{record.cell_formula}.cif"
        CifWriter(record.structure, symprec=SYMPREC).write_file(path)
        rows.append(TopRow(rank, record, str(path.relative_to(out_dir))))
    objective = objectives[0]
    _write_csv(out_dir / "top.csv", rows, objective, columns, violation=bool(constraints))
    text = markdown_table(rows, objective, columns)
    if len(objectives) > 1:
        names = ", ".join(o.header for o in objectives)
        text = f"Pareto front of {names}: no other feasible crystal is better on all of them.\n\n{text}"
    if constraints:
        apart = best_per_composition([r for r in records if not r.feasible], n, objective)
        apart_rows = [TopRow(rank, record, "") for rank, record in enumerate(apart, 1)]
        _write_csv(out_dir / "infeasible.csv", apart_rows, objective, columns, violation=True)
        text = (
            f"Constraints: {', '.join(constraints)}.\n\n{text}\n\nBest crystals that break a constraint "
            f"(stored, not ranked):\n\n{markdown_table(apart_rows, objective, columns)}"
        )
    (out_dir / "top.md").write_text(text + "\n")
    return rows


def constrained_names(constraints: Sequence[str]) -> list[str]:
    """The property names of constraint texts, in order, once each."""
    return list(dict.fromkeys(re.split(r"[<>]=", text, maxsplit=1)[0].strip() for text in constraints))


def extra_columns(
    objectives: list[Objective], constraints: Sequence[str], distinct: bool = False
) -> list[tuple[str, str]]:
    """(property name, header) of the columns beside the first objective: a Pareto search's further
    objectives, then each constrained property not among them; a structure search's (``distinct``)
    prototype and energy above the lowest crystal."""
    columns = {o.name: o.header for o in objectives[1:]}
    for name in constrained_names(constraints):
        if name != objectives[0].name:
            columns.setdefault(name, _header(name))
    if distinct and len(objectives) == 1:
        columns.update(POLYMORPH_COLUMNS)
    return list(columns.items())


def _write_csv(
    path: Path, rows: list[TopRow], objective: Objective, columns: list[tuple[str, str]], violation: bool
) -> None:
    value_header = f"value_{objective.unit.replace('/', '_per_')}"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        tail = [name for name, _ in columns] + (["violation"] if violation else [])
        writer.writerow([value_header if c == "value" else c for c in COLUMNS] + tail)
        for row in rows:
            r = row.record
            extra = [_shown(r.properties.get(name), 4) for name, _ in columns]
            extra += [f"{r.violation:.4g}"] if violation else []
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
                    *extra,
                ]
            )


def _shown(value: float | str | None, digits: int) -> str:
    """A constrained property's value, or why it has none."""
    if value is None:
        return ""
    return value if isinstance(value, str) else f"{value:.{digits}f}"


def _header(name: str) -> str:
    """A constrained property's column: its label and unit when it is registered here."""
    from upotbo.errors import InputError
    from upotbo.properties import get_property

    try:
        prop = get_property(name)
    except InputError:  # a user property registered only in the process that ran the search
        return name
    return f"{prop.label} ({prop.unit})"


def markdown_table(
    rows: list[TopRow], objective: Objective, columns: Sequence[tuple[str, str]] = ()
) -> str:
    """The rows as Markdown; ``columns``: (property name, header) shown beside the objective."""
    extra = "".join(f" {header} |" for _, header in columns)
    text = {n for n, _ in columns if any(isinstance(row.record.properties.get(n), str) for row in rows)}
    lines = [
        f"| rank | formula | cell | atoms | space group | {objective.header} | step |{extra}",
        "| ---: | --- | --- | ---: | --- | ---: | ---: |"
        + "".join(" --- |" if name in text else " ---: |" for name, _ in columns),
    ]
    for row in rows:
        r = row.record
        cells = "".join(f" {_shown(r.properties.get(name), 3)} |" for name, _ in columns)
        lines.append(
            f"| {row.rank} | {r.formula} | {r.cell_formula} | {r.natoms} | "
            f"{r.spacegroup} ({r.spacegroup_number}) | {r.value:.3f} | {r.number} |{cells}"
        )
    return "\n".join(lines)
