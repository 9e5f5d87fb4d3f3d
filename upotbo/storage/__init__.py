"""Run storage: an optuna study in SQLite (default) or any SQLAlchemy URL; plain records for readers."""

from upotbo.storage.records import Record, completed_records, step_elements
from upotbo.storage.study_db import (
    load_existing,
    open_study,
    prepare_out_dir,
    resolve_run,
    storage_url,
)

__all__ = [
    "Record",
    "completed_records",
    "load_existing",
    "open_study",
    "prepare_out_dir",
    "resolve_run",
    "step_elements",
    "storage_url",
]
