"""The fixed-composition space of crystal structure prediction: ``--formula ZrB2``.

The paper's (a, c, s) space with a and c fixed: a trial draws the number of formula units Z in the
cell, then the same structure parameters s as a composition search (``suggest_structure``: space
group, Wyckoff assignment, lattice, free coordinates). Z is drawn uniformly, not modelled, like a
composition search's atoms per cell: the energy per atom of a structure does not depend on Z, and a
model of Z would lock onto the Z of the first good structure (rock salt needs Z = 4 in its
conventional cell, wurtzite and rutile Z = 2, AlB2 Z = 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import gcd
from typing import Any

import optuna
from pymatgen.core import Composition, Element

from upotbo.errors import InputError
from upotbo.space.space import Candidate, suggest_structure

MAX_Z = 4  # default formula units per cell: conventional rock-salt, zincblende and fluorite cells
DEFAULT_MAX_ATOMS = 20
PARAMETERS = "formula/1"


@dataclass(frozen=True)
class FormulaSpace:
    """One composition (``formula``, reduced), 1..``max_z`` formula units per cell, at most ``max_atoms``."""

    formula: str
    species: tuple[str, ...]
    units: tuple[int, ...]  # atoms of each species per formula unit
    max_z: int
    max_atoms: int

    @classmethod
    def create(cls, formula: str, max_z: int | None = None, max_atoms: int | None = None) -> FormulaSpace:
        """Parse and check the formula and the cell bounds (one clear ``InputError`` per bad value)."""
        species, units = parse_formula(formula)
        per_unit = sum(units)
        top = DEFAULT_MAX_ATOMS if max_atoms is None else int(max_atoms)
        if max_atoms is None and max_z is not None:
            top = max(top, int(max_z) * per_unit)
        reduced = Composition(dict(zip(species, units, strict=True))).reduced_formula
        if per_unit > top:
            raise InputError(
                f"--max-atoms {top} is below the {per_unit} atoms of one {reduced} formula unit: "
                f"use --max-atoms {per_unit} or more"
            )
        if max_z is None:
            max_z = max(1, min(MAX_Z, top // per_unit))
        elif not 1 <= int(max_z) <= top // per_unit:
            raise InputError(
                f"--max-z {max_z} does not fit: {max_z} x {per_unit} atoms of {reduced} exceed --max-atoms "
                f"{top}; use --max-z 1 to {top // per_unit} or raise --max-atoms"
            )
        return cls(reduced, species, units, int(max_z), top)

    @property
    def pool(self) -> tuple[str, ...]:
        """The elements of the formula (what the potential and the properties must cover)."""
        return self.species

    def settings(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "max_z": self.max_z,
            "max_atoms": self.max_atoms,
            "pool": list(self.species),
            "parameters": PARAMETERS,
        }

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Draw Z and a structure of Z formula units. Raises ``CandidateFailed`` if no symmetry fits."""
        trial.set_user_attr("drawn", list(self.species))
        z = trial.suggest_int("z", 1, self.max_z)
        return suggest_structure(trial, self.species, tuple(z * n for n in self.units))

    def seed_composition(self, species: tuple[str, ...], counts: tuple[int, ...]) -> dict[str, Any]:
        """The ``z`` of a seed crystal with ``counts`` atoms of each of ``species``, or an
        ``InputError`` saying why it is not a cell of this formula."""
        found = Composition(dict(zip(species, counts, strict=True)))
        if species != self.species or found.reduced_formula != self.formula:
            raise InputError(
                f"it is {found.reduced_formula}, not {self.formula}: seed cells of the formula searched"
            )
        z = counts[0] // self.units[0]
        if z > self.max_z:
            raise InputError(f"its cell holds {z} formula units, above --max-z {self.max_z}: raise --max-z")
        return {"z": z}


def parse_formula(text: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(species in alphabetical order, atoms of each per formula unit, smallest whole numbers)."""
    try:
        composition = Composition(text)
    except Exception:
        composition = None
    if composition is None or not text.strip() or composition.num_atoms == 0:
        raise InputError(f"--formula {text!r} is not a chemical formula: write it like ZrB2 or SrTiO3")
    amounts = composition.get_el_amt_dict()
    if any(abs(n - round(n)) > 1e-8 for n in amounts.values()):
        raise InputError(
            f"--formula {text!r} has fractional amounts: give whole numbers of atoms, like Fe2O3"
        )
    unknown = [s for s in amounts if not Element.is_valid_symbol(s)]
    if unknown:
        raise InputError(
            f"--formula {text!r}: {', '.join(unknown)} is not a chemical element: check the spelling"
        )
    species = tuple(sorted(amounts))
    whole = [int(round(amounts[s])) for s in species]
    divisor = reduce(gcd, whole)
    return species, tuple(n // divisor for n in whole)
