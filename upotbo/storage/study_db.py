"""The run's database: an ordinary optuna study (SQLite file by default, any SQLAlchemy URL otherwise).

Opening, creating and continuing it, with one clear line for every way that can go wrong. What the
study holds is ``upotbo.storage.run_record``'s to say.
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from upotbo.errors import InputError
from upotbo.storage.run_record import identity_mismatch

STUDY_NAME = "upotbo"


def prepare_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"output directory {str(out_dir)!r} is not writable ({exc.strerror}): pass --out to a "
            f"folder you can write"
        ) from exc


def server_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; the ``upotbo[postgres]`` extra (and many
    clusters) provide psycopg2, so a plain URL is pointed at whichever of the two is importable.
    """
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _rdb(url: str) -> optuna.storages.RDBStorage:
    """Open the database behind ``url``; a bad or unreachable URL is the user's to fix (InputError)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:  # a server: drop connections the server or a firewall closed while a batch was scored
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    try:
        return _create_tables_once(server_url(url), kwargs)
    except (
        ImportError,
        ValueError,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    ) as exc:
        driver = isinstance(exc, ImportError) or "NoSuchModule" in type(exc).__name__
        hint = (
            "install its driver (PostgreSQL: pip install psycopg2-binary, or 'psycopg[binary]')"
            if driver
            else "check the URL (e.g. postgresql://user:password@host:5432/dbname), that the server is "
            "running and reachable, and that the database exists"
        )
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot open storage {display_url(url)} ({reason[:160]}): {hint}") from None


def _create_tables_once(url: str, kwargs: dict[str, Any], attempts: int = 6) -> optuna.storages.RDBStorage:
    """``RDBStorage`` creates optuna's tables on first use; processes of a Slurm array starting together
    on an empty database race to do so and all but one hit a duplicate-key error. They wait a moment
    and open the database again, finding the tables made."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            if attempt == attempts - 1 or not _creation_race(exc):
                raise
            time.sleep(0.5 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")


def _creation_race(exc: Exception) -> bool:
    text = str(exc)
    return any(
        key in text for key in ("already exists", "duplicate key", "UniqueViolation", "DuplicateTable")
    )


def open_study(url: str, settings: dict[str, Any], resume: bool, join: bool = False) -> optuna.Study:
    """Create a new study, or continue one after checking it was made with the same settings.

    ``join``: several processes share the study (create it if missing, else continue it); that needs
    a database server, since SQLite cannot lock the rows that keep trial numbers unique.
    """
    if join and url.startswith("sqlite"):
        raise InputError(
            "--join needs a database server shared by all processes: pass --storage "
            "postgresql://user:password@host/dbname (SQLite serves one process; use --workers for more cores)"
        )
    storage = _rdb(url)
    direction = settings.get("direction", "minimize")
    exists = STUDY_NAME in optuna.get_all_study_names(storage)
    if join and not exists:
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=storage, direction=direction, load_if_exists=True
        )
        if "settings" not in study.user_attrs:
            study.set_user_attr("settings", settings)
    if resume or join:
        if not exists and not join:
            raise InputError(
                f"nothing to resume: no upotbo study in {display_url(url)}; drop --resume to start one"
            )
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        stored = _wait_for_settings(study)
        details = identity_mismatch(stored, settings)
        if details:
            raise InputError(
                f"cannot {'join' if join else 'resume'} with different settings ({details}): "
                f"repeat the original options"
            )
        return study
    if exists:
        raise InputError(
            f"a study already exists in {display_url(url)}: add --resume to continue it or choose "
            f"another --out"
        )
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction=direction)
    study.set_user_attr("settings", settings)
    return study


def _wait_for_settings(study: optuna.Study, seconds: float = 30.0) -> dict[str, Any]:
    """The study's settings; a process joining at the same moment as the creator may wait a little."""
    deadline = time.monotonic() + seconds
    while "settings" not in (attrs := study.user_attrs) and time.monotonic() < deadline:
        time.sleep(0.5)
    return attrs.get("settings", {})


def load_existing(url: str) -> optuna.Study:
    storage = _rdb(url)
    if STUDY_NAME not in optuna.get_all_study_names(storage):
        raise InputError(f"no upotbo study in {display_url(url)}: point at the --out folder of a search")
    return optuna.load_study(study_name=STUDY_NAME, storage=storage)


def display_url(url: str) -> str:
    """The URL as shown to users: a SQLite path, or a server URL without its password."""
    if url.startswith("sqlite"):
        return url.replace("sqlite:///", "")
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('@')[-1]}" if rest else url
