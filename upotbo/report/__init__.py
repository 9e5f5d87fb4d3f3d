"""Files a scientist opens with their own tools: top table (CSV/Markdown), CIFs, plots."""

from __future__ import annotations

from pathlib import Path

from upotbo.report.plots import plot_compositions, plot_convergence
from upotbo.report.tables import TopRow, best_per_composition, constrained_names, markdown_table, write_top
from upotbo.storage import RunDirectory, completed_records, step_elements


def write_report(run_dir: str | Path, top: int = 20) -> list[TopRow]:
    """(Re)write every report file of a run directory from its database."""
    run = RunDirectory.open(run_dir)
    study = run.study()
    records = completed_records(study)
    rows = write_top(records, run.path, run.objective, n=top, constraints=run.settings.get("constraints", []))
    plot_convergence(records, run.settings.get("n_init", 0), run.path / "convergence.png", run.objective)
    plot_compositions(step_elements(study), run.settings["pool"], run.path / "compositions.png")
    return rows


__all__ = [
    "TopRow", "best_per_composition", "constrained_names", "markdown_table", "write_report", "write_top"
]
