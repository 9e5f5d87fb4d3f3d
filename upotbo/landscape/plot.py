"""Landscape figures (paper Fig. 2): a smooth E_c surface over the 2-D map with the crystals on it.

The surface is a kernel-smoothed average of E_c on a grid (histogram of sums / histogram of counts,
both Gaussian-filtered), drawn only where crystals are: O(n), so the same code draws 400 or 677,250
points, and it never invents a surface between far-apart clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

GRID = 160  # surface resolution per axis
E_LABEL = "E_c (eV/atom)"


def smooth_surface(xy: np.ndarray, values: np.ndarray, grid: int = GRID, sigma: float | None = None):
    """(X, Y, Z) of the kernel-smoothed mean of ``values``; Z is masked far from any crystal.

    The kernel width (grid cells) shrinks with the number of crystals, about half the typical spacing
    of the points, so 60 points give a surface rather than 60 islands and 10^5 points keep detail.
    """
    if sigma is None:
        sigma = float(np.clip(0.6 * grid / np.sqrt(len(values)), 1.5, 10.0))
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = 0.05 * (hi - lo) + 1e-9
    edges = [np.linspace(lo[i] - pad[i], hi[i] + pad[i], grid + 1) for i in range(2)]
    counts, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=edges)
    sums, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=edges, weights=values)
    c, s = gaussian_filter(counts, sigma), gaussian_filter(sums, sigma)
    z = np.ma.masked_where(c < 0.02 * c.max(), s / np.maximum(c, 1e-12))
    centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
    x, y = np.meshgrid(*centres, indexing="ij")
    return x, y, z


def _limits(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [1, 99])
    return float(lo), float(max(hi, lo + 1e-3))


def _surface(ax, xy: np.ndarray, values: np.ndarray, vmin: float, vmax: float, alpha: float = 0.9):
    x, y, z = smooth_surface(xy, values)
    levels = np.linspace(vmin, vmax, 24)
    return ax.contourf(x, y, np.clip(z, vmin, vmax), levels=levels, cmap="viridis", alpha=alpha)


def _point_size(n: int) -> float:
    return float(np.clip(600.0 / np.sqrt(max(n, 1)), 0.3, 14.0))


def _mark_best(ax, xy: np.ndarray, values: np.ndarray, label: str) -> None:
    i = int(np.argmin(values))
    ax.scatter(*xy[i], marker="*", s=260, color="red", edgecolor="white", linewidth=0.8, zorder=5)
    right = xy[i, 0] > 0.5 * (xy[:, 0].min() + xy[:, 0].max())  # keep the label inside the axes
    ax.annotate(
        label,
        xy[i],
        xytext=(-10 if right else 10, 10),
        textcoords="offset points",
        ha="right" if right else "left",
        fontsize=8,
        color="black",
        zorder=6,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "red", "alpha": 0.85},
    )


def plot_landscape(
    xy: np.ndarray,
    values: np.ndarray,
    path: Path,
    best_label: str,
    title: str,
    groups: Sequence[str] | None = None,
    value_label: str = E_LABEL,
) -> None:
    """E_c surface + crystals + lowest crystal; with ``groups`` a second panel shows which
    composition/stoichiometry each crystal has (labels at the groups' medians)."""
    values = np.asarray(values, dtype=float)
    panels = 2 if groups is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 4.6), dpi=110, squeeze=False)
    ax = axes[0, 0]
    vmin, vmax = _limits(values)
    surf = _surface(ax, xy, values, vmin, vmax)
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        c=np.clip(values, vmin, vmax),
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
        s=_point_size(len(values)),
        edgecolor="k",
        linewidth=0.2 if len(values) < 3000 else 0,
    )
    _mark_best(ax, xy, values, best_label)
    fig.colorbar(surf, ax=ax, label=value_label, format="%.1f")
    ax.set_title(title, fontsize=10)
    if groups is not None:
        _groups_panel(axes[0, 1], xy, values, list(groups))
    for a in axes[0]:
        a.set_xlabel("UMAP 1")
        a.set_ylabel("UMAP 2")
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _groups_panel(ax, xy: np.ndarray, values: np.ndarray, groups: list[str]) -> None:
    names = sorted(set(groups), key=groups.index)
    code = {g: i for i, g in enumerate(names)}
    idx = np.array([code[g] for g in groups])
    cmap = plt.get_cmap("tab20" if len(names) <= 20 else "nipy_spectral", len(names))
    ax.scatter(xy[:, 0], xy[:, 1], c=idx, cmap=cmap, s=_point_size(len(groups)), linewidth=0)
    best = {g: float(values[idx == code[g]].min()) for g in names}
    shown = sorted(names, key=best.get)[: min(len(names), 25)]  # label the 25 strongest groups
    for g in shown:
        centre = np.median(xy[idx == code[g]], axis=0)
        ax.annotate(
            g,
            centre,
            fontsize=6,
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": cmap(code[g]), "alpha": 0.8},
        )
    ax.set_title(
        f"{len(names)} compositions/stoichiometries (labels: the {len(shown)} lowest in E_c)", fontsize=9
    )


def plot_run_overlay(
    xy_map: np.ndarray,
    values_map: np.ndarray,
    xy_run: np.ndarray,
    steps: np.ndarray,
    values_run: np.ndarray,
    path: Path,
    best_label: str,
    title: str,
) -> None:
    """The space's landscape (surface) with the search's crystals on it, coloured by step."""
    fig, ax = plt.subplots(figsize=(6.6, 4.8), dpi=110)
    vmin, vmax = _limits(np.concatenate([values_map, values_run]))
    surf = _surface(
        ax, np.vstack([xy_map, xy_run]), np.concatenate([values_map, values_run]), vmin, vmax, 0.55
    )
    ax.scatter(
        xy_map[:, 0],
        xy_map[:, 1],
        s=_point_size(len(xy_map)),
        color="0.55",
        linewidth=0,
        label=f"random crystals of the space ({len(xy_map)})",
    )
    order = np.argsort(steps)
    pts = ax.scatter(
        xy_run[order, 0],
        xy_run[order, 1],
        c=steps[order],
        cmap="plasma",
        s=16,
        edgecolor="k",
        linewidth=0.3,
        label=f"search ({len(xy_run)} scored crystals)",
    )
    _mark_best(ax, xy_run, values_run, best_label)
    fig.colorbar(surf, ax=ax, label=E_LABEL, pad=0.01, format="%.1f")
    fig.colorbar(pts, ax=ax, label="search step", pad=0.02)
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_parity(upot: np.ndarray, dft: np.ndarray, path: Path, title: str) -> None:
    """UPot vs DFT E_c with y = x; the title carries the MAEs."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    lo, hi = float(min(upot.min(), dft.min())) - 0.2, float(max(upot.max(), dft.max())) + 0.2
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
    ax.scatter(dft, upot, s=18, color="C0", edgecolor="k", linewidth=0.3)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("DFT (GPAW PBE) E_c (eV/atom)")
    ax.set_ylabel("UPot E_c (eV/atom)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
