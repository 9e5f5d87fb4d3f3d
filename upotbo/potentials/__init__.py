"""Universal potentials behind one interface, and the registry the CLI resolves names with.

``--potential chgnet`` (default, CHGNet 0.3.0 from its wheel), ``chgnet:0.2.0``, or
``chgnet:/path/to/fine_tuned.pth.tar`` for a local model file; ``sevenn`` (SevenNet-0 from the
``sevenn`` wheel, extra ``upotbo[sevenn]``), ``sevenn:7net-l3i5`` or ``sevenn:/path/checkpoint.pth``.
"""

from __future__ import annotations

from collections.abc import Callable

from upotbo.errors import InputError
from upotbo.potentials.ase_calculator import ASECalculatorPotential
from upotbo.potentials.base import Calculation, Potential
from upotbo.potentials.reference import EnergyReference, MP2020Corrected, RawPBE
from upotbo.potentials.relax import Relaxation, RelaxPool, relax_batch


def _chgnet(arg: str | None) -> Potential:
    from upotbo.potentials.chgnet import CHGNetPotential

    return CHGNetPotential(model=arg or "0.3.0")


def _sevenn(arg: str | None) -> Potential:
    try:
        from upotbo.potentials.sevenn import DEFAULT_MODEL, SevenNetPotential
    except ImportError as exc:
        raise InputError(
            f"SevenNet is not installed ({exc.name} missing): pip install 'upotbo[sevenn]'"
        ) from None
    return SevenNetPotential(model=arg or DEFAULT_MODEL)


POTENTIALS: dict[str, Callable[[str | None], Potential]] = {"chgnet": _chgnet, "sevenn": _sevenn}


def load_potential(spec: str = "chgnet") -> Potential:
    """Resolve ``name`` or ``name:argument`` (a model version or a local path)."""
    name, _, arg = spec.partition(":")
    if name not in POTENTIALS:
        raise InputError(
            f"unknown potential {spec!r}: choose one of {', '.join(POTENTIALS)} (optionally name:model-path)"
        )
    try:
        return POTENTIALS[name](arg or None)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        raise InputError(
            f"cannot load potential {spec!r} ({exc}): give an existing model file or version"
        ) from exc


def load_committee(specs: str, main: Potential) -> list[Potential]:
    """The potentials named in ``specs`` ("sevenn,sevenn:7net-l3i5"), each other than ``main`` and
    than each other (a committee of one model twice says nothing)."""
    members = [load_potential(spec.strip()) for spec in specs.split(",") if spec.strip()]
    names = [main.name, *(m.name for m in members)]
    if not members or len(set(names)) < len(names):
        raise InputError(
            f"--committee {specs!r} must name potentials other than --potential {main.name} and "
            f"each other, e.g. --committee sevenn,sevenn:7net-l3i5"
        )
    return members


__all__ = [
    "POTENTIALS",
    "ASECalculatorPotential",
    "Calculation",
    "EnergyReference",
    "MP2020Corrected",
    "Potential",
    "RawPBE",
    "Relaxation",
    "load_committee",
    "load_potential",
    "RelaxPool",
    "relax_batch",
]
