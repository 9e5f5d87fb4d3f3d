"""Fine-tuning CHGNet on DFT labels (``upotbo finetune``): the training recipe (``train``) and the
command (``cli``). The saved model loads with ``--potential chgnet:/path/chgnet_finetuned.pth.tar``."""

from upotbo.finetune.train import (
    MODEL_FILE,
    FineTuneResult,
    FineTuneSettings,
    finetune,
    label_sample,
    replay_pool,
    replay_samples,
    split,
)

__all__ = [
    "MODEL_FILE",
    "FineTuneResult",
    "FineTuneSettings",
    "finetune",
    "label_sample",
    "replay_pool",
    "replay_samples",
    "split",
]
