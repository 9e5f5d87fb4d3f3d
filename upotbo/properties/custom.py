"""Any function of the relaxed crystal and the potential, registered as a property from Python."""

from __future__ import annotations

from collections.abc import Callable

from pymatgen.core import Structure

from upotbo.potentials.base import Potential
from upotbo.properties.base import Direction, Property


class FunctionProperty(Property):
    """``function(structure, potential) -> float`` on the relaxed crystal; raise ``CandidateFailed``
    (``upotbo.errors``) for a crystal it cannot be computed for."""

    cheap = False

    def __init__(
        self,
        name: str,
        function: Callable[[Structure, Potential], float],
        unit: str,
        direction: Direction,
        label: str | None = None,
        plausible: tuple[float, float] = (-float("inf"), float("inf")),
    ) -> None:
        self.name, self.function, self.unit, self.direction = name, function, unit, direction
        self.label, self.plausible = label or name, plausible

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        return float(self.function(structure, potential))
