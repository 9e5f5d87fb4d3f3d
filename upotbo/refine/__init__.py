"""The DFT loop (``upotbo refine``): label a run's crystals, fine-tune CHGNet on the labels, re-rank
the run's best under the new model, repeated until the ranking holds (``loop``); the DFT-checked
ranking it reports (``ranking``)."""

from upotbo.refine.loop import Refined, RefineSettings, Round, refine
from upotbo.refine.ranking import Contender, contenders

__all__ = ["Contender", "RefineSettings", "Refined", "Round", "contenders", "refine"]
