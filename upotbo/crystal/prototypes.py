"""Space group (spglib), prototype names, and merging of structures that are the same crystal.

Prototypes are matched with pymatgen's ``StructureMatcher.fit_anonymous`` at scaled volume, so a
relaxed ZrC finds "rock salt" whatever its lattice constant or species. The elemental prototypes
double as the starting structures of the convex-hull references (``upotbo.thermo.references``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.cells import SYMPREC
from upotbo.cells import standard_cells as standard_cells  # re-exported: phonons use it from here

T = TypeVar("T")


@dataclass(frozen=True)
class Prototype:
    """A named structure type; ``nn_volume`` is the volume per atom in units of d_nn^3 (elements only)."""

    name: str
    structure: Structure
    nn_volume: float = 0.0


def _proto(name: str, sg: int, lattice: Lattice, species: list[str], coords: list, nn_volume: float = 0.0):
    return Prototype(name, from_spacegroup(sg, lattice, species, coords), nn_volume)


def from_spacegroup(
    sg: int, lattice: Lattice, species: list[str], coords: list, setting: int = 1
) -> Structure:
    """The crystal of space group ``sg`` with ``species`` (placeholder labels too) on the orbits of
    ``coords``: pymatgen's ``Structure.from_spacegroup`` (``setting=1``; 2: the other origin choice),
    built with ASE's tables. pymatgen builds a group's operations anew on every call (0.36 s for
    Fm-3m, 1.9 s for the table below, paid by every search that proposes moves); ASE takes 5 ms.
    The same sites, in another order (``tests/test_space_build.py``)."""
    from ase.spacegroup import crystal
    from pymatgen.io.ase import AseAtomsAdaptor

    labels = list(dict.fromkeys(species))
    real = dict(zip(labels, ["Mg", "Al", "O", "Si"], strict=False))  # ASE wants elements
    symbols = [real[s] for s in species]
    atoms = crystal(symbols, basis=coords, spacegroup=sg, setting=setting, cell=lattice.matrix)
    structure = AseAtomsAdaptor.get_structure(atoms)
    structure.replace_species({element: label for label, element in real.items()})
    return structure


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
        _proto("Cu3Au (L1_2)", 221, Lattice.cubic(3.75), ["A", "B"], [[0, 0, 0], [0, 0.5, 0.5]]),
        _proto("TiAl3 (D0_22)", 139, Lattice.tetragonal(3.85, 8.6), ["A", "B", "B"],
               [[0, 0, 0], [0, 0, 0.5], [0, 0.5, 0.25]]),
        _proto("MoSi2 (C11_b)", 139, Lattice.tetragonal(3.2, 7.85), ["A", "B"], [[0, 0, 0], [0, 0, 0.335]]),
        _proto("CaB6 (D2_1)", 221, Lattice.cubic(4.15), ["A", "B"], [[0, 0, 0], [0.2, 0.5, 0.5]]),
        _proto("pyrite (C2)", 205, Lattice.cubic(5.42), ["A", "B"], [[0, 0, 0], [0.385, 0.385, 0.385]]),
        Prototype("cuprite (C3)", Structure(  # origin choices differ between tables: written out in full
            Lattice.cubic(4.27), ["B", "B", "A", "A", "A", "A"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75],
             [0.25, 0.75, 0.75]])),
        _proto("half-Heusler (C1_b)", 216, Lattice.cubic(5.93), ["A", "B", "C"],
               [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]),
        _proto("alpha-NaFeO2 (LiCoO2)", 166, hexa(2.82, 14.05), ["A", "B", "C"],
               [[0, 0, 0], [0, 0, 0.5], [0, 0, 0.26]]),
        _proto("corundum (D5_1)", 167, hexa(4.76, 12.99), ["A", "B"], [[0, 0, 0.3523], [0.3064, 0, 0.25]]),
        _ase_proto("spinel (H1_1)", 227, 8.08, ["A", "B", "C"],
                   [(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.2624, 0.2624, 0.2624)]),
    )


def _ase_proto(name: str, sg: int, a: float, species: list[str], basis: list) -> Prototype:
    """A cubic prototype in origin choice 2 (ASE's ``setting=2``; pymatgen's tables use choice 1)."""
    conventional = from_spacegroup(sg, Lattice.cubic(a), species, basis, setting=2)
    return Prototype(name, conventional.get_primitive_structure())


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


def same_crystal(a: Structure, b: Structure) -> bool:
    """The same composition and structure (``StructureMatcher``: any cell, origin, scale or setting)."""
    return a.composition.reduced_formula == b.composition.reduced_formula and _matcher().fit(a, b)


def among(structure: Structure, cells: Sequence[Structure]) -> bool:
    """Whether ``structure`` is the same crystal as any of ``cells``."""
    return any(same_crystal(structure, cell) for cell in cells)


def merge_duplicates(structures: list[Structure], energies: list[float]) -> list[int]:
    """For each structure, the index of the lowest-energy structure it is the same crystal as (itself
    when it is the lowest of its group); energies per atom."""
    order = sorted(range(len(structures)), key=lambda i: energies[i])
    kept: list[int] = []
    owner = list(range(len(structures)))
    for i in order:
        owner[i] = next((k for k in kept if same_crystal(structures[i], structures[k])), i)
        if owner[i] == i:
            kept.append(i)
    return owner


def first_distinct(ranked: Iterable[T], structure: Callable[[T], Structure], n: int) -> list[list[T]]:
    """The first ``n`` distinct crystals of ``ranked`` (best first), each with the items that are the
    same crystal and rank before the (n+1)-th distinct one: the scan stops there, so a run's thousands
    of crystals cost only as many matches as its top needs (most repeats match the first group)."""
    groups: list[tuple[Structure, list[T]]] = []
    for item in ranked:
        found = structure(item)
        group = next((g for s, g in groups if same_crystal(found, s)), None)
        if group is not None:
            group.append(item)
        elif len(groups) == n:
            break
        else:
            groups.append((found, [item]))
    return [g for _, g in groups]
