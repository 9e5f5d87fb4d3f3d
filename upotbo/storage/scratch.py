"""A throw-away database on a PostgreSQL server, for tests and benchmarks that need a fresh study."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy

from upotbo.storage import study_db


@contextmanager
def scratch_database(server_url: str, prefix: str = "upotbo_scratch") -> Iterator[str]:
    """Create a new database next to the one ``server_url`` names; yield its URL; drop it after.

    The role in ``server_url`` needs CREATEDB (``.ci/run`` grants it).
    """
    url = sqlalchemy.engine.make_url(study_db.server_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
