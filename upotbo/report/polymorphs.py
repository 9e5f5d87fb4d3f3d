"""A structure search's answer: its distinct crystals (polymorphs), not one row per composition.

Crystals are ranked by the run's objective and merged with pymatgen's ``StructureMatcher`` (any cell,
origin or setting; ``upotbo.crystal.prototypes.first_distinct``), each named by its prototype and
placed by its energy above the lowest crystal found (meV/atom, from the potential's total energy, so
the view reads the same whatever the objective). ``polymorphs.png`` draws the lowest polymorphs'
energies against the step that found them: when the search met each basin and how it went deeper.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from upotbo.crystal.prototypes import first_distinct, prototype_name  # noqa: E402
from upotbo.storage.run_record import Objective, Record  # noqa: E402

PLOTTED = 6  # polymorphs drawn in polymorphs.png
COLUMNS = (("prototype", "prototype"), ("e_above_best", "E - E_best (meV/atom)"))


@dataclass(frozen=True)
class Polymorph:
    """One distinct crystal: its best record and every record found to be the same crystal."""

    best: Record
    members: tuple[Record, ...]

    @property
    def energy(self) -> float:
        """The potential's energy per atom of the best record, eV/atom."""
        return self.best.energy / self.best.natoms


def polymorphs(records: list[Record], objective: Objective, n: int) -> list[Polymorph]:
    """The ``n`` best distinct feasible crystals, best first by the objective."""
    ranked = sorted((r for r in records if r.feasible), key=lambda r: (objective.sign * r.value, r.number))
    groups = first_distinct(ranked, lambda r: r.structure, n)
    return [Polymorph(group[0], tuple(group)) for group in groups]


def polymorph_rows(found: list[Polymorph]) -> list[Record]:
    """Each polymorph's best record carrying its prototype name and its energy above the lowest
    polymorph (meV/atom) as the top table's extra columns."""
    if not found:
        return []
    lowest = min(p.energy for p in found)
    return [
        dataclasses.replace(
            p.best,
            properties={
                **p.best.properties,
                "prototype": prototype_name(p.best.structure) or "-",
                "e_above_best": 1000.0 * (p.energy - lowest),
            },
        )
        for p in found
    ]


def plot_polymorphs(found: list[Polymorph], path: Path) -> None:
    """Lowest energy found so far for each of the first ``PLOTTED`` polymorphs, meV/atom above the
    lowest of all, by step: a line starts at the step that first met the crystal."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if found:
        lowest = min(p.energy for p in found)
        last = max(r.number for p in found for r in p.members)
        for k, p in enumerate(found[:PLOTTED]):
            steps, best, running = [], [], float("inf")
            for r in sorted(p.members, key=lambda r: r.number):
                running = min(running, 1000.0 * (r.energy / r.natoms - lowest))
                steps.append(r.number)
                best.append(running)
            name = prototype_name(p.best.structure) or p.best.spacegroup
            label = f"{p.best.cell_formula} {name} ({p.best.spacegroup_number})"
            ax.step([*steps, last], [*best, best[-1]], where="post", color=f"C{k}", lw=1.6, label=label)
            ax.scatter(steps[:1], best[:1], color=f"C{k}", s=14)
    ax.set_xlabel("step")
    ax.set_ylabel("E - E_lowest found (meV/atom)")
    ax.set_title("lowest polymorphs by step (dot: first met)", fontsize=9)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
