"""The DFT loop (``upotbo refine``): label a run's crystals, fine-tune CHGNet on the labels, re-rank
the run's best under the new model, repeated until the ranking holds (``loop``); the DFT-checked
ranking it reports (``ranking``).
Names load on first use (``upotbo.lazy``)."""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "loop": "Refined RefineSettings Round labelled_rounds refine round_labels",
        "ranking": "Contender contenders",
    },
)
