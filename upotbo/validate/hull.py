"""Step 3's figure: a binary system's convex hull with the validated crystals marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pymatgen.analysis.phase_diagram import PhaseDiagram  # noqa: E402
from pymatgen.core import Composition, Element  # noqa: E402

from upotbo.thermo.hull import hull_energies  # noqa: E402


def plot_binary_hull(pd: PhaseDiagram, highlight: dict[str, tuple[Composition, float]], path: Path) -> None:
    """Formation energy vs composition: every entry, the hull, and the validated crystals labelled."""
    a, b = (el.symbol for el in pd.elements)

    def x_of(c: Composition) -> float:
        return c.get_atomic_fraction(Element(b))

    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=120)
    points = [(x_of(e.composition), pd.get_form_energy_per_atom(e)) for e in pd.all_entries]
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, color="0.7", label="run + references")
    stable = sorted((x_of(e.composition), pd.get_form_energy_per_atom(e)) for e in pd.stable_entries)
    ax.plot([p[0] for p in stable], [p[1] for p in stable], "-o", color="C3", ms=4, label="convex hull")
    for name, (composition, energy) in highlight.items():
        form, _ = hull_energies(pd, composition, energy)
        ax.scatter([x_of(composition)], [form], marker="*", s=90, color="C0", zorder=3)
        ax.annotate(name, (x_of(composition), form), fontsize=7, xytext=(4, -10), textcoords="offset points")
    low = min(p[1] for p in stable)
    ax.set_ylim(low - 0.2, max(0.5, abs(low) * 0.3))
    ax.set_xlabel(f"x in {a}(1-x){b}x")
    ax.set_ylabel("formation energy (eV/atom)")
    ax.set_title(f"{a}-{b} convex hull (potential energies)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
