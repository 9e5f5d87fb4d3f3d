"""A target property: a name, a unit, a direction, and how to compute it from a scored crystal.

The search relaxes a batch of crystals, then asks the property for the batch's values at once
(``values``), so a property that needs more of the potential (an equation of state, an elastic
tensor) gathers every crystal's extra cells into one batched call. A property that is a function of
the crystal and its energy alone is ``cheap``: the search also gives its value before relaxing, and
prunes relaxations on it when it is an energy (``prunable``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

from pymatgen.core import Composition, Structure

from upotbo.errors import CandidateFailed
from upotbo.potentials.base import Potential

Direction = Literal["minimize", "maximize"]


def per_atom_above(composition: Composition, energy: float, per_element: dict[str, float]) -> float:
    """eV/atom of a cell's ``energy`` above the sum of its elements' per-atom energies (cohesive
    energy against isolated atoms, formation energy against elemental references)."""
    reference = sum(n * per_element[el.symbol] for el, n in composition.items())
    return (energy - reference) / composition.num_atoms


class Property(ABC):
    """What the search optimises. ``value`` gets the crystal and the potential's total energy (eV/cell)."""

    name: str
    unit: str
    direction: Direction
    label: str  # short symbol for tables, plots and the progress bar, e.g. "E_c"
    plausible: tuple[float, float] = (-float("inf"), float("inf"))  # values outside are potential failures
    cheap: bool = True  # from the crystal and its energy alone: no further potential call
    prunable: bool = False  # an energy per atom: a relaxation far above the best can stop early
    observes_run: bool = False  # its value depends on the crystals scored before (``observe``)
    needs_minimum: bool = False  # meaningful only at zero force and stress: the search relaxes fully first

    def check_elements(self, symbols: tuple[str, ...]) -> None:
        """Raise ``InputError`` if the property cannot be computed for some element (default: any is fine)."""
        return None

    def prepare(self, symbols: tuple[str, ...], potential: Potential) -> None:
        """Work done once before the first crystal (e.g. relaxing elemental references)."""
        return None

    def observe(self, crystals: Sequence[tuple[Composition, float]]) -> None:
        """Crystals just scored (composition, energy in eV/cell), for properties that ``observes_run``."""
        return None

    @abstractmethod
    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        """The property of ``structure`` given its total energy from ``potential``; a crystal it cannot
        be computed for raises ``CandidateFailed`` with the reason."""

    def values(
        self, structures: Sequence[Structure], energies: Sequence[float], potential: Potential
    ) -> list[float | str]:
        """The values of a batch, a reason (str) in place of each that failed."""
        out: list[float | str] = []
        for structure, energy in zip(structures, energies, strict=True):
            try:
                out.append(float(self.value(structure, energy, potential)))
            except CandidateFailed as exc:
                out.append(str(exc))
        return out
