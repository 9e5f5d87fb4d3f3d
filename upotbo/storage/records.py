"""Plain records of a run's trials, read back from the study database for reports and analysis."""

from __future__ import annotations

import json
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from pymatgen.core import Structure


@dataclass(frozen=True)
class Record:
    """One scored crystal: the step it was found at, its property value and its structure."""

    number: int
    value: float
    formula: str
    cell_formula: str
    natoms: int
    spacegroup: str
    spacegroup_number: int
    initial_value: float
    structure_json: str
    elements: tuple[str, ...]

    @property
    def structure(self) -> Structure:
        return Structure.from_dict(json.loads(self.structure_json))


def completed_records(study: optuna.Study) -> list[Record]:
    """All COMPLETE trials, in trial order."""
    records = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        records.append(
            Record(
                number=t.number,
                value=float(t.value),
                formula=a["formula"],
                cell_formula=a["cell_formula"],
                natoms=int(a["natoms"]),
                spacegroup=a["spacegroup"],
                spacegroup_number=int(a["spacegroup_number"]),
                initial_value=float(a["initial_value"]),
                structure_json=a["structure"],
                elements=tuple(a["elements"]),
            )
        )
    return records


def step_elements(study: optuna.Study) -> list[tuple[int, tuple[str, ...], bool]]:
    """(trial number, elements tried, scored?) for every stored trial: what each step explored."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        rows.append((t.number, tuple(t.user_attrs.get("drawn", ())), t.state == TrialState.COMPLETE))
    return rows
