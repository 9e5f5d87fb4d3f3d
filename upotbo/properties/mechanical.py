"""Bulk modulus, shear modulus and Vickers hardness of the relaxed crystal, with the same potential.

Each needs more of the potential than the crystal's own energy: the bulk modulus an equation of
state (a few scaled cells), the shear modulus and hardness the elastic tensor (strained cells with
their ions relaxed). ``upotbo.properties.mechanics`` computes them for a whole batch in batched
potential calls. A crystal that violates the Born criteria is a failure with that reason, not a value.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Structure

from upotbo.errors import CandidateFailed
from upotbo.potentials.base import Potential
from upotbo.properties.base import Property


class _Mechanical(Property):
    unit = "GPa"
    direction = "maximize"
    cheap = False
    needs_minimum = True  # moduli of a cell under residual stress are those of a strained crystal

    def value(self, structure: Structure, energy: float, potential: Potential) -> float:
        result = self.values([structure], [energy], potential)[0]
        if isinstance(result, str):
            raise CandidateFailed(result)
        return result


class BulkModulus(_Mechanical):
    """From a Birch-Murnaghan fit of the energy at several volumes."""

    name = "bulk_modulus"
    label = "B"
    plausible = (0.0, 1000.0)  # diamond, the stiffest, 443 GPa

    def values(
        self, structures: Sequence[Structure], energies: Sequence[float], potential: Potential
    ) -> list[float | str]:
        from upotbo.properties.mechanics import bulk_moduli

        return bulk_moduli(potential, list(structures))


class _FromElasticTensor(_Mechanical):
    def values(
        self, structures: Sequence[Structure], energies: Sequence[float], potential: Potential
    ) -> list[float | str]:
        from upotbo.properties.mechanics import mechanics

        found = mechanics(potential, list(structures))
        return [m if isinstance(m, str) else float(getattr(m, self.field)) for m in found]


class ShearModulus(_FromElasticTensor):
    """Voigt-Reuss-Hill average of the elastic tensor."""

    name = "shear_modulus"
    label = "G"
    plausible = (0.0, 1000.0)
    field = "shear_vrh"


class Hardness(_FromElasticTensor):
    """Vickers hardness from the VRH moduli by Chen's model (Intermetallics 19, 1275 (2011))."""

    name = "hardness"
    label = "H_V"
    plausible = (-10.0, 200.0)
    field = "hardness"
