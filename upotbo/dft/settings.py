"""GPAW settings shared by every DFT job, the calculator they make, and the check that GPAW is there."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upotbo.errors import InputError

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

    def atom_key(self, element: str, gpaw_version: str) -> str:
        """Cache key of an isolated atom: only what changes its energy (existing caches use this form)."""
        return f"{element}|PBE|PW{self.ecut:g}|box{self.box:g}|gpaw{gpaw_version}"


def require_gpaw() -> None:
    """Raise ``InputError`` with the install commands when GPAW cannot be imported."""
    try:
        import gpaw  # noqa: F401
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    if "GPAW_SETUP_PATH" not in os.environ and Path("/usr/share/gpaw-setups").is_dir():
        os.environ["GPAW_SETUP_PATH"] = "/usr/share/gpaw-setups"  # Debian's gpaw-data


def calculator(settings: DFTSettings, txt: str | None) -> Any:
    """GPAW PBE calculator for a periodic crystal (``txt``: GPAW's log file, None for silent)."""
    from gpaw import GPAW, PW, FermiDirac

    return GPAW(
        mode=PW(settings.ecut),
        xc="PBE",
        kpts={"density": settings.kdensity, "gamma": True},
        occupations=FermiDirac(settings.smearing),
        txt=txt,
    )


def log_file(log_dir: Path | None, name: str) -> str | None:
    """GPAW's ``txt`` for a calculation called ``name``: ``log_dir/name.txt``, or silent without a dir."""
    return str(log_dir / f"{name}.txt") if log_dir else None
