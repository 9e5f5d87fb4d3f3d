"""Formation energy and energy above the convex hull, in the potential's own energies.

The hull of a chemical system is built from the relaxed elemental references (``references.py``) and
whatever crystals the caller knows in it (a run's scored crystals, competing phases), all on the same
scale (for CHGNet: MP2020-compatible), so nothing mixes two energy references. A phase diagram is
built per chemical system, never over the whole pool: a hull in 42 dimensions is out of reach, a
binary or ternary one costs milliseconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

from upotbo.errors import CandidateFailed
from upotbo.thermo.references import Reference

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


class RunHull:
    """The hulls a run knows so far: elemental references, competing phases and every crystal scored.

    Only the lowest energy per atom of each reduced composition is kept, and a chemical system's
    phase diagram is rebuilt only when a crystal inside it arrived since. Safe to read from the
    scoring thread while the search's thread adds crystals.
    """

    def __init__(self, references: dict[str, Reference], entries: Sequence[Entry] = ()) -> None:
        self.references = references
        self._lowest: dict[str, tuple[Composition, float, str]] = {}  # reduced formula -> eV/atom entry
        self._diagrams: dict[tuple[str, ...], PhaseDiagram] = {}
        self._lock = threading.Lock()
        self.add(entries)

    def add(self, entries: Sequence[Entry]) -> None:
        with self._lock:
            changed: set[str] = set()
            for composition, energy, label in entries:
                if not math.isfinite(energy):
                    continue
                key, per_atom = composition.reduced_formula, energy / composition.num_atoms
                if key not in self._lowest or per_atom < self._lowest[key][1]:
                    self._lowest[key] = (composition.reduced_composition, per_atom, label)
                    changed.update(el.symbol for el in composition.elements)
            if changed:
                self._diagrams = {k: v for k, v in self._diagrams.items() if set(k).isdisjoint(changed)}

    def energies(self, composition: Composition, energy: float) -> tuple[float, float]:
        """(formation energy, energy above the hull known so far), eV/atom; negative above the hull:
        the crystal is below it (a new stable phase, by that much)."""
        chemsys = tuple(sorted(el.symbol for el in composition.elements))
        with self._lock:
            pd = self._diagrams.get(chemsys)
            if pd is None:
                inside = set(chemsys)
                entries = [
                    (c, e * c.num_atoms, label)
                    for c, e, label in self._lowest.values()
                    if {el.symbol for el in c.elements} <= inside
                ]
                pd = self._diagrams[chemsys] = phase_diagram(chemsys, entries, self.references)
        return hull_energies(pd, composition, energy)
