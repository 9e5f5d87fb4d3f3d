"""DFT labels for a run's crystals (``upotbo label``): which crystals (``select``), the label set on
disk (``dataset``), and the resumable labelling loop (``runner``). The labels feed fine-tuning and a
DFT-checked ranking."""

from upotbo.labels.dataset import DB_NAME, Label, LabelSet
from upotbo.labels.runner import GPAWLabeller, Labeller, PotentialLabeller, label_run
from upotbo.labels.select import Pick, plan, shares

__all__ = [
    "DB_NAME",
    "GPAWLabeller",
    "Label",
    "LabelSet",
    "Labeller",
    "Pick",
    "PotentialLabeller",
    "label_run",
    "plan",
    "shares",
]
