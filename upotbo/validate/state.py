"""Resumable validation state: one JSON file, rewritten atomically after every finished step.

Each crystal's steps (relax, phonons, dft) are stored with the settings they were made with; a rerun
skips a step whose stored settings match and redoes it when they changed. A crystal whose step failed
keeps the reason (also skipped on rerun unless its settings changed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class State:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("crystals", {})
        self.data.setdefault("references", {})

    def crystal(self, name: str) -> dict[str, Any]:
        return self.data["crystals"].setdefault(name, {})

    def done(self, name: str, step: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The stored result of ``step`` for ``name`` if it was made with ``settings``."""
        stored = self.crystal(name).get(step)
        return stored if stored is not None and stored.get("settings") == settings else None

    def put(self, name: str, step: str, settings: dict[str, Any], result: dict[str, Any]) -> None:
        self.crystal(name)[step] = {"settings": settings, **result}
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=float))
        tmp.replace(self.path)
