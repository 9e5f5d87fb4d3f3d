"""The label set: one ASE database (SQLite) per labelling run, the only code that reads or writes it.

An ASE database because any ASE user can open it (``ase db labels.db``, ``ase.db.connect``) and every
row is a committed transaction: a labelling run killed at any moment keeps every finished label. The
plan (which crystals, why, on which cell, with what DFT settings) is the database's metadata, written
once before the first label, so a resumed run labels exactly the crystals it set out to.

Rows hold raw GPAW PBE total energies (eV per cell), forces (eV/Å) and stress (eV/Å^3, ASE's sign), and
the GPAW cohesive energy (eV/atom, against isolated atoms at the same settings); a crystal GPAW failed
on is a row with ``failed=True`` and the reason, so it is not retried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.errors import InputError
from upotbo.labels.select import Pick
from upotbo.potentials.base import to_tensor, to_voigt

DB_NAME = "labels.db"


@dataclass(frozen=True, eq=False)
class Label:
    """A finished label: the pick, and GPAW's answer for its cell (``error`` set when GPAW failed)."""

    pick: Pick
    energy: float = math.nan  # eV per cell
    forces: np.ndarray | None = None  # eV/Å
    stress: np.ndarray | None = None  # eV/Å^3, 3x3, ASE's sign (positive = tensile)
    ec: float = math.nan  # eV/atom
    seconds: float = math.nan
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class LabelSet:
    """``folder/labels.db``: the plan and the labels made so far."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / DB_NAME

    def exists(self) -> bool:
        return self.path.is_file()

    def plan(self) -> tuple[list[Pick], dict[str, Any]]:
        """(picks, settings) as written before the first label."""
        try:
            meta = self._db().metadata
        except Exception as exc:  # sqlite3.DatabaseError and friends: not a database at all
            raise InputError(f"{self.path} is not a readable ASE database ({exc}): remove it") from None
        if "plan" not in meta:
            raise InputError(f"{self.path} holds no label plan: it was not written by upotbo label")
        return [Pick.from_dict(d) for d in meta["plan"]], meta["settings"]

    def start(self, picks: list[Pick], settings: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db().metadata = {"plan": [p.to_dict() for p in picks], "settings": settings}

    def add(self, label: Label) -> None:
        """Commit one label (its own transaction)."""
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = AseAtomsAdaptor.get_atoms(label.pick.structure)
        keys: dict[str, Any] = {
            "name": label.pick.name,
            "reason": label.pick.reason,
            "trial": label.pick.trial,
            "failed": not label.ok,
            "seconds": label.seconds,
        }
        if label.ok:
            atoms.calc = SinglePointCalculator(
                atoms, energy=label.energy, forces=label.forces, stress=to_voigt(label.stress)
            )
            keys["ec_dft"] = label.ec
        else:
            keys["error"] = label.error
        self._db().write(atoms, key_value_pairs=keys, data={"upot": label.pick.upot})

    def labels(self) -> list[Label]:
        """Every stored label, in plan order."""
        picks = {p.name: p for p in self.plan()[0]}
        out = {}
        for row in self._db().select():
            pick = picks.get(row.get("name"))
            if pick is None:
                continue
            if row.get("failed"):
                out[pick.name] = Label(pick, seconds=row.get("seconds", math.nan), error=row.get("error"))
                continue
            out[pick.name] = Label(
                pick,
                energy=float(row.energy),
                forces=np.asarray(row.forces, dtype=float),
                stress=to_tensor(row.stress),
                ec=float(row.ec_dft),
                seconds=row.get("seconds", math.nan),
            )
        return [out[name] for name in picks if name in out]

    def _db(self):  # noqa: ANN202 - ase.db's database object
        import ase.db

        # a new connection per use: ase.db caches the metadata it read first and, on a new file,
        # forgets what was just written to it
        return ase.db.connect(str(self.path), type="db")
