"""Target properties (each a name, a unit and a direction)."""

from upotbo.properties.base import Property
from upotbo.properties.cohesive import CohesiveEnergy, cohesive_energy, isolated_atom_energies

PROPERTIES: dict[str, type[Property]] = {"cohesive_energy": CohesiveEnergy}

__all__ = ["PROPERTIES", "CohesiveEnergy", "Property", "cohesive_energy", "isolated_atom_energies"]
