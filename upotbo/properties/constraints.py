"""Constraints on properties: ``"formation_energy<=0"``, ``"e_above_hull<=0.05"``, ``"density>=5"``.

Every scored crystal gets each constrained property computed and stored, feasible or not. Its
violation (how far past the bounds, summed over the constraints, in their units) is what the sampler
learns from, the way optuna's constrained TPE does (Gardner et al., ICML 2014, as implemented in
``TPESampler(constraints_func=...)``): feasible crystals rank above infeasible ones, infeasible ones
by their violation. A property the constraint cannot be computed for (a mechanically unstable
crystal's bulk modulus) makes the crystal infeasible, with the reason stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from upotbo.errors import InputError
from upotbo.properties.base import Property

UNCOMPUTABLE = 1e9  # the violation of a constraint whose property could not be computed
_FORM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?::(?:min|max))?)\s*(<=|>=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    prop: Property
    op: str  # "<=" or ">="
    bound: float

    @property
    def text(self) -> str:
        return f"{self.prop.name}{self.op}{self.bound:g}"

    def violation(self, value: float | str) -> float:
        """0 when met; how far past the bound otherwise (in the property's unit)."""
        if isinstance(value, str) or not math.isfinite(value):
            return UNCOMPUTABLE
        return max(0.0, value - self.bound if self.op == "<=" else self.bound - value)


def parse_constraint(text: str) -> Constraint:
    """``NAME<=VALUE`` or ``NAME>=VALUE``, e.g. ``e_above_hull<=0.05`` (units: the property's)."""
    from upotbo.properties import get_property

    match = _FORM.match(text)
    if match is None:
        raise InputError(
            f"constraint {text!r} is not NAME<=VALUE or NAME>=VALUE: e.g. --constraint 'e_above_hull<=0.05'"
        )
    name, op, bound = match.groups()
    try:
        value = float(bound)
    except ValueError:
        raise InputError(f"constraint {text!r}: {bound!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"constraint {text!r}: the bound must be a finite number")
    return Constraint(get_property(name.partition(":")[0]), op, value)


def total_violation(constraints: tuple[Constraint, ...], values: dict[str, float | str]) -> float:
    return sum(c.violation(values.get(c.prop.name, "not computed")) for c in constraints)
