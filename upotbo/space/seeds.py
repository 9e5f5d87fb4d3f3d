"""Seed crystals: given structures (known prototypes, a previous run's finds) that a search scores
first, as trials whose parameters are the crystal's own, so the sampler learns from them.

A seed is read, checked against the search space (its elements, atoms per element, formula units),
and translated into the parameters a drawn candidate would have had: the composition part
(``SearchSpace.composition_params`` or the formula space's ``z``) and the structure part
(``structure_params``). Wyckoff assignment and free coordinates stay the sampler's own draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.cells import SYMPREC
from upotbo.crystal.filters import covalent_volume
from upotbo.errors import InputError
from upotbo.space.space import ANGLE_RANGE, RATIO_RANGE, VOLUME_RANGE
from upotbo.space.symmetry import compatible_space_groups, point_group_order


@dataclass(frozen=True)
class Seed:
    """A seed crystal: its name (the file it came from), the cell the search scores, its parameters."""

    name: str
    structure: Structure
    params: dict[str, Any]


def read_seed(path: str | Path) -> Structure:
    """The crystal in a CIF/POSCAR file, or one ``InputError`` line saying why it cannot be read."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"--seed-structures {path}: no such file: give CIF or POSCAR files")
    try:
        structure = Structure.from_file(file)
    except Exception as exc:  # pymatgen raises many kinds on a bad file; the user needs the reason
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"--seed-structures {path}: no crystal could be read from it ({reason}): "
            "give a CIF or POSCAR file"
        ) from None
    if not structure.is_ordered:
        raise InputError(
            f"--seed-structures {path}: the crystal has partial occupancies: give an ordered cell"
        )
    return structure


def load_seeds(space: Any, paths: Sequence[str | Path]) -> list[Seed]:
    """Read and check each seed file against ``space`` (a ``SearchSpace`` or ``FormulaSpace``): the
    cell as given or its primitive cell, whichever the space holds; one ``InputError`` line naming
    the file and why otherwise. A file given twice is refused (it would be scored twice)."""
    seeds: list[Seed] = []
    for path in paths:
        name = str(path)
        if any(seed.name == name for seed in seeds):
            raise InputError(f"--seed-structures {path} is given twice: give each file once")
        structure, reason = read_seed(path), ""
        for cell in cells_to_try(structure):
            species, counts = counts_of(cell)
            try:
                composition = space.seed_composition(species, counts)
            except InputError as exc:
                reason = reason or str(exc)
                continue
            seeds.append(Seed(name, cell, {**composition, **structure_params(cell, counts)}))
            break
        else:
            raise InputError(f"--seed-structures {path} does not fit the search: {reason}")
    return seeds


def cells_to_try(structure: Structure) -> list[Structure]:
    """The cell as given, then its primitive cell (a conventional CIF may exceed ``--max-atoms``)."""
    primitive = structure.get_primitive_structure()
    return [structure] if len(primitive) == len(structure) else [structure, primitive]


def counts_of(structure: Structure) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(species, atoms of each) in alphabetical order, as a ``Candidate`` lists them."""
    amounts = structure.composition.get_el_amt_dict()
    species = tuple(sorted(amounts))
    return species, tuple(int(round(amounts[s])) for s in species)


def cell_formula(structure: Structure) -> str:
    """The cell content as a ``Candidate`` names it (``B2Zr1``): the window key of a composition search."""
    return "".join(f"{s}{n}" for s, n in zip(*counts_of(structure), strict=True))


def structure_params(
    structure: Structure, counts: tuple[int, ...], number: int | None = None
) -> dict[str, Any]:
    """The structure parameters of a given crystal, as ``suggest_structure`` reads them: its space
    group's quantile (the nearest compatible group when the seed's own cannot host ``counts`` in its
    conventional cell, e.g. a primitive rock-salt cell), its cell's shape and volume ratio, each
    clipped to the sampled ranges. ``number``: the crystal's space group when known (spares spglib)."""
    groups = compatible_space_groups(tuple(sorted(counts)))
    number = number or spacegroup_number(structure)
    nearest = min(range(len(groups)), key=lambda i: (abs(groups[i] - number), groups[i]))
    weights = np.array([point_group_order(n) for n in groups], dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    lattice = structure.lattice
    return {
        "spg": float((cumulative[nearest] + cumulative[nearest + 1]) / 2),
        "volume": float(np.clip(lattice.volume / covalent_volume(structure), *VOLUME_RANGE)),
        "b_a": float(np.clip(lattice.b / lattice.a, *RATIO_RANGE)),
        "c_a": float(np.clip(lattice.c / lattice.a, *RATIO_RANGE)),
        **{k: float(np.clip(getattr(lattice, k), *ANGLE_RANGE)) for k in ("alpha", "beta", "gamma")},
    }


def spacegroup_number(structure: Structure) -> int:
    """spglib's space-group number at the run's tolerance (1 when it cannot analyse the cell)."""
    try:
        return SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_number()
    except Exception:
        return 1
