"""Samplers, batched evaluation and the resumable ``Search``."""

from upotbo.search.evaluate import Evaluator, Scored
from upotbo.search.samplers import SAMPLERS, make_sampler
from upotbo.search.study import Progress, Search, SearchConfig, SearchResult, StudyAccess

__all__ = [
    "SAMPLERS",
    "Evaluator",
    "Progress",
    "Scored",
    "Search",
    "SearchConfig",
    "SearchResult",
    "StudyAccess",
    "make_sampler",
]
