"""Convergence (best value vs step, initial random phase shaded; paper Fig. 1b) and the elements each
step tried (paper Fig. 1c)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pymatgen.core.periodic_table import Element  # noqa: E402

from upotbo.storage.run_record import Objective, Record  # noqa: E402


def plot_convergence(records: list[Record], n_init: int, path: Path, objective: Objective) -> None:
    """Every scored crystal's value by step, the best so far (feasible crystals only: infeasible ones
    of a constrained run are drawn apart, as crosses)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    feasible = [r for r in records if r.feasible]
    infeasible = [r for r in records if not r.feasible]
    if infeasible:
        ax.scatter([r.number for r in infeasible], [r.value for r in infeasible], s=6, marker="x", lw=0.6,
                   color="C1", alpha=0.5, label="infeasible (constraints)")
    if feasible:
        steps = [r.number for r in feasible]
        values = [r.value for r in feasible]
        best, running = [], values[0]
        for v in values:
            running = v if objective.better(v, running) else running
            best.append(running)
        ax.scatter(steps, values, s=4, color="0.7", label="scored crystals")
        ax.step(steps, best, where="post", color="C3", lw=2, label="best so far")
        # Zoom onto the best end: at most 8 units of the property from the best value (E_c in eV/atom:
        # the failed-geometry outliers tens of eV/atom above would flatten the curve).
        top = best[-1]
        worst = max(values) if objective.sign > 0 else min(values)
        reach = objective.sign * min(objective.sign * (worst - top), 8.0)
        ax.set_ylim(sorted((top - objective.sign * 0.3, top + reach + objective.sign * 0.3)))
    ax.axvspan(0, n_init, color="C0", alpha=0.12, label=f"initial random ({n_init} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel(f"{objective.label} ({objective.unit})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_compositions(rows: list[tuple[int, tuple[str, ...], bool]], pool: list[str], path: Path) -> None:
    order = sorted(pool, key=lambda s: Element(s).Z)
    y_of = {s: i for i, s in enumerate(order)}
    fig, ax = plt.subplots(figsize=(6.4, max(3.0, 0.12 * len(order) + 1.0)), dpi=120)
    for scored, color, name in ((True, "C0", "scored"), (False, "0.75", "failed build/score")):
        xs, ys = [], []
        for step, elements, ok in rows:
            if ok is scored:
                for e in elements:
                    if e in y_of:
                        xs.append(step)
                        ys.append(y_of[e])
        ax.scatter(xs, ys, s=3, color=color, label=name)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order, fontsize=6 if len(order) > 20 else 8)
    ax.set_xlabel("step")
    ax.set_ylabel("element tried")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
