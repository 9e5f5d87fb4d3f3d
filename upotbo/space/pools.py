"""Named element pools and pool parsing.

``paper42`` reads the rule of Cheng, Gong & Yin (arXiv 2302.13537, Fig. S3) literally: the first five
periods without noble gases, radioactive elements (Tc) and d elements with partially filled d shells
(V Cr Mn Fe Co Ni). Sc, Y, Zr, Nb, Mo, Ru, Rh, Pd are kept as in the paper's count of 42.
"""

from __future__ import annotations

from pymatgen.core.periodic_table import Element

from upotbo.errors import InputError

POOLS: dict[str, tuple[str, ...]] = {
    "paper42": tuple(
        "H Li Be B C N O F Na Mg Al Si P S Cl K Ca Sc Ti Cu Zn Ga Ge As Se Br Rb Sr Y Zr Nb "
        "Mo Ru Rh Pd Ag Cd In Sn Sb Te I".split()
    ),
    "zrc": ("Zr", "C", "N", "B"),
}


def parse_pool(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Turn ``"paper42"`` or ``"Zr,C,N"`` (or a list of symbols) into a tuple of symbols, each once."""
    if isinstance(spec, str):
        if spec.strip() in POOLS:
            return POOLS[spec.strip()]
        symbols = [s.strip() for s in spec.replace(" ", ",").split(",") if s.strip()]
    else:
        symbols = [str(s).strip() for s in spec]
    if not symbols:
        raise InputError(
            f"empty element pool {spec!r}: pass symbols like --pool Zr,C,N or a named pool "
            f"({', '.join(POOLS)})"
        )
    unique: list[str] = []
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol):
            raise InputError(
                f"unknown element symbol {symbol!r} in the pool: use chemical symbols such as "
                f"Zr, C, N (case matters) or a named pool ({', '.join(POOLS)})"
            )
        if symbol in unique:
            raise InputError(f"the pool lists {symbol} twice ({spec!r}): list each element once")
        unique.append(symbol)
    return tuple(unique)
