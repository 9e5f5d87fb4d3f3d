"""Moves from the best crystals found so far (``--sampler tpe+moves``): children that swap an element
or put the same elements into a common structure type, the way CALYPSO, USPEX and ase.ga propose
children and high-throughput studies decorate prototypes.

TPE learns along each parameter axis; it does not know that a strong TiC makes ZrC worth trying, nor
that Nb and C that bind well in a random 5-atom cell may bind better still in rock salt. Three moves,
each a crystal scored as given (as a seed crystal is) whose parameters are its own composition, space
group and cell, so TPE learns from children as from its own trials:
- **substitution**: the parent's *relaxed* crystal with one element swapped for its neighbour in the
  periodic table, same group one period away or same period one group away (Ti -> Zr, V; C -> B, N,
  Si), the cell scaled by the change in covalent volume;
- **structure type**: the parent's elements in each common binary type (rock salt, CsCl, zincblende,
  AlB2, fluorite, ... both ways round; ``upotbo.crystal.prototypes``), or for an element alone its
  common forms (fcc, bcc, hcp, diamond, graphite), at the parent's volume per atom;
- **site substitution**: one atom of the parent's conventional cell replaced by an element up to two
  periodic-table steps away (rock-salt ZrC -> Zr4C3O), for spaces of three or more elements.
Once a batch has been scored, children take up to half of each batch's new trials: the best
``PARENTS`` distinct cell contents in turn, each crystal (cell content and space group) once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from itertools import zip_longest
from typing import Any

from optuna.trial import FrozenTrial
from pymatgen.core import Structure

from upotbo.cells import SYMPREC
from upotbo.crystal.filters import covalent_volume
from upotbo.crystal.prototypes import elemental_prototypes, prototypes
from upotbo.errors import InputError
from upotbo.search.samplers import WITH_MOVES
from upotbo.space.seeds import counts_of, spacegroup_number, structure_params
from upotbo.space.space import SearchSpace

SHARE = 0.5  # of each batch's new trials, at most
PARENTS = 5  # best distinct cell contents whose children are proposed


def default_sampler(space: Any) -> str:
    """``tpe+moves`` for a composition search; ``tpe`` for a fixed formula, which has nothing to swap."""
    return f"tpe{WITH_MOVES}" if isinstance(space, SearchSpace) else "tpe"


def proposes_moves(sampler: str, space: Any) -> bool:
    """Whether the search adds children (a sampler named ``...+moves``); a fixed-formula search has
    no elements to swap, so it refuses such a sampler."""
    if not sampler.endswith(WITH_MOVES):
        return False
    if not isinstance(space, SearchSpace):
        base = sampler.removesuffix(WITH_MOVES)
        raise InputError(f"--sampler {sampler} changes elements; a --formula search fixes them: use {base}")
    return True


@cache
def periodic_neighbours(symbol: str) -> frozenset[str]:
    """Elements one period up or down in the same group, or one group left or right in the same
    period (none for lanthanides and actinides, whose group pymatgen leaves undefined)."""
    from pymatgen.core.periodic_table import Element

    element = Element(symbol)
    if element.block == "f":
        return frozenset()
    out = set()
    for z in range(1, 104):
        other = Element.from_Z(z)
        if other.block != "f" and abs(other.row - element.row) + abs(other.group - element.group) == 1:
            out.add(other.symbol)
    return frozenset(out)


@cache
def _reduced(cell_content: str) -> str:
    """``C4Zr4`` -> ``ZrC``: the formula a crystal keeps whatever cell it is written in."""
    from pymatgen.core import Composition

    return Composition(cell_content).reduced_formula


@cache
def nearby_elements(symbol: str) -> frozenset[str]:
    """Elements up to two steps away in the periodic table (group and period steps added up)."""
    near = periodic_neighbours(symbol)
    return frozenset(near | {far for n in near for far in periodic_neighbours(n)}) - {symbol}


@dataclass(frozen=True)
class Child:
    """A proposed trial: its parameters, its crystal (scored as given), its parent, how it was made,
    and its key (reduced formula, space group): the crystal, proposed once whatever its cell."""

    params: dict[str, Any]
    structure: Structure
    parent: FrozenTrial
    move: str
    key: tuple[str, int]


class Moves:
    """Proposes children of a composition search's best trials (``SearchSpace``)."""

    def __init__(self, space: SearchSpace, share: float = SHARE, parents: int = PARENTS) -> None:
        self.space, self.share, self.parents = space, share, parents
        self.proposed: set[tuple[str, int]] = set()  # ``Child.key`` of every child proposed
        self._streams: dict[int, Iterator[Child]] = {}  # each parent's children not yet looked at

    def children(self, trials: Iterable[FrozenTrial], slots: int, rank: Any) -> list[Child]:
        """Up to ``share`` of ``slots`` children of the best scored trials by ``rank`` (a sort key,
        best first), taken from each parent in turn, none proposed or scored before.

        Each parent's children are made one at a time as they are needed (a child passed over is never
        wanted later: what was proposed or scored stays so)."""
        limit = int(slots * self.share)
        if limit <= 0:
            return []
        scored = [t for t in trials if t.value is not None and "structure" in t.user_attrs]
        found = {
            (_reduced(t.user_attrs["cell_formula"]), t.user_attrs.get("spacegroup_number")) for t in scored
        }
        best: dict[str, FrozenTrial] = {}
        for trial in sorted(scored, key=rank):
            best.setdefault(trial.user_attrs.get("cell_formula", str(trial.number)), trial)
            if len(best) == self.parents:
                break
        streams = [self._streams.setdefault(p.number, self._proposals(p)) for p in best.values()]
        out: list[Child] = []
        while streams and len(out) < limit:
            for stream in list(streams):
                child = next(stream, None)
                if child is None:
                    streams.remove(stream)
                elif child.key not in self.proposed and child.key not in found:
                    self.proposed.add(child.key)
                    out.append(child)
                    if len(out) == limit:
                        break
        return out

    def _proposals(self, parent: FrozenTrial) -> Iterator[Child]:
        """The children of ``parent`` the space can hold, made lazily: substitutions and structure
        types in turn (a type's primitive cell, or its conventional one where the primitive has too
        few atoms for the space's draws, e.g. one-atom bcc in a binary space)."""
        relaxed = Structure.from_dict(json.loads(parent.user_attrs["structure"]))
        parent_group = parent.user_attrs.get("spacegroup_number") or spacegroup_number(relaxed)
        conventional = cache(partial(_conventional, relaxed))  # spglib once per parent, when first needed
        kinds = (
            _substitutions(relaxed, conventional, parent_group),
            _structure_types(relaxed),
            _site_substitutions(relaxed, conventional),
        )
        interleaved = zip_longest(*kinds)
        for move, cells, group in (made for both in interleaved for made in both if made is not None):
            for make in cells:
                structure = make()
                species, counts = counts_of(structure)
                try:
                    params = self.space.seed_composition(species, counts)
                except InputError:  # outside the pool or the cell bounds
                    continue
                number = group or spacegroup_number(structure)
                params |= structure_params(structure, counts, number)
                reduced = structure.composition.reduced_formula
                yield Child(params, structure, parent, move, (reduced, number))
                break


# a move's name, its cells to try (the first the space holds is taken), its space group (None: unknown)
Made = tuple[str, list[Callable[[], Structure]], int | None]


def _substitutions(
    relaxed: Structure, conventional: Callable[[], Structure], number: int
) -> Iterator[Made]:
    """One element swapped for a periodic-table neighbour (the symmetry is the parent's), in the
    parent's cell or its conventional one (more atoms, for a space drawing more elements)."""
    elements = sorted({site.specie.symbol for site in relaxed})
    for symbol in elements:
        for other in sorted(periodic_neighbours(symbol) - set(elements)):
            cells = [partial(_swapped, source, symbol, other) for source in (lambda: relaxed, conventional)]
            yield f"{symbol}->{other}", cells, number


def _swapped(source: Callable[[], Structure], symbol: str, other: str) -> Structure:
    """A copy of ``source()`` with ``symbol`` replaced by ``other``, scaled by the change in covalent
    volume."""
    structure = source().copy()
    volume = structure.volume
    before = covalent_volume(structure)
    structure.replace_species({symbol: other})
    structure.scale_lattice(volume * covalent_volume(structure) / before)
    return structure


def _conventional(structure: Structure) -> Structure:
    """The conventional standard cell (the cell itself where spglib cannot analyse it); callers copy
    it before changing it."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return SpacegroupAnalyzer(structure, symprec=SYMPREC).get_conventional_standard_structure()
    except Exception:
        return structure


def _site_substitutions(relaxed: Structure, conventional: Callable[[], Structure]) -> Iterator[Made]:
    """One atom of the parent's conventional cell (one per symmetry orbit) replaced by an element up to
    two steps away in the periodic table: ordered ternaries of a binary (rock-salt ZrC -> Zr4C3O),
    quaternaries of a ternary. Parents of one element are left to the other moves."""
    elements = {site.specie.symbol for site in relaxed}
    if len(elements) < 2:
        return
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    cell = conventional()
    try:
        orbits = SpacegroupAnalyzer(cell, symprec=SYMPREC).get_symmetrized_structure().equivalent_indices
    except Exception:  # spglib cannot analyse the cell: no site moves from it
        return
    for orbit in orbits:
        symbol = cell[orbit[0]].specie.symbol
        if cell.composition[symbol] < 2:  # the element would vanish: that is a substitution
            continue
        for other in sorted(nearby_elements(symbol) - elements):
            yield f"{symbol}->{other} (one site)", [partial(_one_replaced, cell, orbit[0], other)], None


def _one_replaced(cell: Structure, index: int, other: str) -> Structure:
    structure = cell.copy()
    structure.replace(index, other)
    return structure


def _structure_types(relaxed: Structure) -> Iterator[Made]:
    """The parent's elements in the common structure types, at its volume per atom."""
    elements = sorted({site.specie.symbol for site in relaxed})
    volume = relaxed.volume / len(relaxed)
    if len(elements) == 1:
        for name, cells, group in _cells_of_types(1):
            yield name, [partial(_decorated, c, {"Li": elements[0]}, volume) for c in cells], group
    if len(elements) != 2:
        return
    a, b = elements
    for name, cells, group in _cells_of_types(2):
        for first, second in ((a, b), (b, a)):
            decorated = [partial(_decorated, c, {"Li": first, "Be": second}, volume) for c in cells]
            yield f"{name} {first}:{second}", decorated, group


@cache
def _cells_of_types(elements: int) -> tuple[tuple[str, tuple[Structure, ...], int], ...]:
    """(name, (primitive cell, conventional cell), space group) of each elemental (1) or binary (2)
    structure type, reduced once, with Li on the A (or X) sites and Be on the B sites: real, distinct
    elements, so that spglib sees the decorated crystal's symmetry."""
    if elements == 1:
        chosen = [(p, {"X": "Li"}) for p in elemental_prototypes()]
    else:
        binary = (p for p in prototypes() if {s.symbol for s in p.structure.species} == {"A", "B"})
        chosen = [(p, {"A": "Li", "B": "Be"}) for p in binary]
    out = []
    for prototype, placeholders in chosen:
        cell = prototype.structure.copy()
        cell.replace_species(placeholders)
        primitive = cell.get_primitive_structure()
        out.append((prototype.name, (primitive, cell), spacegroup_number(cell)))
    return tuple(out)


def _decorated(cell: Structure, mapping: dict[str, str], volume_per_atom: float) -> Structure:
    """``cell`` with its placeholder elements replaced (all at once), at ``volume_per_atom``."""
    structure = cell.copy()
    structure.replace_species(mapping)
    structure.scale_lattice(volume_per_atom * len(structure))
    return structure
