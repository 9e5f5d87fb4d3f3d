"""A target property: a name, a unit, a direction, and how to compute it from a scored crystal."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from pymatgen.core import Structure

from upotbo.potentials.base import Potential


class Property(ABC):
    """What the search optimises. ``value`` gets the crystal and the potential's total energy (eV/cell)."""

    name: str
    unit: str
    direction: Literal["minimize", "maximize"]
    label: str  # short symbol for tables, plots and the progress bar, e.g. "E_c"
    plausible: tuple[float, float] = (-float("inf"), float("inf"))  # values outside are potential failures

    def check_elements(self, symbols: tuple[str, ...]) -> None:
        """Raise ``InputError`` if the property cannot be computed for some element (default: any is fine)."""
        return None

    @abstractmethod
    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        """The property of ``structure`` given its total energy from ``potential``."""
