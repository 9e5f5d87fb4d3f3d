"""Candidate -> crystal: symmetric construction plus physical filters."""

from upotbo.build.crystal import build_structure
from upotbo.build.filters import sanitize_structure

__all__ = ["build_structure", "sanitize_structure"]
