"""Fine-tuning CHGNet on DFT labels (``upotbo finetune``): the training recipe (``train``) and the
command (``cli``). The saved model loads with ``--potential chgnet:/path/chgnet_finetuned.pth.tar``.
Names load on first use (``upotbo.lazy``)."""

from __future__ import annotations

from upotbo.lazy import lazy_names

__getattr__, __all__ = lazy_names(
    __name__,
    {
        "settings": "FineTuneSettings",
        "train": "MODEL_FILE FineTuneResult finetune label_sample replay_pool replay_samples split",
    },
)
