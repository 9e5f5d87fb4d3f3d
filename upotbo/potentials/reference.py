"""Energy references: what a potential's total energy means, and how to get raw PBE from it.

A cohesive energy needs raw PBE total energies on the same footing as the isolated-atom table.
Potentials trained on MPtrj (CHGNet, M3GNet, MACE-MP) learned energies *with* the Materials Project
2020 corrections applied, so the anion shifts they learned must be removed again. The GGA/GGA+U mixing
shifts are kept: they put GGA+U energies (e.g. Mo oxides, U(Mo) = 4.38 eV) on the GGA scale.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from functools import lru_cache

from pymatgen.core import Composition

from upotbo.errors import CandidateFailed

# MP2020 treats oxides and fluorides of these metals with GGA+U (values from MP's MPRelaxSet).
_MP_U_VALUES = {"Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9, "Mo": 4.38, "Ni": 6.2, "V": 3.25, "W": 6.2}
_MP_U_ANIONS = {"O", "F"}
# the elements MP2020 corrects as anions (oxide, peroxide, ... all under O): a crystal with none of
# them has no anion correction, and pymatgen's oxidation-state guess (~1.5 ms) is skipped
_MP2020_ANIONS = frozenset({"O", "S", "Se", "Te", "N", "F", "Cl", "Br", "I", "H", "Si", "Sb"})


class EnergyReference(ABC):
    """Maps a potential's total energy (eV per cell) to a raw-PBE total energy (eV per cell)."""

    name: str

    @abstractmethod
    def pbe_shift_per_atom(self, composition: Composition) -> float:
        """eV/atom to *add* to the potential's energy to obtain raw PBE."""

    def to_pbe(self, composition: Composition, energy: float) -> float:
        return energy + self.pbe_shift_per_atom(composition) * composition.num_atoms

    def warm(self) -> None:
        """Load what the first value needs (a search does it while its potential processes start)."""
        return None


class RawPBE(EnergyReference):
    """The potential predicts uncorrected PBE energies already (e.g. a DFT code, or a model trained so)."""

    name = "pbe"

    def pbe_shift_per_atom(self, composition: Composition) -> float:
        return 0.0


class MP2020Corrected(EnergyReference):
    """Trained on MP2020-corrected energies (MPtrj): remove the learned anion corrections."""

    name = "mp2020"

    def pbe_shift_per_atom(self, composition: Composition) -> float:
        if _MP2020_ANIONS.isdisjoint(el.symbol for el in composition.elements):
            return 0.0
        return _mp2020_anion_shift(tuple(sorted(composition.reduced_composition.as_dict().items())))

    def warm(self) -> None:
        _compatibility()  # pymatgen's MP2020 tables: ~1.7 s of YAML


@lru_cache(maxsize=100_000)
def _mp2020_anion_shift(reduced: tuple[tuple[str, float], ...]) -> float:
    from pymatgen.entries.computed_entries import ComputedEntry

    composition = Composition(dict(reduced))
    symbols = {el.symbol for el in composition.elements}
    hubbards = {}
    if symbols & _MP_U_ANIONS:
        hubbards = {s: _MP_U_VALUES[s] for s in symbols if s in _MP_U_VALUES}
    entry = ComputedEntry(
        composition,
        0.0,
        parameters={
            "run_type": "GGA+U" if hubbards else "GGA",
            "hubbards": hubbards,
            "is_hubbard": bool(hubbards),
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            adjustments = _compatibility().get_adjustments(entry)
        except Exception as exc:  # pymatgen raises CompatibilityError for entries it refuses
            raise CandidateFailed(
                f"MP2020 correction undefined for {composition.reduced_formula}: {exc}"
            ) from exc
    correction = sum(a.value for a in adjustments if "anion" in a.name.lower())
    return -correction / composition.num_atoms


@lru_cache(maxsize=1)
def _compatibility():
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)
