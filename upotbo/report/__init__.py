"""Files a scientist opens with their own tools: top table (CSV/Markdown), CIFs, plots."""

from __future__ import annotations

import json
from pathlib import Path

from upotbo.report.plots import plot_compositions, plot_convergence
from upotbo.report.tables import TopRow, best_per_composition, markdown_table, write_top
from upotbo.storage import completed_records, load_existing, resolve_run, step_elements


def write_report(run_dir: str | Path, top: int = 20) -> list[TopRow]:
    """(Re)write every report file of a run directory from its database."""
    run_dir = Path(run_dir)
    study = load_existing(resolve_run(run_dir))
    settings = json.loads((run_dir / "settings.json").read_text())
    records = completed_records(study)
    unit = settings.get("unit", "eV/atom")
    rows = write_top(records, run_dir, n=top, unit=unit)
    plot_convergence(records, settings.get("n_init", 0), run_dir / "convergence.png", f"E_c ({unit})")
    plot_compositions(step_elements(study), settings["pool"], run_dir / "compositions.png")
    return rows


__all__ = ["TopRow", "best_per_composition", "markdown_table", "write_report", "write_top"]
