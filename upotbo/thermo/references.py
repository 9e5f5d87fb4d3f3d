"""Elemental references for the hull: common elemental structures relaxed with the same potential.

Each element is tried as fcc, bcc, hcp, diamond, graphite and simple cubic (lattice from the covalent
radius, then fully relaxed), and the gas-phase elements also as a dimer in a box; the lowest energy per
atom is the reference. Energies stay on the potential's own scale, like the compounds they reference.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from upotbo.cache import lookup, store
from upotbo.crystal.filters import covalent_radius
from upotbo.crystal.prototypes import elemental_prototypes
from upotbo.potentials import Potential, relax_batch

# Bond lengths (Å) of the diatomic gases (NIST CCCBDB experimental values), relaxed in a 10 Å box.
DIMERS = {"H": 0.741, "N": 1.098, "O": 1.208, "F": 1.412, "Cl": 1.988, "Br": 2.281, "I": 2.665}
PRUNE_AFTER, PRUNE_MARGIN = 20, 0.3  # steps, eV/atom
BOX = 10.0  # Å: beyond CHGNet's 5 Å graph cutoff, so the molecule sees no periodic image
CACHE = "elemental_references.json"
FMAX = 0.05  # eV/Å: always relaxed tightly, whatever a caller's crystals get
STEPS = 500  # FIRE steps (they converge in < 40 under CHGNet)
VERSION = "protos-v1"  # bump when the elemental prototypes change


@dataclass
class Reference:
    element: str
    prototype: str
    energy_per_atom: float  # eV/atom, the potential's scale
    structure: Structure

    def to_dict(self) -> dict:
        return {"prototype": self.prototype, "energy_per_atom": self.energy_per_atom,
                "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, element: str, d: dict) -> Reference:
        return cls(element, d["prototype"], d["energy_per_atom"], Structure.from_dict(d["structure"]))


def elemental_references(
    potential: Potential, elements: list[str], log: Callable[[str], None] | None = None
) -> dict[str, Reference]:
    """The reference of each element under ``potential``, relaxed once per user and potential (cached
    on disk, ``upotbo.cache``): validation, formation energies and hulls all use these. ``log`` (by
    default the ``upotbo`` logger, which the CLI prints) hears when they must be relaxed first."""
    log = log or logging.getLogger("upotbo").info
    found: dict[str, Reference] = {}
    for el in elements:
        cached = lookup(CACHE, _key(el, potential))
        if cached is not None:
            found[el] = Reference.from_dict(el, cached)
    todo = [el for el in elements if el not in found]
    if todo:
        log(
            f"relaxing elemental references for {', '.join(todo)} under {potential.name} "
            "(once: cached for later runs)"
        )
        for el, ref in relax_references(potential, todo, FMAX, STEPS).items():
            store(CACHE, _key(el, potential), ref.to_dict())
            found[el] = ref
    return found


def _key(element: str, potential: Potential) -> str:
    """Cache key: element, potential, relaxation settings and the prototypes tried."""
    return f"{element}|{potential.name}|fmax{FMAX:g}|steps{STEPS}|{VERSION}"


def candidates(element: str) -> list[tuple[str, Structure]]:
    d_nn = 2 * covalent_radius(element)
    out = []
    for proto in elemental_prototypes():
        s = proto.structure.copy()
        s.replace_species({"X": element})
        s.scale_lattice(len(s) * proto.nn_volume * d_nn**3)
        out.append((proto.name, s))
    if element in DIMERS:
        bond = DIMERS[element]
        out.append(
            (
                f"{element}2 molecule",
                Structure(Lattice.cubic(BOX), [element] * 2, [[0, 0, 0], [0, 0, bond / BOX]]),
            )
        )
    return out


def relax_references(
    potential: Potential, elements: list[str], fmax: float, steps: int
) -> dict[str, Reference]:
    """Lowest relaxed elemental structure per element (one batch for all elements and prototypes).

    A prototype still ``PRUNE_MARGIN`` above the best of its element after ``PRUNE_AFTER`` steps stops
    relaxing (it cannot become the reference); otherwise the slowest loser sets the batch's length.
    """
    tried = [(el, name, s) for el in elements for name, s in candidates(el)]
    current = [math.inf] * len(tried)

    def stop(i: int, step: int, energy: float) -> bool:
        current[i] = energy / len(tried[i][2])
        rivals = [current[j] for j in range(len(tried)) if tried[j][0] == tried[i][0]]
        return step >= PRUNE_AFTER and current[i] > min(rivals) + PRUNE_MARGIN

    from upotbo.properties.cohesive import CohesiveEnergy  # properties use references: import late

    cohesive = CohesiveEnergy()
    low, high = cohesive.plausible
    best: dict[str, Reference] = {}
    relaxed = relax_batch(potential, [s for *_, s in tried], steps=steps, fmax=fmax, stop=stop)
    for (el, name, _), r in zip(tried, relaxed, strict=True):
        # a molecule must not shrink its box: only the solids relax with the cell; a dimer's box is
        # big enough that the cell relaxation barely acts on it, which the check below confirms
        if r.error is not None or not math.isfinite(r.energy):
            continue
        if not low < cohesive.value(r.structure, r.energy, potential) < high:
            continue
        if "molecule" in name and not np.allclose(r.structure.lattice.abc, BOX, atol=1.0):
            continue
        per_atom = r.energy / len(r.structure)
        if el not in best or per_atom < best[el].energy_per_atom:
            best[el] = Reference(el, name, per_atom, r.structure)
    return best
