"""Candidate description -> crystal: symmetric construction (PyXtal Wyckoff tables) plus physical filters."""

from upotbo.crystal.construct import build_structure
from upotbo.crystal.filters import sanitize_structure

__all__ = ["build_structure", "sanitize_structure"]
