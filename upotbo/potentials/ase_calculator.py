"""Any ASE calculator as a ``Potential`` (one structure at a time; no batched path)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ase.calculators.calculator import Calculator
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.potentials.base import Calculation, Potential, sanitize, screen
from upotbo.potentials.reference import EnergyReference


class ASECalculatorPotential(Potential):
    """Wrap ``calculator``; the caller declares its energy reference and the elements it covers."""

    def __init__(
        self,
        calculator: Calculator,
        energy_reference: EnergyReference,
        elements: Iterable[str],
        name: str = "ase",
    ) -> None:
        self.calculator = calculator
        self.energy_reference = energy_reference
        self.elements = frozenset(elements)
        self.name = name

    def calculate(
        self, structures: Sequence[Structure], forces: bool = False, stress: bool = False
    ) -> list[Calculation]:
        out = []
        for structure in structures:
            refused = screen(structure)
            if refused:
                out.append(Calculation(error=refused))
                continue
            atoms = AseAtomsAdaptor.get_atoms(structure)
            atoms.calc = self.calculator
            try:
                calc = Calculation(energy=float(atoms.get_potential_energy()))
                if forces:
                    calc.forces = atoms.get_forces()
                if stress:
                    calc.stress = atoms.get_stress()
            except Exception as exc:
                calc = Calculation(error=f"{self.name} failed: {type(exc).__name__}: {exc}"[:200])
            out.append(sanitize(calc, len(structure)))
        return out
