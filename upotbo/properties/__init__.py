"""Target properties (each a name, a unit, a direction and a label), found by name in one registry."""

from upotbo.errors import InputError
from upotbo.properties.base import Property
from upotbo.properties.cohesive import CohesiveEnergy, cohesive_energy, isolated_atom_energies

PROPERTIES: dict[str, type[Property]] = {"cohesive_energy": CohesiveEnergy}


def get_property(name: str) -> Property:
    """The property registered as ``name`` (what ``--property`` takes)."""
    if name not in PROPERTIES:
        raise InputError(f"unknown property {name!r}: choose one of {', '.join(PROPERTIES)}")
    return PROPERTIES[name]()


__all__ = [
    "PROPERTIES",
    "CohesiveEnergy",
    "Property",
    "cohesive_energy",
    "get_property",
    "isolated_atom_energies",
]
