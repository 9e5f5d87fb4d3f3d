"""Files a scientist opens with their own tools: top table (CSV/Markdown), CIFs, plots."""

from __future__ import annotations

from pathlib import Path

from upotbo.report.pareto import hypervolume_history, pareto_front, plot_hypervolume, plot_pareto
from upotbo.report.plots import plot_compositions, plot_convergence
from upotbo.report.polymorphs import plot_polymorphs, polymorphs
from upotbo.report.tables import (
    TopRow,
    best_per_composition,
    extra_columns,
    markdown_table,
    ranked,
    write_top,
)
from upotbo.storage import RunDirectory, completed_records, step_elements


def write_report(run_dir: str | Path, top: int = 20) -> list[TopRow]:
    """(Re)write every report file of a run directory from its database (a Pareto search: the front
    as the top table, ``pareto.png``, and the front's hypervolume by step as ``convergence.png``; a
    structure search of one formula: its distinct crystals, and ``polymorphs.png`` for
    ``compositions.png``)."""
    run = RunDirectory.open(run_dir)
    study = run.study()
    records = completed_records(study)
    objectives = run.objectives
    distinct = run.structure_search
    constraints = run.settings.get("constraints", [])
    rows = write_top(records, run.path, objectives, n=top, constraints=constraints, distinct=distinct)
    n_init = run.settings.get("n_init", 0)
    if len(objectives) > 1:
        plot_pareto(records, objectives, run.path / "pareto.png")
        plot_hypervolume(hypervolume_history(records, objectives), n_init, run.path / "convergence.png")
    else:
        plot_convergence(records, n_init, run.path / "convergence.png", run.objective)
    if distinct:
        plot_polymorphs(polymorphs(records, run.objective, top), run.path / "polymorphs.png")
    else:
        plot_compositions(step_elements(study), run.settings["pool"], run.path / "compositions.png")
    return rows


def top_columns(run: RunDirectory) -> list[tuple[str, str]]:
    """The columns a run's top table shows beside its first objective."""
    return extra_columns(run.objectives, run.settings.get("constraints", []), run.structure_search)


__all__ = [
    "TopRow",
    "best_per_composition",
    "extra_columns",
    "hypervolume_history",
    "markdown_table",
    "pareto_front",
    "ranked",
    "top_columns",
    "write_report",
    "write_top",
]
