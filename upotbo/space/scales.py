"""Element scales: the order in which a sampler sees the pool's elements.

A sampler models each drawn element as a position on a scale, so neighbours on the scale should be
elements that do alike for the target: then a model that finds Zr–Ru strong also tries Zr–C.

- ``melting`` (default): ordered by melting point, the proxy of elemental cohesion that pymatgen has
  for every element (cohesive energy and melting point rise together across the periodic table; Brewer,
  Lindemann). paper42's strong end reads Si Y Sc Pd Ti Zr Rh B Ru Nb Mo C: refractory metals and the
  covalent light elements side by side, which is where strongly bound crystals come from.
- ``pettifor``: Pettifor's chemical scale (Mendeleev number): chemically alike neighbours (Zr Ti Nb Mo;
  C N O), the usual scale of structure maps and a neutral choice for other targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pymatgen.core.periodic_table import Element

from upotbo.errors import InputError


def _melting(symbol: str) -> float:
    value = Element(symbol).melting_point
    return float(value) if value is not None else float("inf")


SCALES: dict[str, Callable[[str], float]] = {
    "melting": _melting,
    "pettifor": lambda symbol: float(Element(symbol).mendeleev_no),
}


def check_scale(name: str) -> str:
    if name not in SCALES:
        raise InputError(f"unknown element scale {name!r}: choose one of {', '.join(SCALES)}")
    return name


def order_elements(symbols: Sequence[str], scale: str) -> tuple[str, ...]:
    """``symbols`` sorted along ``scale`` (ties broken by atomic number, so the order is fixed)."""
    key = SCALES[check_scale(scale)]
    return tuple(sorted(symbols, key=lambda s: (key(s), Element(s).Z)))
