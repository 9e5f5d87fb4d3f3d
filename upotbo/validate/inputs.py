"""What to validate: the best crystals of a finished run, or CIF files; checked before any work starts.

Input problems (not a run directory, an unreadable CIF, overlapping atoms) are the user's to fix and
raise ``InputError``, so the CLI prints one line and exits 2 before anything is computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure

from upotbo.crystal.filters import covalent_radius
from upotbo.errors import InputError
from upotbo.report import ranked
from upotbo.storage import Objective, Record, RunDirectory, completed_records

OVERLAP_FACTOR = 0.5  # atoms closer than half the sum of their covalent radii overlap


@dataclass(frozen=True)
class Crystal:
    """One crystal to validate; ``value_found`` is E_c (eV/atom) as the search scored it, if known;
    ``found`` (header, value) the run's objective as the search scored it, when that is not E_c."""

    name: str
    structure: Structure
    value_found: float | None = None
    found: tuple[str, float] | None = None


def check_overlap(structure: Structure, source: str) -> None:
    """Raise ``InputError`` when two atoms sit on top of each other (no potential can score that)."""
    radii = np.array([covalent_radius(site.specie.symbol) for site in structure])
    centers, neighbors, _, distances = structure.get_neighbor_list(OVERLAP_FACTOR * 2 * radii.max())
    if len(distances):
        limit = OVERLAP_FACTOR * (radii[centers] + radii[neighbors])
        bad = np.flatnonzero(distances < limit)
        if len(bad):
            k = bad[np.argmin(distances[bad])]
            i, j = centers[k], neighbors[k]
            raise InputError(
                f"{source}: atoms {i} ({structure[i].specie}) and {j} ({structure[j].specie}) overlap "
                f"({distances[k]:.2f} Å apart, minimum {limit[k]:.2f} Å): fix the structure"
            )


def from_cifs(paths: list[str]) -> list[Crystal]:
    crystals, names = [], set()
    for path in paths:
        try:
            structure = Structure.from_file(path)
        except FileNotFoundError:
            raise InputError(f"CIF file {path!r} does not exist") from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot read CIF {path!r} ({first}): pass a valid CIF file") from None
        if not structure.is_ordered:
            raise InputError(f"{path}: partial occupancies are not supported: pass an ordered structure")
        check_overlap(structure, path)
        name = _safe(Path(path).stem)
        while name in names:
            name += "_"
        names.add(name)
        crystals.append(Crystal(name, structure))
    return crystals


def from_run(
    run_dir: str | Path, top: int, per_composition: int = 1
) -> tuple[list[Crystal], list, str | None]:
    """The ``per_composition`` best crystals of each of the ``top`` best compositions, every scored
    crystal of the run as (composition, energy eV/cell, label) for the convex hull, and the name of
    the potential the run was scored with (None if the run does not say)."""
    run = RunDirectory.open(run_dir)
    records = completed_records(run.study())
    if not records:
        raise InputError(f"run {str(run_dir)!r} has no scored crystals yet: run the search first")
    objective = run.objective
    crystals = []
    for rank, best in enumerate(ranked(records, run.objectives, top, run.structure_search), start=1):
        others = sorted((r for r in records if r.formula == best.formula and r is not best),
                        key=lambda r: objective.sign * r.value)
        for k, record in enumerate([best, *others][:per_composition]):
            crystals.append(_from_record(record, rank, k, objective))
    entries = [
        (Composition(r.cell_formula), r.energy, f"step {r.number}") for r in records if np.isfinite(r.energy)
    ]
    return crystals, entries, run.settings.get("potential")


def _from_record(record: Record, rank: int, k: int, objective: Objective) -> Crystal:
    """A run's crystal, with its value as the search found it: E_c when the run optimised it, else the
    run's own objective (its E_c is then the potential's single point on the stored crystal)."""
    name = f"{rank:02d}_{record.cell_formula}{f'_{k + 1}' if k else ''}"
    if objective.name == "cohesive_energy":
        return Crystal(name, record.structure, record.value)
    header = f"{objective.label} as found ({objective.unit})"
    return Crystal(name, record.structure, found=(header, record.value))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "crystal"
