"""A Pareto search's answer: its front of crystals, the hypervolume per step, and ``pareto.png``.

The hypervolume is measured in a box of the run's own: each objective scaled so that 0 is the best
feasible value found and 1 the worst, the reference point at the worst. It reads as the fraction of
that box the front dominates (dimensionless), so runs with different units plot on one axis; the box
moves with what a run finds, so compare it along one run, not across runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from upotbo import optuna_adapter as adapter  # noqa: E402
from upotbo.storage.run_record import Objective, Record  # noqa: E402


def _losses(records: list[Record], objectives: list[Objective]) -> np.ndarray:
    """records x objectives, lower is better."""
    signs = np.array([o.sign for o in objectives], dtype=float)
    return np.array([r.values(objectives) for r in records], dtype=float).reshape(-1, len(objectives)) * signs


def _placed(records: list[Record], objectives: list[Objective]) -> list[Record]:
    """Feasible records with a finite value of every objective, in step order."""
    kept = [r for r in records if r.feasible and all(math.isfinite(v) for v in r.values(objectives))]
    return sorted(kept, key=lambda r: r.number)


def pareto_front(records: list[Record], objectives: list[Objective], n: int | None = None) -> list[Record]:
    """The feasible crystals no other feasible crystal beats on every objective, best first objective
    first; a repeat (same composition and space group, same values to 0.1 %: the same candidate
    relaxed again) is shown once, as first found. Different structures of one composition and space
    group (two P1 cells) both stay: each is a trade-off of its own."""
    placed = _placed(records, objectives)
    if not placed:
        return []
    on_front = adapter.non_domination_ranks(_losses(placed, objectives)) == 0
    front: list[Record] = []
    for r in (r for r, top in zip(placed, on_front, strict=True) if top):
        if not any(_repeat(r, kept, objectives) for kept in front):
            front.append(r)
    front.sort(key=lambda r: (objectives[0].loss(r.value), r.number))
    return front[:n]


def _repeat(a: Record, b: Record, objectives: list[Objective]) -> bool:
    same = (a.formula, a.spacegroup_number) == (b.formula, b.spacegroup_number)
    return same and bool(np.allclose(a.values(objectives), b.values(objectives), rtol=1e-3, atol=1e-6))


def hypervolume_history(records: list[Record], objectives: list[Objective]) -> list[tuple[int, float]]:
    """(step, hypervolume of the front found by that step) at every step the front grew, in the run's
    box (see the module's docstring)."""
    placed = _placed(records, objectives)
    if not placed:
        return []
    losses = _losses(placed, objectives)
    low, high = losses.min(axis=0), losses.max(axis=0)
    scaled = (losses - low) / np.where(high > low, high - low, 1.0)
    reference = np.ones(len(objectives))
    history: list[tuple[int, float]] = []
    front = np.empty((0, len(objectives)))
    for r, point in zip(placed, scaled, strict=True):
        if np.any(np.all(front <= point, axis=1)):  # dominated by (or equal to) a point of the front
            continue
        front = np.vstack([front[~np.all(point <= front, axis=1)], point])
        history.append((r.number, adapter.hypervolume(front, reference)))
    return history


def plot_pareto(records: list[Record], objectives: list[Objective], path: Path) -> None:
    """The first two objectives of every scored crystal, the front highlighted (a third objective,
    if any, colours the front's points); crystals that break a constraint as crosses."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    x, y = objectives[0], objectives[1]
    placed = _placed(records, objectives)
    apart = [r for r in records if not r.feasible and all(math.isfinite(v) for v in r.values(objectives))]
    if apart:
        values = np.array([r.values(objectives) for r in apart])
        ax.scatter(values[:, 0], values[:, 1], s=6, marker="x", lw=0.6, color="C1", alpha=0.5,
                   label="infeasible (constraints)")
    if placed:
        values = np.array([r.values(objectives) for r in placed])
        ax.scatter(values[:, 0], values[:, 1], s=5, color="0.7", label="scored crystals")
        front = pareto_front(records, objectives)
        best = np.array([r.values(objectives) for r in front])
        color = best[:, 2] if len(objectives) > 2 else "C3"
        shown = ax.scatter(best[:, 0], best[:, 1], s=24, c=color, cmap="viridis", edgecolor="k", lw=0.4,
                           zorder=3, label=f"Pareto front ({len(front)})")
        if len(objectives) > 2:
            fig.colorbar(shown, ax=ax, label=objectives[2].header)
        else:
            order = np.argsort(best[:, 0])
            ax.plot(best[order, 0], best[order, 1], color="C3", lw=1, zorder=2)
        for r, (vx, vy) in zip(front[:8], best[:8, :2], strict=False):
            ax.annotate(r.formula, (vx, vy), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{x.header}, {'lower' if x.sign > 0 else 'higher'} is better")
    ax.set_ylabel(f"{y.header}, {'lower' if y.sign > 0 else 'higher'} is better")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_hypervolume(history: list[tuple[int, float]], n_init: int, path: Path) -> None:
    """The convergence plot of a Pareto search: the front's hypervolume by step."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if history:
        steps, volumes = zip(*history, strict=True)
        ax.step([*steps, max(steps[-1], n_init)], [*volumes, volumes[-1]], where="post", color="C3", lw=2,
                label="front's hypervolume")
        ax.scatter(steps, volumes, s=8, color="C3")
    ax.axvspan(0, n_init, color="C0", alpha=0.12, label=f"initial random ({n_init} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("hypervolume (fraction of the run's objective box)")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
