"""Thermodynamics on the potential's own energies: elemental references, formation energies, hulls."""
