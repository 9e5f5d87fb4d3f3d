"""The (a, c, s) search space: pools, symmetry tables, define-by-run candidates."""

from upotbo.space.pools import POOLS, parse_pool
from upotbo.space.space import Candidate, SearchSpace

__all__ = ["POOLS", "Candidate", "SearchSpace", "parse_pool"]
