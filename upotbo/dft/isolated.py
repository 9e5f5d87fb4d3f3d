"""Energies of isolated atoms, the reference of every DFT cohesive energy.

Spin-polarized with Hund's-rule moments, in an orthorhombic box, without symmetry; computed once per
element and settings and cached (``upotbo.cache``): an atom costs 30-50 s at the default settings and
its answer never changes.
"""

from __future__ import annotations

from pathlib import Path

from upotbo.cache import lookup, store
from upotbo.dft.settings import DFTSettings, log_file, require_gpaw

ATOM_CACHE = "gpaw_atom_energies.json"


def atom_energy(element: str, settings: DFTSettings, log_dir: Path | None = None) -> float:
    """GPAW energy (eV) of one isolated, spin-polarized atom; cached across runs."""
    require_gpaw()
    import gpaw
    from ase import Atoms
    from gpaw import GPAW, PW

    key = settings.atom_key(element, gpaw.__version__)
    cached = lookup(ATOM_CACHE, key)
    if cached is not None:
        return float(cached)
    b = settings.box
    atoms = Atoms(element, cell=(b, b + 0.4, b + 0.8), pbc=True)
    atoms.center()
    atoms.calc = GPAW(
        mode=PW(settings.ecut),
        xc="PBE",
        hund=True,
        symmetry="off",
        kpts=(1, 1, 1),
        txt=log_file(log_dir, f"atom_{element}"),
    )
    energy = float(atoms.get_potential_energy())
    store(ATOM_CACHE, key, energy)
    return energy
