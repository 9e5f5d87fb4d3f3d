"""Step 5: DFT spot checks with GPAW (PBE, plane waves), the optional ``upotbo[dft]`` extra.

E_c(DFT) = (E_crystal - sum_i n_i E_atom,i) / N with both energies from GPAW at the same settings.
Isolated atoms are spin-polarized with Hund's-rule moments, in an orthorhombic box, without symmetry;
they are computed once per element and settings and cached (``$UPOTBO_CACHE`` or ``~/.cache/upotbo``).
The crystal is first symmetrized to spglib's standard primitive cell: GPAW's symmetry analysis raised
``SymmetryAnalysisBug`` on a CHGNet-relaxed TiC that was only nearly symmetric, and switching symmetry
off instead multiplies the k-points (a 2-atom fcc cell at k-density 4 then took > 15 min).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.errors import CandidateFailed, InputError
from upotbo.validate.cache import lookup, store
from upotbo.validate.symmetry import standard_cells

ATOM_CACHE = "gpaw_atom_energies.json"
INSTALL_HINT = (
    "GPAW is not installed: apt-get install libxc-dev libopenblas-dev libfftw3-dev gpaw-data, then "
    "CC=g++ pip install 'upotbo[dft]' (see docs/validate.md), or drop --dft"
)


@dataclass(frozen=True)
class DFTSettings:
    """Defaults reproduce the measured rock-salt ZrC check: E_c -7.971 eV/atom in about a minute."""

    ecut: float = 500.0  # eV, plane-wave cutoff
    kdensity: float = 4.0  # k-points per Å^-1 of reciprocal length (GPAW ``kpts={'density': ...}``)
    smearing: float = 0.05  # eV, Fermi-Dirac width for the crystal
    box: float = 10.0  # Å, vacuum box of the isolated atoms
    relax: bool = False  # also relax the crystal with DFT (symmetry kept), slow
    fmax: float = 0.05  # eV/Å, DFT relaxation threshold
    relax_steps: int = 20

    def atom_key(self, element: str) -> str:
        import gpaw

        return f"{element}|PBE|PW{self.ecut:g}|box{self.box:g}|gpaw{gpaw.__version__}"


@dataclass
class DFTResult:
    value: float  # E_c, eV/atom, GPAW single point on the UPot-relaxed cell
    seconds: float
    value_relaxed: float | None = None  # E_c after the DFT relaxation, when asked


def require_gpaw() -> None:
    """Raise ``InputError`` with the install commands when GPAW cannot be imported."""
    try:
        import gpaw  # noqa: F401
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    if "GPAW_SETUP_PATH" not in os.environ and Path("/usr/share/gpaw-setups").is_dir():
        os.environ["GPAW_SETUP_PATH"] = "/usr/share/gpaw-setups"  # Debian's gpaw-data


def atom_energy(element: str, settings: DFTSettings, log_dir: Path | None = None) -> float:
    """GPAW energy (eV) of one isolated, spin-polarized atom; cached across runs."""
    require_gpaw()
    from ase import Atoms
    from gpaw import GPAW, PW

    key = settings.atom_key(element)
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
        txt=str(log_dir / f"atom_{element}.txt") if log_dir else None,
    )
    energy = float(atoms.get_potential_energy())
    store(ATOM_CACHE, key, energy)
    return energy


def _calculator(settings: DFTSettings, txt: str | None):
    from gpaw import GPAW, PW, FermiDirac

    return GPAW(
        mode=PW(settings.ecut),
        xc="PBE",
        kpts={"density": settings.kdensity, "gamma": True},
        occupations=FermiDirac(settings.smearing),
        txt=txt,
    )


def dft_cohesive(
    structure: Structure, settings: DFTSettings, log_dir: Path | None = None, name: str = "crystal"
) -> DFTResult:
    """E_c (eV/atom) of ``structure`` by GPAW, and after a DFT relaxation if ``settings.relax``."""
    require_gpaw()
    start = time.perf_counter()
    try:
        _, primitive = standard_cells(structure)
        atoms = AseAtomsAdaptor.get_atoms(primitive)
        atoms.calc = _calculator(settings, str(log_dir / f"{name}.txt") if log_dir else None)
        counts = primitive.composition.get_el_amt_dict()
        reference = sum(n * atom_energy(el, settings, log_dir) for el, n in counts.items())
        natoms = len(atoms)
        value = (float(atoms.get_potential_energy()) - reference) / natoms
        relaxed = None
        if settings.relax:
            relaxed = (_relax(atoms, settings) - reference) / natoms
    except InputError:
        raise
    except Exception as exc:  # GPAW errors are many and specific; the row records the reason
        raise CandidateFailed(f"GPAW failed: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}") from exc
    return DFTResult(value, time.perf_counter() - start, relaxed)


def _relax(atoms, settings: DFTSettings) -> float:
    """Positions and cell with the crystal's symmetry kept (FixSymmetry), so GPAW keeps its k-point
    reduction throughout."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms.set_constraint(FixSymmetry(atoms))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=settings.fmax, steps=settings.relax_steps)
    return float(atoms.get_potential_energy())


def settings_dict(settings: DFTSettings) -> dict:
    return asdict(settings)
