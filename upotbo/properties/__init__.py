"""Target properties (each a name, a unit, a direction and a label), found by name in one registry.

``get_property("density:min")`` overrides a property's direction, ``get_objectives("a,b")`` gives the
objectives of a Pareto search; ``register_property`` adds any
function of the relaxed crystal and the potential under a name of its own, for ``--property`` too
when the registering module is imported first.
"""

from __future__ import annotations

from collections.abc import Callable

from pymatgen.core import Structure

from upotbo.errors import InputError
from upotbo.potentials.base import Potential
from upotbo.properties.base import Direction, Property
from upotbo.properties.cohesive import (
    CohesiveEnergy,
    cohesive_energies,
    cohesive_energy,
    isolated_atom_energies,
    potential_energy,
)
from upotbo.properties.custom import FunctionProperty
from upotbo.properties.mechanical import BulkModulus, Hardness, ShearModulus
from upotbo.properties.structural import Density, VolumePerAtom
from upotbo.properties.thermo import EnergyAboveHull, FormationEnergy

PROPERTIES: dict[str, Callable[[], Property]] = {
    cls.name: cls
    for cls in (
        CohesiveEnergy,
        FormationEnergy,
        EnergyAboveHull,
        BulkModulus,
        ShearModulus,
        Hardness,
        Density,
        VolumePerAtom,
    )
}
DIRECTIONS: dict[str, Direction] = {"min": "minimize", "max": "maximize"}


def get_property(spec: str) -> Property:
    """The property registered as ``NAME``, or ``NAME:min`` / ``NAME:max`` with its direction set."""
    name, _, direction = spec.strip().partition(":")
    if name not in PROPERTIES:
        raise InputError(f"unknown property {name!r}: choose one of {', '.join(PROPERTIES)}")
    if direction and direction not in DIRECTIONS:
        raise InputError(f"unknown direction {direction!r} in {spec!r}: use {name}:min or {name}:max")
    prop = PROPERTIES[name]()
    if direction:
        prop.direction = DIRECTIONS[direction]
    return prop


MAX_OBJECTIVES = 3


def get_objectives(spec: str) -> tuple[Property, ...]:
    """One property (``"hardness"``) or two or three at once for a Pareto front
    (``"bulk_modulus,density:min"``), each with its direction."""
    return check_objectives(tuple(get_property(part) for part in spec.split(",")))


def check_objectives(props: tuple[Property, ...]) -> tuple[Property, ...]:
    """``props`` if they can be a search's objectives: one to three, each once."""
    names = ",".join(p.name for p in props)
    if not props or len(props) > MAX_OBJECTIVES:
        raise InputError(f"{len(props)} objectives ({names}): a search takes 1 to {MAX_OBJECTIVES}")
    if len({p.name for p in props}) < len(props):
        raise InputError(f"{names} names a property twice: give each objective once")
    return props


def register_property(
    name: str,
    function: Callable[[Structure, Potential], float],
    unit: str,
    direction: Direction,
    label: str | None = None,
    plausible: tuple[float, float] = (-float("inf"), float("inf")),
) -> None:
    """Make ``function(relaxed structure, potential) -> float`` a property named ``name``."""
    if not name.isidentifier():
        raise InputError(f"property name {name!r}: use letters, digits and underscores")
    if direction not in DIRECTIONS.values():
        raise InputError(f"direction {direction!r}: use 'minimize' or 'maximize'")
    PROPERTIES[name] = lambda: FunctionProperty(name, function, unit, direction, label, plausible)


__all__ = [
    "PROPERTIES",
    "BulkModulus",
    "CohesiveEnergy",
    "Density",
    "EnergyAboveHull",
    "FormationEnergy",
    "FunctionProperty",
    "Hardness",
    "Property",
    "ShearModulus",
    "VolumePerAtom",
    "cohesive_energies",
    "cohesive_energy",
    "potential_energy",
    "check_objectives",
    "get_objectives",
    "get_property",
    "isolated_atom_energies",
    "register_property",
]
