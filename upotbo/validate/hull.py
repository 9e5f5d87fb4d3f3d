"""Step 3: formation energy and energy above the convex hull, in the potential's own energies.

The hull of each chemical system is built from every crystal the run scored in it, the relaxed
crystals being validated, and the relaxed elemental references (``references.py``), all on the same
scale (for CHGNet: MP2020-compatible), so nothing mixes two energy references.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram  # noqa: E402
from pymatgen.core import Composition, Element  # noqa: E402

from upotbo.errors import CandidateFailed  # noqa: E402
from upotbo.validate.references import Reference  # noqa: E402

Entry = tuple[Composition, float, str]  # composition, energy (eV per cell), label


def phase_diagram(
    chemsys: tuple[str, ...], entries: list[Entry], references: dict[str, Reference]
) -> PhaseDiagram:
    """Hull of ``chemsys`` from the entries inside it plus one elemental reference per element."""
    missing = [el for el in chemsys if el not in references]
    if missing:
        raise CandidateFailed(f"no elemental reference for {', '.join(missing)} (all prototypes failed)")
    inside = set(chemsys)
    pd_entries = [
        PDEntry(Composition(el), references[el].energy_per_atom, f"{el} ({references[el].prototype})")
        for el in chemsys
    ]
    pd_entries += [
        PDEntry(c, e, label) for c, e, label in entries if {el.symbol for el in c.elements} <= inside
    ]
    return PhaseDiagram(pd_entries, [Element(el) for el in chemsys])


def hull_energies(pd: PhaseDiagram, composition: Composition, energy: float) -> tuple[float, float]:
    """(formation energy, energy above hull), eV/atom, of a crystal with total ``energy`` (eV/cell)."""
    entry = PDEntry(composition, energy)
    _, e_above = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
    return float(pd.get_form_energy_per_atom(entry)), float(e_above)


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
