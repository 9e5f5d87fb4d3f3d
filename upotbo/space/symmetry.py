"""Space groups and Wyckoff assignments for a given cell content (PyXtal's Wyckoff tables).

Enumerating every Wyckoff combination is exponential (counts 5,4,3 give 273,000 of them and take
80 s in PyXtal), so instead a seeded backtracking search draws one assignment: sites with free
parameters may repeat, fixed sites are used at most once across all species. The same search with
a fixed order decides compatibility; both are cached.

The Wyckoff tables of all 230 groups ship in ``upotbo/data/wyckoff_tables.json``, written from
PyXtal's by ``python -m upotbo.space.symmetry`` (tests compare the two): a search's first draw checks
every group, and building 230 PyXtal ``Group`` objects for it took 2.5 s of the start-up.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
from pyxtal.symmetry import Group

TABLES = "wyckoff_tables.json"


@lru_cache(maxsize=230)
def group(number: int) -> Group:
    return Group(number)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, dict]:
    return json.loads(resources.files("upotbo").joinpath("data", TABLES).read_text())["groups"]


@lru_cache(maxsize=230)
def wyckoff_table(number: int) -> tuple[tuple[int, str, bool], ...]:
    """(multiplicity, label like '4a', has free parameters) for each Wyckoff position of the group."""
    return tuple((m, label, free) for m, label, free in _shipped()[str(number)]["wyckoff"])


def pyxtal_table(number: int) -> dict:
    """The group's entry of the shipped table, from PyXtal itself."""
    g = group(number)
    wyckoff = [[wp.multiplicity, f"{wp.multiplicity}{wp.letter}", bool(wp.get_dof() > 0)] for wp in g]
    return {"symbol": g.symbol, "wyckoff": wyckoff}


def assign_wyckoffs(
    number: int, counts: tuple[int, ...], rng: np.random.Generator | None = None
) -> tuple[tuple[str, ...], ...] | None:
    """One Wyckoff assignment of ``counts`` atoms per species in group ``number``, or None if impossible.

    With ``rng`` the site order is shuffled, so different seeds give different valid assignments.
    """
    table = wyckoff_table(number)
    order = list(range(len(table)))
    if rng is not None:
        rng.shuffle(order)
    used: set[int] = set()
    chosen: list[list[int]] = []
    budget = [20_000]  # bound the search; no realistic cell content needs more

    def fill_species(k: int) -> bool:
        if k == len(counts):
            return True
        sites: list[int] = []
        return fill(k, counts[k], 0, sites)

    def fill(k: int, remaining: int, start: int, sites: list[int]) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if remaining == 0:
            chosen.append(list(sites))
            if fill_species(k + 1):
                return True
            chosen.pop()
            return False
        for pos in range(start, len(order)):
            idx = order[pos]
            mult, _, free = table[idx]
            if mult > remaining or (not free and idx in used):
                continue
            if not free:
                used.add(idx)
            sites.append(idx)
            if fill(k, remaining - mult, pos if free else pos + 1, sites):
                return True
            sites.pop()
            if not free:
                used.discard(idx)
        return False

    if not fill_species(0):
        return None
    return tuple(tuple(table[i][1] for i in species_sites) for species_sites in chosen)


_CENTERING = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}  # lattice points per conventional cell


@lru_cache(maxsize=230)
def point_group_order(number: int) -> int:
    """Rotations in the group's point group (1 for P1 .. 48 for m-3m): how symmetric the crystal is."""
    entry = _shipped()[str(number)]
    return entry["wyckoff"][0][0] // _CENTERING[entry["symbol"][0]]


@lru_cache(maxsize=4096)
def compatible_space_groups(counts: tuple[int, ...]) -> tuple[int, ...]:
    """Space-group numbers that can host ``counts`` atoms of each species (order-free: pass sorted)."""
    return tuple(n for n in range(1, 231) if assign_wyckoffs(n, counts) is not None)


def main() -> None:
    """Write the shipped table from the installed PyXtal."""
    import pyxtal

    table = {
        "source": f"PyXtal {pyxtal.__version__} (pyxtal.symmetry.Group), "
        "written by python -m upotbo.space.symmetry",
        "groups": {str(n): pyxtal_table(n) for n in range(1, 231)},
    }
    path = resources.files("upotbo").joinpath("data", TABLES)
    with resources.as_file(path) as target:
        target.write_text(json.dumps(table, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
