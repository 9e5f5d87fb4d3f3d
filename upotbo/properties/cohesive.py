"""Cohesive energy per atom, as in UPot-BO (negative; more negative = stronger cohesion).

E_c = (E_pbe(crystal) - sum_i n_i E_atom(Z_i)) / N, where E_pbe is the potential's energy brought to
raw PBE by its declared energy reference, and E_atom are spin-polarized isolated-atom PBE energies
with MP settings (shipped in ``upotbo/data``; the file names its source).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from pymatgen.core import Composition, Structure

from upotbo.errors import InputError
from upotbo.potentials.base import Potential
from upotbo.potentials.reference import EnergyReference
from upotbo.properties.base import Property, per_atom_above


@lru_cache(maxsize=1)
def isolated_atom_energies() -> dict[str, float]:
    """eV/atom, VASP PBE (MP settings); source in the JSON's ``_source`` field."""
    text = resources.files("upotbo").joinpath("data", "isolated_atom_energies_mp_pbe.json").read_text()
    return dict(json.loads(text)["energies"])


def cohesive_energy(composition: Composition, energy_pbe: float) -> float:
    """eV/atom from a raw-PBE total energy (eV per cell)."""
    return per_atom_above(composition, energy_pbe, isolated_atom_energies())


def potential_energy(composition: Composition, ec: float, reference: EnergyReference) -> float:
    """The total energy (eV per cell) on a potential's scale whose E_c is ``ec`` (eV/atom): the
    inverse of ``CohesiveEnergy.value``. Why: another DFT code's total energies (GPAW's, relative to
    its own atomic references) are not on the scale a VASP-trained model learned, but its cohesive
    energies (crystal and atoms by the same code) are comparable, so a label is carried over as its
    E_c: the per-element shift this applies is E_atom(MP table) - E_atom(GPAW), and the MP2020 anion
    correction the model learned is put back."""
    atoms = isolated_atom_energies()
    pbe = ec * composition.num_atoms + sum(n * atoms[el.symbol] for el, n in composition.items())
    return pbe - reference.pbe_shift_per_atom(composition) * composition.num_atoms


def cohesive_energies(potential: Potential, structures: Sequence[Structure]) -> list[float]:
    """E_c (eV/atom) of each structure as it stands (one batched single point), NaN where the
    potential or the energy reference fails on it."""
    calcs = potential.calculate(structures)
    energies = [c.energy if c.ok else math.nan for c in calcs]
    values = CohesiveEnergy().values(structures, energies, potential)
    return [v if isinstance(v, float) else math.nan for v in values]


class CohesiveEnergy(Property):
    name = "cohesive_energy"
    unit = "eV/atom"
    direction = "minimize"
    label = "E_c"
    prunable = True
    # No crystal is bound by more than ~9 eV/atom (W); beyond -10.5 the potential has fallen into one
    # of the known short-range holes of ML potentials, which is a failure, not a discovery.
    plausible = (-10.5, 50.0)

    def check_elements(self, symbols: tuple[str, ...]) -> None:
        missing = [s for s in symbols if s not in isolated_atom_energies()]
        if missing:
            raise InputError(
                f"no isolated-atom reference energy for {', '.join(missing)}: remove them from the pool"
            )

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        composition = structure.composition
        return cohesive_energy(composition, potential.energy_reference.to_pbe(composition, energy))
