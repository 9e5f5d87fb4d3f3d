"""What a run stores, in one place: its settings, each crystal's record, why a trial failed, its folder.

Every writer (the search, landscape maps) and every reader (report, validate, landscape ``--run``)
goes through this module, so the layout below is written and read the same way everywhere.

A run directory holds ``settings.json`` (a copy of the study's ``settings`` user attr) and, unless
``--storage`` names a server, ``study.db``: an ordinary optuna study named ``upotbo`` (optuna-dashboard
opens it as is). The study's direction is the property's.
- ``settings``: the space (pool, ncomp, nchem, max_atoms, scale, parameters; a structure search of one
  composition: formula, max_z, max_atoms, pool, parameters), the potential, the
  property with its unit, direction and label, the relaxation, the sampler; ``IDENTITY_KEYS`` are
  what ``--resume``/``--join`` check, so a study is only ever continued with the settings that made it.
- A COMPLETE trial's value is the property (its unit in the settings); its user attrs are a
  ``Record``: the scored (relaxed) crystal as pymatgen JSON (``structure``), ``formula``,
  ``cell_formula``, ``natoms``, ``elements``, ``spacegroup``, ``spacegroup_number``, ``energy`` (the
  potential's total energy, eV/cell), ``initial_value``, ``relax_steps``, ``seconds``; landscape maps
  add ``slot`` and ``embedding``; Pareto and constrained runs ``properties`` (each further objective's
  and constrained property's value, or why it has none; runs before it named it ``constraints``) and
  ``violation`` (0 = feasible). ``drawn`` (elements tried) is on every trial.
- A Pareto search's further objectives are ``objectives`` in the settings (name, unit, direction,
  label each); the trial's value is the first objective, so the study stays single-objective for
  optuna and optuna-dashboard, and the front is read from the records.
- A FAIL trial carries ``fail_stage`` (a ``FailStage``) and ``fail_reason``.
- A solo search stores trials only once finished, so a kill never leaves one RUNNING. A ``--join``
  run reserves its batch RUNNING (with a heartbeat) before building it; a RUNNING trial whose
  process died is failed as ``lost`` and retried as a WAITING copy (``upotbo.storage.ledger``).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.cells import SYMPREC
from upotbo.errors import InputError
from upotbo.optuna_adapter import tell
from upotbo.storage.lock import hold_run_lock, release_run_lock

if TYPE_CHECKING:
    from upotbo.potentials.base import Potential
    from upotbo.properties.base import Property
    from upotbo.space.space import SearchSpace

SETTINGS_FILE = "settings.json"
DB_NAME = "study.db"
SQLITE_HEADER = b"SQLite format 3\x00"
# Settings that define the search; resuming with different values would mix two experiments.
IDENTITY_KEYS = (
    "formula", "max_z", "pool", "ncomp", "nchem", "max_atoms", "scale", "parameters", "potential", "property",
    "direction", "constraints", "objectives", "relax_steps", "fmax", "optimizer",
)
# what runs that did not store them meant
IDENTITY_DEFAULTS: dict[str, Any] = {
    "direction": "minimize", "constraints": [], "objectives": [], "optimizer": "fire",
}


class FailStage(StrEnum):
    """Why a trial is FAIL (stored as its plain string in ``fail_stage``)."""

    BUILD = "build"  # no crystal could be drawn or built for the candidate
    SCORE = "score"  # the potential or the property failed, or gave an implausible value
    EMBED = "embed"  # landscape maps: no embedding vector for the crystal
    LOST = "lost"  # its process died while it ran; a WAITING retry carries its parameters (not a step)
    CRASH = "crash"  # lost too many times: not retried again
    UNUSED = "unused"  # asked but never run, the step budget was taken by other processes (not a step)


NOT_STEPS = (FailStage.LOST, FailStage.UNUSED)


def is_step(trial: FrozenTrial) -> bool:
    """A finished outcome that counts as a search step (a lost-and-retried or unused trial does not)."""
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_stage") not in NOT_STEPS


def mark_failed(study: optuna.Study, trial: optuna.Trial, stage: FailStage, reason: str) -> None:
    """Finish ``trial`` as FAIL with its stage and reason (what every writer records for a failure)."""
    trial.set_user_attr("fail_stage", str(stage))
    trial.set_user_attr("fail_reason", reason)
    tell(study, trial, state=TrialState.FAIL)


# -- settings ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """What a run's values mean: the property's name, unit, direction and the label tables show."""

    name: str
    unit: str
    direction: str  # "minimize" or "maximize"
    label: str

    @property
    def sign(self) -> int:
        """+1 where lower is better, -1 where higher is: ``sign * value`` sorts best first."""
        return 1 if self.direction == "minimize" else -1

    def better(self, a: float, b: float) -> bool:
        """``a`` is strictly better than ``b``."""
        return self.sign * a < self.sign * b

    def reached(self, value: float, target: float) -> bool:
        """``value`` is at least as good as ``target``."""
        return self.sign * value <= self.sign * target

    def loss(self, value: float) -> float:
        """The value made lower-is-better."""
        return self.sign * value

    @property
    def header(self) -> str:
        """The column header tables and plots give it: label and unit."""
        return f"{self.label} ({self.unit})"

    def as_setting(self) -> dict[str, str]:
        return {"name": self.name, "unit": self.unit, "direction": self.direction, "label": self.label}

    @classmethod
    def of(cls, prop: Property) -> Objective:
        return cls(prop.name, prop.unit, prop.direction, prop.label)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Objective:
        """Runs made before the direction and label were stored optimised cohesive energy, minimized."""
        return cls(
            settings.get("property", "cohesive_energy"),
            settings.get("unit", "eV/atom"),
            settings.get("direction", "minimize"),
            settings.get("label", "E_c"),
        )


def objectives_of(settings: dict[str, Any]) -> list[Objective]:
    """A run's objectives: the first (the trials' value), then a Pareto search's further ones."""
    further = [
        Objective(o["name"], o["unit"], o["direction"], o["label"]) for o in settings.get("objectives", [])
    ]
    return [Objective.from_settings(settings), *further]


def run_settings(
    space: SearchSpace, potential: Potential, prop: Property, relax_steps: int, fmax: float, **extra: Any
) -> dict[str, Any]:
    """The settings a run records: the identity that ``--resume`` checks, then ``extra``.

    One builder for searches and landscape maps, so both store (and are resumed on) the same keys.
    """
    return {
        **space.settings(),
        "potential": potential.name,
        "property": prop.name,
        "unit": prop.unit,
        "direction": prop.direction,
        "label": prop.label,
        "relax_steps": relax_steps,
        "fmax": fmax,
        **extra,
    }


def identity_mismatch(stored: dict[str, Any], given: dict[str, Any]) -> str | None:
    """What differs between two runs' identities (None: the same experiment)."""
    stored, given = {**IDENTITY_DEFAULTS, **stored}, {**IDENTITY_DEFAULTS, **given}
    diff = [k for k in IDENTITY_KEYS if stored.get(k) != given.get(k)]
    if not diff:
        return None
    return ", ".join(f"{k}: stored {stored.get(k)!r} vs given {given.get(k)!r}" for k in diff)


# -- the crystal record ------------------------------------------------------------------------------


def describe_crystal(structure: Structure) -> dict[str, Any]:
    """The user attrs that describe a crystal (made off the main process where it can be)."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
        symbol, number = sga.get_space_group_symbol(), sga.get_space_group_number()
    except Exception:  # spglib can fail on distorted cells; the crystal is still valid
        symbol, number = "P1", 1
    return {
        "formula": structure.composition.reduced_formula,
        "natoms": len(structure),
        "elements": sorted({el.symbol for el in structure.composition.elements}),
        "spacegroup": symbol,
        "spacegroup_number": number,
        "structure": json.dumps(structure.as_dict()),
    }


def scored_attrs(
    description: dict[str, Any],
    energy: float,
    initial_value: float,
    relax_steps: int,
    properties: dict[str, float | str] | None = None,
    violation: float = 0.0,
) -> dict[str, Any]:
    """A scored crystal's user attrs: its description plus what the potential said of it (and, in a
    Pareto or constrained run, each further property's value or why it has none, and the violation)."""
    attrs = {**description, "energy": energy, "initial_value": initial_value, "relax_steps": relax_steps}
    if properties:
        attrs.update(properties=properties, violation=violation)
    return attrs


@dataclass(frozen=True)
class Record:
    """One scored crystal: the step it was found at, its property value, its energy and structure."""

    number: int
    value: float
    energy: float  # the potential's total energy, eV/cell (NaN in runs that did not store it)
    formula: str
    cell_formula: str
    natoms: int
    spacegroup: str
    spacegroup_number: int
    initial_value: float
    structure_json: str
    elements: tuple[str, ...]
    violation: float = 0.0  # summed over the run's constraints; 0 = feasible
    properties: dict[str, float | str] = field(default_factory=dict)  # further objectives, constrained

    @property
    def feasible(self) -> bool:
        return self.violation == 0.0

    def values(self, objectives: list[Objective]) -> list[float]:
        """The record's value of each of the run's ``objectives`` (the first is the trial's value; NaN
        where one is missing)."""
        further = [self.properties.get(o.name, math.nan) for o in objectives[1:]]
        return [self.value, *(math.nan if isinstance(v, str) else float(v) for v in further)]

    @property
    def structure(self) -> Structure:
        return Structure.from_dict(json.loads(self.structure_json))

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> Record:
        a = trial.user_attrs
        energy = a.get("energy")
        return cls(
            number=trial.number,
            value=float(trial.value),
            energy=float(energy) if energy is not None else math.nan,
            formula=a["formula"],
            cell_formula=a["cell_formula"],
            natoms=int(a["natoms"]),
            spacegroup=a["spacegroup"],
            spacegroup_number=int(a["spacegroup_number"]),
            initial_value=float(a["initial_value"]),
            structure_json=a["structure"],
            elements=tuple(a["elements"]),
            violation=float(a.get("violation", 0.0)),
            properties=dict(a.get("properties", a.get("constraints", {}))),
        )


def completed_records(study: optuna.Study) -> list[Record]:
    """All COMPLETE trials as records, in trial order."""
    return [Record.from_trial(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def step_elements(study: optuna.Study) -> list[tuple[int, tuple[str, ...], bool]]:
    """(trial number, elements tried, scored?) for every stored trial: what each step explored."""
    return [
        (t.number, tuple(t.user_attrs.get("drawn", ())), t.state == TrialState.COMPLETE)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    ]


# -- the run directory -------------------------------------------------------------------------------


def write_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def local_url(out_dir: Path) -> str:
    """The SQLite database of a run directory."""
    return f"sqlite:///{(out_dir / DB_NAME).resolve()}"


@dataclass(frozen=True)
class RunDirectory:
    """A run's folder, opened for reading: its settings, where its study is, and what it found."""

    path: Path
    settings: dict[str, Any]

    @classmethod
    def open(cls, run_dir: str | Path) -> RunDirectory:
        """Read ``settings.json``; anything that is not a run directory is refused with one line."""
        path = Path(run_dir)
        file = path / SETTINGS_FILE
        if not path.is_dir() or not file.is_file():
            raise InputError(
                f"{str(path)!r} is not an upotbo run directory (no {SETTINGS_FILE}): pass the --out "
                f"folder of a search"
            )
        try:
            settings = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{file} is not valid JSON ({exc}): restore it from the study (optuna study user attr "
                f"'settings') or rerun the search"
            ) from None
        required: tuple[str, ...] = ("pool", "ncomp", "nchem", "max_atoms")
        if isinstance(settings, dict) and "formula" in settings:  # a structure search of one formula
            required = ("pool", "formula", "max_z", "max_atoms")
        missing = [k for k in required if k not in settings] if isinstance(settings, dict) else required
        if missing:
            raise InputError(f"{file} lacks {', '.join(missing)}: it was not written by upotbo")
        return cls(path, settings)

    @classmethod
    def start(
        cls,
        out_dir: str | Path,
        settings: dict[str, Any],
        storage: str | None = None,
        resume: bool = False,
        join: bool = False,
    ) -> tuple[RunDirectory, optuna.Study]:
        """Open a run for writing: create (or, with ``resume``/``join``, continue) its study, checked
        against ``settings``, and record the settings beside it. A refused start leaves the disk as
        it found it: no new folder, no empty database."""
        from upotbo.storage.study_db import open_study, prepare_out_dir

        path = Path(out_dir)
        db = path / DB_NAME
        if storage is None:
            if resume and not db.exists():
                raise InputError(f"nothing to resume: no {DB_NAME} in {str(path)!r}; drop --resume to start")
            check_database_file(db, missing_ok=True)
        first_new = None  # the outermost folder this call creates
        for folder in (path, *path.parents):
            if folder.exists():
                break
            first_new = folder
        new_db = storage is None and not db.exists()
        prepare_out_dir(path)
        took, new_lock = False, False
        try:
            if storage is None:
                took, new_lock = hold_run_lock(path)
            study = open_study(storage or local_url(path), settings, resume, join=join)
        except BaseException:
            if took:
                release_run_lock(path, remove=new_lock)
            if first_new is not None:
                shutil.rmtree(first_new, ignore_errors=True)
            elif new_db:
                db.unlink(missing_ok=True)
            raise
        write_settings(path, settings)
        return cls(path, settings), study

    @property
    def url(self) -> str:
        """The study's database: the server a ``--storage`` run named, else the folder's SQLite file."""
        return self.settings.get("storage") or local_url(self.path)

    @property
    def structure_search(self) -> bool:
        """A fixed-composition search (``--formula``): its answer is distinct structures."""
        return "formula" in self.settings

    @property
    def objective(self) -> Objective:
        return Objective.from_settings(self.settings)

    @property
    def objectives(self) -> list[Objective]:
        return objectives_of(self.settings)

    def study(self) -> optuna.Study:
        from upotbo.storage.study_db import load_existing

        if not self.settings.get("storage"):
            check_database_file(self.path / DB_NAME)
        return load_existing(self.url)


def check_database_file(db: Path, missing_ok: bool = False) -> None:
    """Refuse a run database that is missing, empty or not SQLite before anything opens it (opening
    one would write optuna's tables into it)."""
    if not db.exists():
        if missing_ok:
            return
        raise InputError(f"{db} does not exist: the run's study database is missing (pass a search's --out)")
    with open(db, "rb") as fh:
        header = fh.read(16)
    if header != SQLITE_HEADER:
        state = "is empty" if not header else "is not a SQLite database"
        raise InputError(
            f"{db} {state}, so not a readable study database (truncated or overwritten?): restore it "
            f"from a copy, or start a new run in another --out"
        )
