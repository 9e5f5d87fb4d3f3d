"""Elemental references for the hull: common elemental structures relaxed with the same potential.

Each element is tried as fcc, bcc, hcp, diamond, graphite and simple cubic (lattice from the covalent
radius, then fully relaxed), and the gas-phase elements also as a dimer in a box; the lowest energy per
atom is the reference. Energies stay on the potential's own scale, like the compounds they reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from upotbo.crystal.filters import covalent_radius
from upotbo.potentials import Potential
from upotbo.properties import CohesiveEnergy
from upotbo.validate.relax import relax_crystals
from upotbo.validate.symmetry import elemental_prototypes

# Bond lengths (Å) of the diatomic gases (NIST CCCBDB experimental values), relaxed in a 10 Å box.
DIMERS = {"H": 0.741, "N": 1.098, "O": 1.208, "F": 1.412, "Cl": 1.988, "Br": 2.281, "I": 2.665}
PRUNE_AFTER, PRUNE_MARGIN = 20, 0.3  # steps, eV/atom
BOX = 10.0  # Å: beyond CHGNet's 5 Å graph cutoff, so the molecule sees no periodic image


@dataclass
class Reference:
    element: str
    prototype: str
    energy_per_atom: float  # eV/atom, the potential's scale
    structure: Structure


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

    low, high = CohesiveEnergy.plausible
    best: dict[str, Reference] = {}
    for (el, name, _), r in zip(
        tried, relax_crystals(potential, [s for *_, s in tried], fmax, steps, stop=stop), strict=True
    ):
        # a molecule must not shrink its box: only the solids relax with the cell; a dimer's box is
        # big enough that the cell relaxation barely acts on it, which the check below confirms
        if r.error is not None or not (low < r.value < high) or not math.isfinite(r.energy):
            continue
        if "molecule" in name and not np.allclose(r.structure.lattice.abc, BOX, atol=1.0):
            continue
        per_atom = r.energy / len(r.structure)
        if el not in best or per_atom < best[el].energy_per_atom:
            best[el] = Reference(el, name, per_atom, r.structure)
    return best
