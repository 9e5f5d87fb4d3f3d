"""Samplers, batched evaluation and the resumable ``Search``; names load on first use
(``upotbo.lazy``): a potential's helper process unpickling one function of this package would
otherwise import the whole search, optuna included, before its first crystal (0.7 s of its start)."""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "evaluate": "Evaluator Scored",
        "samplers": "SAMPLERS make_sampler",
        "study": "Progress Search SearchConfig SearchResult StudyAccess",
    },
)
