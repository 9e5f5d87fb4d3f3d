"""Samplers, batched evaluation and the resumable ``Search``."""

from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.samplers import SAMPLERS, make_sampler
from upotbo.search.study import Progress, Search, SearchResult

__all__ = ["SAMPLERS", "Evaluator", "Progress", "Scored", "Search", "SearchResult", "make_sampler"]
