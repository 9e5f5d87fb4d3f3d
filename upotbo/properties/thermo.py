"""Formation energy and energy above the hull, on the potential's own energies.

Both stand on elemental references relaxed with the same potential (``upotbo.thermo.references``:
the lowest of the common elemental solids and, for gases, the dimer), computed once per potential
and cached, the same ones ``upotbo validate`` uses. The hull of ``e_above_hull`` is what the run
knows when the crystal is scored: the references, the competing phases given (relaxed with the same
potential), and every crystal the run scored before. It is no database hull (Materials Project's
phases are not in it), so a crystal 0 eV/atom above it is stable against what this search found,
not against all of chemistry; a negative value means the crystal lies below that hull, by that much.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Composition, Structure

from upotbo.errors import CandidateFailed, InputError
from upotbo.potentials.base import Potential
from upotbo.properties.base import Property, per_atom_above


class FormationEnergy(Property):
    name = "formation_energy"
    unit = "eV/atom"
    direction = "minimize"
    label = "E_f"
    plausible = (-8.0, 20.0)  # the most negative known are ~-4.5 eV/atom (fluorides, oxides)
    prunable = True

    def __init__(self) -> None:
        self.mu: dict[str, float] = {}  # eV/atom per element, the potential's scale

    def prepare(self, symbols: tuple[str, ...], potential: Potential) -> None:
        from upotbo.thermo.references import elemental_references

        references = elemental_references(potential, [s for s in symbols if s not in self.mu])
        self.mu.update({el: ref.energy_per_atom for el, ref in references.items()})

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        composition = structure.composition
        missing = [el.symbol for el in composition.elements if el.symbol not in self.mu]
        if missing:
            raise CandidateFailed(f"no elemental reference for {', '.join(missing)} (all prototypes failed)")
        return per_atom_above(composition, energy, self.mu)


class EnergyAboveHull(Property):
    name = "e_above_hull"
    unit = "eV/atom"
    direction = "minimize"
    label = "E_hull"
    plausible = (-10.0, 20.0)
    prunable = True
    observes_run = True
    RELAX_STEPS = 200  # FIRE steps for a competing phase

    def __init__(self, competing: Sequence[Structure] = ()) -> None:
        self.competing = list(competing)
        self.hull = None

    def prepare(self, symbols: tuple[str, ...], potential: Potential) -> None:
        from upotbo.potentials import relax_batch
        from upotbo.thermo.hull import RunHull
        from upotbo.thermo.references import elemental_references

        needed = sorted({*symbols, *(el.symbol for s in self.competing for el in s.composition.elements)})
        entries = []
        for i, r in enumerate(relax_batch(potential, self.competing, steps=self.RELAX_STEPS, fmax=0.05)):
            if r.error is not None:
                raise InputError(f"competing phase {i + 1} ({self.competing[i].formula}) failed: {r.error}")
            entries.append((r.structure.composition, r.energy, f"competing {r.structure.formula}"))
        self.hull = RunHull(elemental_references(potential, needed), entries)

    def observe(self, crystals: Sequence[tuple[Composition, float]]) -> None:
        self.hull.add([(c, e, "run") for c, e in crystals])

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        if self.hull is None:
            raise RuntimeError("e_above_hull: call prepare() before the first value")
        return self.hull.energies(structure.composition, energy)[1]


def use_competing(paths: Sequence[str], properties: Sequence[Property]) -> None:
    """Read competing-phase CIFs into every ``e_above_hull`` among ``properties`` (one line if unreadable,
    or if no property uses them: a given file must not be silently ignored)."""
    if not paths:
        return
    hulls = [p for p in properties if isinstance(p, EnergyAboveHull)]
    if not hulls:
        raise InputError(
            "--competing is used by e_above_hull only: add --property e_above_hull or a constraint on it"
        )
    structures = []
    for path in paths:
        try:
            structures.append(Structure.from_file(path))
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"competing phase {path}: not a readable crystal file ({first})") from None
    for p in hulls:
        p.competing = structures
