"""Run storage: what a run stores (``run_record``) in an optuna study, SQLite by default (``study_db``),
shared by many processes through the ``ledger``."""

from upotbo.storage.run_record import (
    FailStage,
    Objective,
    Record,
    RunDirectory,
    completed_records,
    local_url,
    step_elements,
)
from upotbo.storage.study_db import load_existing, open_study, prepare_out_dir

__all__ = [
    "FailStage",
    "Objective",
    "Record",
    "RunDirectory",
    "completed_records",
    "load_existing",
    "local_url",
    "open_study",
    "prepare_out_dir",
    "step_elements",
]
