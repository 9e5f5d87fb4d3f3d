"""DFT labels for a run's crystals (``upotbo label``): which crystals (``select``), the label set on
disk (``dataset``), and the resumable labelling loop (``runner``). The labels feed fine-tuning and a
DFT-checked ranking. Names load on first use (``upotbo.lazy``): the CLI's parser imports
``labels.cli``, not the labelling itself."""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "dataset": "DB_NAME Label LabelSet",
        "runner": "GPAWLabeller Labeller PotentialLabeller label_run",
        "select": "Pick plan shares",
    },
)
