"""A small per-user cache of results that depend only on an element and the settings (GPAW isolated
atoms, relaxed elemental references): ``$UPOTBO_CACHE`` or ``~/.cache/upotbo``, one JSON file each.

Computing them costs minutes per element and their answer never changes for the same key, so every
validation after the first reuses them. Writes are atomic (a temp file renamed over the old one). It
lives outside ``validate`` and ``dft`` because both use it and neither should depend on the other's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("UPOTBO_CACHE", Path.home() / ".cache" / "upotbo"))


def lookup(name: str, key: str) -> Any | None:
    """The value stored under ``key`` in cache file ``name`` (None if absent or unreadable)."""
    path = cache_dir() / name
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError):
        return None


def store(name: str, key: str, value: Any) -> None:
    path = cache_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = value
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)
