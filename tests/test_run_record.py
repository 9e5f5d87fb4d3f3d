"""The run record: settings round trip, old run directories, bad files, the crystal record, fail stages."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import rocksalt
from optuna.trial import TrialState

from upotbo.errors import InputError
from upotbo.optuna_adapter import tell
from upotbo.properties import CohesiveEnergy
from upotbo.storage import FailStage, Objective, Record, RunDirectory, completed_records, local_url
from upotbo.storage.run_record import (
    describe_crystal,
    identity_mismatch,
    is_step,
    mark_failed,
    scored_attrs,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
SETTINGS = {"pool": ["C", "Zr"], "ncomp": 2, "nchem": 2, "max_atoms": 4, "potential": "chgnet:0.3.0"}


def test_fail_stages_keep_the_strings_older_runs_stored():
    assert [str(s) for s in FailStage] == ["build", "score", "embed", "lost", "crash", "unused"]
    assert json.dumps(FailStage.LOST) == '"lost"'


def test_settings_round_trip_and_objective(tmp_path):
    prop = CohesiveEnergy()
    settings = {**SETTINGS, "property": prop.name, "unit": prop.unit, "direction": "maximize", "label": "X"}
    run, study = RunDirectory.start(tmp_path / "run", settings)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    opened = RunDirectory.open(tmp_path / "run")
    assert opened.settings == settings and opened.url == local_url(tmp_path / "run")
    assert opened.objective == Objective("cohesive_energy", "eV/atom", "maximize", "X")
    assert opened.objective.better(2.0, 1.0) and opened.objective.reached(2.0, 2.0)
    assert opened.study().user_attrs["settings"] == settings


def test_a_run_directory_from_before_the_direction_was_stored_still_opens(tmp_path):
    """Older runs stored neither direction nor label nor (landscape maps) every attr: cohesion, minimized."""
    (tmp_path / "settings.json").write_text(json.dumps({**SETTINGS, "property": "cohesive_energy"}))
    study = optuna.create_study(study_name="upotbo", storage=local_url(tmp_path))
    attrs = describe_crystal(rocksalt("Zr", "C", 4.7))
    trial = study.ask()
    for key, value in {**attrs, "cell_formula": "Zr1C1", "initial_value": -7.0}.items():
        trial.set_user_attr(key, value)
    study.tell(trial, -7.5)
    run = RunDirectory.open(tmp_path)
    assert run.objective == Objective("cohesive_energy", "eV/atom", "minimize", "E_c")
    (record,) = completed_records(run.study())
    assert record.value == -7.5 and record.spacegroup_number == 225 and record.energy != record.energy  # NaN


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "lacks pool"),
        (json.dumps({"pool": ["C"]}), "lacks ncomp, nchem, max_atoms"),
        (b"\xff\xfe\x00", "is not valid JSON"),
    ],
)
def test_a_bad_settings_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "settings.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as info:
        RunDirectory.open(tmp_path)
    assert "\n" not in str(info.value)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(InputError, match="is not an upotbo run directory"):
        RunDirectory.open(tmp_path / "missing")


def test_the_crystal_record_round_trips_through_trial_attributes():
    structure = rocksalt("Zr", "C", 4.7)
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr("cell_formula", "Zr4C4")
    for key, value in scored_attrs(describe_crystal(structure), -74.1, -7.2, 12).items():
        trial.set_user_attr(key, value)
    tell(study, trial, -7.88)
    failed = study.ask()
    mark_failed(study, failed, FailStage.BUILD, "no room for 9 atoms")
    good, bad = study.get_trials(deepcopy=False)
    record = Record.from_trial(good)
    assert (record.value, record.energy, record.initial_value) == (-7.88, -74.1, -7.2)
    assert (record.formula, record.spacegroup, record.elements) == ("ZrC", "Fm-3m", ("C", "Zr"))
    assert record.structure == structure
    assert bad.state == TrialState.FAIL and bad.user_attrs["fail_stage"] == "build" and is_step(bad)


def test_identity_mismatch_names_each_difference():
    assert identity_mismatch(SETTINGS, dict(SETTINGS)) is None
    text = identity_mismatch(SETTINGS, {**SETTINGS, "nchem": 3, "potential": "chgnet:0.2.0"})
    assert text == "nchem: stored 2 vs given 3, potential: stored 'chgnet:0.3.0' vs given 'chgnet:0.2.0'"
    # runs stored before the optimizer was a setting relaxed with FIRE
    assert identity_mismatch(SETTINGS, {**SETTINGS, "optimizer": "fire"}) is None
    text = identity_mismatch(SETTINGS, {**SETTINGS, "optimizer": "bfgs"})
    assert text == "optimizer: stored 'fire' vs given 'bfgs'"


def test_a_refused_start_leaves_the_disk_as_it_found_it(tmp_path):
    with pytest.raises(InputError, match="nothing to resume"):
        RunDirectory.start(tmp_path / "new" / "run", SETTINGS, resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing to resume"):
        RunDirectory.start(tmp_path / "empty", SETTINGS, resume=True)
    with pytest.raises(InputError, match="--join needs a database server"):
        RunDirectory.start(tmp_path / "joined" / "run", SETTINGS, join=True)
    RunDirectory.start(tmp_path / "taken", SETTINGS)
    before = (tmp_path / "taken" / "study.db").read_bytes()
    with pytest.raises(InputError, match="a study already exists"):
        RunDirectory.start(tmp_path / "taken", SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken"]
    assert list((tmp_path / "empty").iterdir()) == []
    assert (tmp_path / "taken" / "study.db").read_bytes() == before


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (bytes(range(256)) * 40, "is not a SQLite")])
def test_an_empty_or_corrupt_study_database_is_refused_untouched(tmp_path, content, message):
    (tmp_path / "settings.json").write_text(json.dumps(SETTINGS))
    (tmp_path / "study.db").write_bytes(content)
    attempts = (lambda: RunDirectory.open(tmp_path).study(), lambda: RunDirectory.start(tmp_path, SETTINGS))
    for attempt in attempts:
        with pytest.raises(InputError, match=message) as info:
            attempt()
        assert "not a readable study database" in str(info.value)
    assert (tmp_path / "study.db").read_bytes() == content


def test_one_writer_per_run_directory_and_a_dead_holder_is_taken_over(tmp_path):
    """A live process holding the run is named in the refusal; once it is killed (-9), its lock is free."""
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, pathlib; from upotbo.storage.lock import hold_run_lock; "
         f"hold_run_lock(pathlib.Path({str(run)!r})); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by host \S+ pid {holder.pid}: .*--join") as info:
            RunDirectory.start(run, SETTINGS)
        assert "\n" not in str(info.value) and sorted(p.name for p in run.iterdir()) == [".upotbo.lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    RunDirectory.start(run, SETTINGS)  # the stale lock is taken over
    assert (run / "study.db").exists()
