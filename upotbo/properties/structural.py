"""Density and volume per atom of the relaxed crystal: no further potential call."""

from __future__ import annotations

from pymatgen.core import Structure

from upotbo.potentials.base import Potential
from upotbo.properties.base import Property


class Density(Property):
    name = "density"
    unit = "g/cm^3"
    direction = "maximize"
    label = "rho"
    plausible = (0.0, 30.0)  # osmium, the densest element, is 22.6 g/cm^3

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        return float(structure.density)


class VolumePerAtom(Property):
    name = "volume_per_atom"
    unit = "Å^3/atom"
    direction = "minimize"
    label = "V/atom"
    plausible = (2.5, 200.0)

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        return structure.volume / len(structure)
