"""Space group (spglib), prototype names, and merging of structures that are the same crystal.

Prototypes are matched with pymatgen's ``StructureMatcher.fit_anonymous`` at scaled volume, so a
relaxed ZrC finds "rock salt" whatever its lattice constant or species. The elemental prototypes
double as the starting structures of the convex-hull references (``upotbo.thermo.references``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.cells import SYMPREC
from upotbo.cells import standard_cells as standard_cells  # re-exported: phonons use it from here


@dataclass(frozen=True)
class Prototype:
    """A named structure type; ``nn_volume`` is the volume per atom in units of d_nn^3 (elements only)."""

    name: str
    structure: Structure
    nn_volume: float = 0.0


def _proto(name: str, sg: int, lattice: Lattice, species: list[str], coords: list, nn_volume: float = 0.0):
    return Prototype(name, Structure.from_spacegroup(sg, lattice, species, coords), nn_volume)


@lru_cache(maxsize=1)
def prototypes() -> tuple[Prototype, ...]:
    """Common binary/ternary/elemental structure types (Strukturbericht symbol in brackets)."""
    cubic, hexa = Lattice.cubic(4.0), Lattice.hexagonal
    return (
        _proto("fcc (A1)", 225, cubic, ["X"], [[0, 0, 0]], 1 / np.sqrt(2)),
        _proto("bcc (A2)", 229, cubic, ["X"], [[0, 0, 0]], 4 / (3 * np.sqrt(3))),
        _proto("hcp (A3)", 194, hexa(3.0, 4.899), ["X"], [[1 / 3, 2 / 3, 0.25]], 1 / np.sqrt(2)),
        _proto("diamond (A4)", 216, cubic, ["X", "X"], [[0, 0, 0], [0.25, 0.25, 0.25]], 8 / (3 * np.sqrt(3))),
        _proto("graphite (A9)", 194, hexa(2.46, 6.70), ["X", "X"], [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]], 3.1),
        _proto("simple cubic (Ah)", 221, cubic, ["X"], [[0, 0, 0]], 1.0),
        _proto("rock salt (B1)", 225, cubic, ["A", "B"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        _proto("CsCl (B2)", 221, cubic, ["A", "B"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        _proto("zincblende (B3)", 216, cubic, ["A", "B"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        _proto("wurtzite (B4)", 186, hexa(3.0, 4.9), ["A", "B"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]]),
        _proto("NiAs (B8_1)", 194, hexa(3.6, 5.0), ["A", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]),
        _proto("AlB2 (C32)", 191, hexa(3.0, 3.3), ["A", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]),
        _proto("fluorite (C1)", 225, Lattice.cubic(5.4), ["A", "B"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        _proto("rutile (C4)", 136, Lattice.tetragonal(4.6, 2.95), ["A", "B"], [[0, 0, 0], [0.305, 0.305, 0]]),
        _proto("CdI2 (C6)", 164, hexa(3.4, 6.0), ["A", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]),
        _proto("MoS2 (C7)", 194, hexa(3.2, 12.3), ["A", "B"], [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]]),
        _proto(
            "perovskite (E2_1)",
            221,
            Lattice.cubic(3.9),
            ["A", "B", "C"],
            [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]],
        ),
    )


def elemental_prototypes() -> tuple[Prototype, ...]:
    return tuple(p for p in prototypes() if p.nn_volume > 0)


@lru_cache(maxsize=1)
def _matcher() -> StructureMatcher:
    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True)


def spacegroup(structure: Structure, symprec: float = SYMPREC) -> tuple[str, int]:
    """(Hermann-Mauguin symbol, number); P1 when spglib cannot analyse a distorted cell."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        return sga.get_space_group_symbol(), sga.get_space_group_number()
    except Exception:
        return "P1", 1


def prototype_name(structure: Structure) -> str:
    """Name of the first matching prototype, or "" when the crystal is none of the known types."""
    anonymous = structure.composition.anonymized_formula
    for proto in prototypes():
        if proto.structure.composition.anonymized_formula != anonymous:
            continue
        if _matcher().fit_anonymous(structure, proto.structure):
            return proto.name
    return ""


def merge_duplicates(structures: list[Structure], energies: list[float]) -> list[int]:
    """For each structure, the index of the lowest-energy structure it is the same crystal as (itself
    when it is the lowest of its group); energies per atom."""
    order = sorted(range(len(structures)), key=lambda i: energies[i])
    kept: list[int] = []
    owner = list(range(len(structures)))
    for i in order:
        for k in kept:
            same_formula = (
                structures[i].composition.reduced_formula == structures[k].composition.reduced_formula
            )
            if same_formula and _matcher().fit(structures[i], structures[k]):
                owner[i] = k
                break
        else:
            kept.append(i)
    return owner
