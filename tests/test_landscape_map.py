"""`upotbo landscape` end to end with the real CHGNet: a 60-crystal Zr4C4 map, resume after a kill,
a search run placed on its landscape, and one-line errors for bad input."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from pymatgen.core import Composition

from upotbo.cli import main
from upotbo.landscape import draw, formula_map, pool_map
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.space import SearchSpace
from upotbo.storage import completed_records, load_existing, local_url

ENTRY = [sys.executable, "-m", "upotbo.cli", "landscape"]


def landscape_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*ENTRY, *args], capture_output=True, text=True, timeout=timeout)


def test_zr4c4_map_end_to_end(tmp_path, capsys):
    out = tmp_path / "map"
    code = main(
        [
            "landscape",
            "--formula",
            "Zr4C4",
            "--n",
            "60",
            "--batch-size",
            "20",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "estimate:" in stdout and "crystals/s" in stdout
    assert (out / "landscape.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "landscape.csv")))
    assert 55 <= len(rows) <= 60  # a slot fails only if 12 builds in a row fail
    assert {r["cell_formula"] for r in rows} == {"C4Zr4"}
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    values = np.array([float(r["E_c_eV_per_atom"]) for r in rows])
    assert np.ptp(xy[:, 0]) > 0 and np.ptp(xy[:, 1]) > 0
    assert -9.0 < values.min() < -4.0 and values.max() < 2.0  # random, unrelaxed Zr4C4 crystals
    for r in rows:
        assert (out / r["cif"]).exists() and int(r["spacegroup_number"]) >= 1
    best = rows[int(np.argmin(values))]
    assert f"lowest: Zr4C4 {best['spacegroup']} ({best['spacegroup_number']})" in stdout


def _stored_slots(db: Path) -> list[int]:
    try:
        with sqlite3.connect(db) as conn:
            return [
                int(v)
                for (v,) in conn.execute(
                    "select value_json from trial_user_attributes where key = 'slot' order by trial_id"
                )
            ]
    except sqlite3.OperationalError:  # the job has created the file but not its tables yet
        return []


@pytest.mark.slow  # ~1 min of a map killed and resumed; .ci/run runs it after the default suite
def test_resume_after_kill_loses_nothing(tmp_path, capsys):
    out = tmp_path / "map"
    args = ["--formula", "Zr2C2", "--n", "30", "--batch-size", "5", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(
        [*ENTRY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    db = out / "study.db"
    deadline = time.time() + 300
    while time.time() < deadline:
        if db.exists() and len(_stored_slots(db)) >= 10:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _stored_slots(db)
    assert 10 <= len(before) < 30, "the job should have been killed mid-way"
    resumed = landscape_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already stored" in resumed.stdout
    slots = _stored_slots(db)
    assert slots == list(range(30))  # every slot exactly once, in order: nothing lost, nothing repeated
    # and each stored crystal is the one an uninterrupted job draws for that slot
    study = load_existing(local_url(out))
    records = {r.number: r for r in completed_records(study)}
    trials = {t.user_attrs["slot"]: t for t in study.get_trials(deepcopy=False)}
    spec = formula_map("Zr2C2", 30, seed=0)
    for slot in (before[-1], before[-1] + 1, 29):
        _, (fresh,) = draw(spec, range(slot, slot + 1))
        stored = trials[slot]
        assert stored.params == fresh.trial.params
        if fresh.structure is not None and stored.number in records:
            assert np.allclose(records[stored.number].structure.frac_coords, fresh.structure.frac_coords)
    rows = list(csv.DictReader(open(out / "landscape.csv")))
    assert len(rows) == len(records)
    assert main(["landscape", *args]) == 2 and "add --resume" in capsys.readouterr().err


def test_search_run_on_its_landscape(chgnet, tmp_path, capsys):
    run = tmp_path / "run"
    space = SearchSpace.create("Zr,C", 2, 2, None)
    config = SearchConfig(n_init=8, relax_steps=5, batch_size=8, seed=0)
    Search(space, chgnet, CohesiveEnergy(), run, config).run(16)
    code = main(["landscape", "--run", str(run), "--n", "40", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = run / "landscape"
    assert (out / "run_on_landscape.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "run_points.csv")))
    scored = completed_records(load_existing(local_url(run)))
    assert sorted(int(r["step"]) for r in rows) == sorted(r.number for r in scored)
    background = optuna.load_study(study_name="upotbo", storage=local_url(out))
    assert background.user_attrs["settings"]["pool"] == ["Zr", "C"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formula", "Zr4Xx4"], "unknown element symbol 'Xx'"),
        (["--formula", "Zr40C40"], "1 to 12 atoms of each element"),
        (["--formula", "Zr4C4", "--n", "5"], "too few for a UMAP map"),
        (["--elements", "Zr,C", "--nchem", "1", "--per-point", "3"], "too few for a UMAP map"),
        (["--run", "/tmp"], "not an upotbo run directory"),
        (["--pool", "Zr,Qq"], "unknown element symbol 'Qq'"),
        (["--formula", "Zr4C4", "--property", "density"], "colour crystals by cohesive energy"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    code = main(["landscape", *args, "--out", str(tmp_path / "map"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("upotbo: error:"), err
    assert message in lines[0]
    assert not (tmp_path / "map").exists()  # refused before anything is written


@pytest.mark.parametrize("hint", [True, False])
def test_draw_gives_each_slot_its_cell_content_without_parameter_names(hint):
    """With ``hint=False`` nothing fixes the space's parameters by name (as if ``SearchSpace.suggest``
    had renamed them): rejection alone must still give every slot a crystal of its own content."""
    spec = pool_map("Zr,C", ncomp=2, nchem=2, per_point=2, seed=5)  # Zr-Zr, Zr-C, C-C x 4 stoichiometries
    _, drawn = draw(spec, range(spec.total), hint=hint)
    assert [d.slot for d in drawn] == list(range(spec.total))
    built = [d for d in drawn if d.structure is not None]
    assert len(built) >= spec.total - 1
    for d in built:
        species, counts = spec.cell_content(spec.point_of(d.slot))
        assert d.structure.composition == Composition(dict(zip(species, counts, strict=True)))
