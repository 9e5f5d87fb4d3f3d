"""The (a, c, s) search space: pools, symmetry tables, define-by-run candidates."""

from upotbo.space.formula import FormulaSpace
from upotbo.space.pools import POOLS, parse_pool
from upotbo.space.seeds import Seed, load_seeds
from upotbo.space.space import Candidate, SearchSpace

__all__ = ["POOLS", "Candidate", "FormulaSpace", "SearchSpace", "Seed", "load_seeds", "parse_pool"]
