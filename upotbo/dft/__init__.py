"""DFT with GPAW (PBE, plane waves), the optional ``upotbo[dft]`` extra: a part of its own because
validation's spot checks, the landscape's DFT overlay and active-learning labels all need it.

A module per job: ``settings`` (GPAW settings, calculator, install check), ``isolated`` (cached
isolated-atom energies), ``singlepoint`` (energy, forces and stress of a cell), ``relaxation``
(symmetry-kept relaxation), ``cohesive`` (cohesive energy on the standard cell). Every module imports
GPAW only inside its functions, so ``import upotbo.dft`` works without GPAW installed.
"""

from upotbo.dft.cohesive import DFTResult, cohesive_energy, dft_cohesive
from upotbo.dft.isolated import ATOM_CACHE, atom_energy
from upotbo.dft.relaxation import relax
from upotbo.dft.settings import INSTALL_HINT, DFTSettings, calculator, require_gpaw
from upotbo.dft.singlepoint import SinglePoint, gpaw_failures, single_point

__all__ = [
    "ATOM_CACHE",
    "DFTResult",
    "DFTSettings",
    "INSTALL_HINT",
    "SinglePoint",
    "atom_energy",
    "calculator",
    "cohesive_energy",
    "dft_cohesive",
    "gpaw_failures",
    "relax",
    "require_gpaw",
    "single_point",
]
