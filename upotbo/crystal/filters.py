"""Physical sanity of a freshly built crystal: no overlapping atoms, a sane volume, no vacuum slabs.

Every check raises ``CandidateFailed`` with the reason, which the search records on the trial.
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from pymatgen.core import Lattice, Structure

from upotbo.errors import CandidateFailed

MIN_DISTANCE_FACTOR = 0.7  # d_ij >= 0.7 (r_i + r_j), covalent radii (Cordero et al. 2008, via ASE)
MAX_EXPANSION = 2.0  # largest linear scaling allowed to repair short contacts
MAX_VOLUME_FACTOR = 8.0  # cell volume / covalent-sphere volume
VACUUM_MIN_GAP = 4.0  # Å; gaps between atomic planes above max(this, 2.6 r_max) count as vacuum


def covalent_radius(symbol: str) -> float:
    return float(covalent_radii[atomic_numbers[symbol]])


def covalent_volume(structure: Structure) -> float:
    return float(sum(4.0 / 3.0 * np.pi * covalent_radius(site.specie.symbol) ** 3 for site in structure))


def repair_short_contacts(structure: Structure) -> Structure:
    """Expand the cell isotropically (keeps the symmetry) until no pair is closer than the minimum.

    Random free coordinates often put two atoms of one orbit a little too close; a modest uniform
    expansion fixes that without changing the candidate. Coincident atoms cannot be repaired.
    """
    radii = np.array([covalent_radius(site.specie.symbol) for site in structure])
    cutoff = MIN_DISTANCE_FACTOR * 2 * radii.max()
    centers, neighbors, _, distances = structure.get_neighbor_list(cutoff)
    if len(distances) == 0:
        return structure
    needed = MIN_DISTANCE_FACTOR * (radii[centers] + radii[neighbors])
    if distances.min() < 1e-3:
        i, j = centers[distances.argmin()], neighbors[distances.argmin()]
        raise CandidateFailed(
            f"atoms {i} ({structure[i].specie}) and {j} ({structure[j].specie}) on top of each other"
        )
    scale = float((needed / distances).max())
    if scale <= 1.0:
        return structure
    if scale > MAX_EXPANSION:
        k = int((needed / distances).argmax())
        raise CandidateFailed(
            f"atoms {centers[k]} and {neighbors[k]} too close ({distances[k]:.2f} Å < {needed[k]:.2f} Å)"
        )
    repaired = structure.copy()
    repaired.scale_lattice(structure.volume * (scale * 1.001) ** 3)
    return repaired


def check_volume(structure: Structure) -> None:
    ratio = structure.volume / covalent_volume(structure)
    if ratio > MAX_VOLUME_FACTOR:
        raise CandidateFailed(f"cell too empty: volume is {ratio:.1f}x the covalent-sphere volume")


def _gaps(structure: Structure) -> tuple[float, float, list[tuple[float, float]]]:
    """The vacuum limit (Å), the gap a squeeze aims for (Å), and per lattice axis the largest empty
    gap between atomic planes (Å) with the spacing of those planes (Å)."""
    r_max = max(covalent_radius(site.specie.symbol) for site in structure)
    frac = np.mod(structure.frac_coords, 1.0)
    recip = structure.lattice.reciprocal_lattice_crystallographic.abc
    out = []
    for axis in range(3):
        spacing = 1.0 / recip[axis]  # distance between (100)-type planes, Å
        values = np.sort(frac[:, axis])
        out.append((float(np.diff(np.append(values, values[0] + 1.0)).max() * spacing), spacing))
    limit = max(VACUUM_MIN_GAP, 2.6 * r_max)
    return limit, max(limit / 2, 1.2 * MIN_DISTANCE_FACTOR * 2 * r_max), out


def close_vacuum(structure: Structure) -> Structure:
    """Shorten each lattice vector whose planes leave a vacuum gap, down to a gap of about one bond.

    Long random cells (c/a up to 3) often put every atom in a few planes: a slab in vacuum. Squeezing
    that axis turns it into a dense crystal of the same content and site pattern, instead of a failed
    step. Short contacts the squeeze makes are repaired afterwards like any other.
    """
    limit, target, gaps = _gaps(structure)
    factors = [1.0 - (gap - target) / spacing if gap > limit else 1.0 for gap, spacing in gaps]
    if all(f == 1.0 for f in factors):
        return structure
    matrix = structure.lattice.matrix * np.array(factors)[:, None]
    return Structure(Lattice(matrix), structure.species, structure.frac_coords)


def check_vacuum(structure: Structure) -> None:
    """Reject cells where some family of lattice planes has an empty gap (a slab or chain in vacuum)."""
    limit, _, gaps = _gaps(structure)
    for axis, (gap, _) in enumerate(gaps):
        if gap > limit:
            raise CandidateFailed(f"vacuum slab: {gap:.1f} Å empty gap along axis {'abc'[axis]}")


def sanitize_structure(structure: Structure) -> Structure:
    """Repair what can be repaired (vacuum gaps, short contacts), then apply every filter; returns the
    (possibly squeezed or expanded) structure or raises ``CandidateFailed``."""
    structure = repair_short_contacts(close_vacuum(repair_short_contacts(structure)))
    check_volume(structure)
    check_vacuum(structure)
    return structure
