"""``upotbo refine``: rounds of labels, fine-tuning and re-ranking on a real run. The loop tests are
slow (CI's slow step, ~3 min): SevenNet-0 (a real potential) is the teacher there, standing in for
GPAW, which is installed only in CI's DFT step; the GPAW test runs the command at a low cutoff."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import run_main, small_search
from upotbo.errors import InputError
from upotbo.finetune import FineTuneSettings
from upotbo.labels import LabelSet, PotentialLabeller, label_run
from upotbo.potentials import load_potential
from upotbo.refine import RefineSettings, contenders, refine


@pytest.fixture(scope="module")
def zrcn_run(tmp_path_factory):
    """A real 40-step Zr-C-N search."""
    return small_search(tmp_path_factory.mktemp("refine") / "run", "Zr,C,N", "2", 40, 16)


@pytest.fixture
def run_dir(zrcn_run, tmp_path):
    """A copy of the run per test (a refinement writes into the run's folder)."""
    return shutil.copytree(zrcn_run, tmp_path / "run")


def _settings(**kw) -> RefineSettings:
    training = FineTuneSettings(
        epochs=kw.pop("epochs", 2), learning_rate=kw.pop("lr", 3e-3), replay=6, holdout=0.0
    )
    return RefineSettings(**{"rounds": 2, "k": 3, "top": 3, "training": training, **kw})


def _files(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_two_rounds_resume_and_refusal(run_dir, chgnet):
    pytest.importorskip("sevenn")
    teacher = PotentialLabeller(load_potential("sevenn"))
    logs: list[str] = []
    result = refine(run_dir, chgnet, [], _settings(every_round=True), teacher, log=logs.append)
    assert [r.number for r in result.rounds] == [1, 2] and result.stopped == "2 round(s) done"

    # round 1 labels the run's best compositions (the set `upotbo label` makes); round 2 the next best
    best = contenders(run_dir, 6)
    first = LabelSet(run_dir / "labels").labels()
    second = LabelSet(run_dir / "refine" / "round2" / "labels").labels()
    assert [x.pick.trial for x in first] == [c.trial for c in best[:3]]
    assert second[0].pick.reason == "top" and second[0].pick.trial == best[3].trial
    assert {x.pick.trial for x in first}.isdisjoint(x.pick.trial for x in second)
    assert [r.labels for r in result.rounds] == [3, 3]

    # each round's model loads as a potential; the report has every potential and the teacher
    for r in result.rounds:
        assert r.model.is_file() and load_potential(f"chgnet:{r.model}").energies([best[0].structure])
        assert sorted(r.ranking) == sorted(c.formula for c in best[:3])
    teacher_ec = {x.pick.trial: x.ec for x in first}
    for c, row in zip(best[:3], result.rows, strict=True):
        assert row["ec:SevenNet-7net-0"] == pytest.approx(teacher_ec[c.trial])
        assert {"ec:CHGNet-0.3.0", "ec:fine-tuned (round 2)"} <= set(row)
    assert any(line.startswith("winner under SevenNet-7net-0") for line in result.summary)
    report = (run_dir / "refine" / "report.md").read_text()
    assert "E_c fine-tuned (round 2) (eV/atom)" in report and "stopped: 2 round(s) done" in report

    # a rerun finds everything done: nothing labelled, trained or relaxed again, same answer
    before = _files(run_dir / "labels") | _files(run_dir / "refine" / "round2")
    logs = []
    again = refine(run_dir, chgnet, [], _settings(every_round=True), teacher, log=logs.append)
    assert not [m for m in logs if "fine-tuning" in m or "relaxing" in m], logs
    assert [r.labels for r in again.rounds] == [0, 0] and again.rows == result.rows
    assert _files(run_dir / "labels") | _files(run_dir / "refine" / "round2") == before

    # other settings: refused in one line, nothing touched
    state = _files(run_dir)
    with pytest.raises(InputError, match=r"refined with k 3 \(now 4\).*rerun with those settings"):
        refine(run_dir, chgnet, [], _settings(k=4), teacher, log=logs.append)
    assert _files(run_dir) == state


@pytest.mark.slow
def test_stops_when_the_ranking_holds(run_dir, chgnet):
    """A fine-tuning that barely moves the model (lr 1e-8) leaves the ranking as CHGNet has it: the loop
    stops after one round of three."""
    pytest.importorskip("sevenn")
    teacher = PotentialLabeller(load_potential("sevenn"))
    result = refine(run_dir, chgnet, [], _settings(rounds=3, epochs=1, lr=1e-8), teacher, log=lambda m: None)
    assert len(result.rounds) == 1 and not result.rounds[0].changed
    assert result.stopped == "the ranking held in round 1"
    assert not (run_dir / "refine" / "round2").exists()


def test_refused_when_the_labels_were_planned_otherwise(run_dir, chgnet):
    """Round 1 goes on from `upotbo label`'s set; one planned with other settings is refused before
    anything is written."""
    pytest.importorskip("sevenn")
    teacher = PotentialLabeller(load_potential("sevenn"))
    label_run(run_dir, [chgnet], k=2, top=2, labeller=teacher, log=lambda m: None)
    state = _files(run_dir)
    with pytest.raises(InputError, match=r"planned with k 2 \(now 3\)"):
        refine(run_dir, chgnet, [], _settings(), teacher, log=lambda m: None)
    assert _files(run_dir) == state and not (run_dir / "refine").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--rounds", "0"), "--rounds"),
        (("--holdout", "1.5"), "leaves nothing to train on"),
        (("--k", "0"), "--k"),
    ],
)
def test_refine_bad_arguments(capsys, tmp_path, args, words):
    """Refused before the run is even opened (no folder made)."""
    code, _, err = run_main(capsys, "refine", str(tmp_path / "run"), *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_refine_not_a_run(capsys, tmp_path):
    code, _, err = run_main(capsys, "refine", str(tmp_path / "nothing"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not an upotbo run directory" in err or "GPAW is not installed" in err
    assert not (tmp_path / "nothing").exists()


# --- real GPAW: run by .ci/dft.sh ---


@pytest.mark.slow
def test_refine_with_gpaw(run_dir, tmp_path):
    """The command end to end with GPAW labels at a low cutoff: one round, its report."""
    pytest.importorskip("gpaw")
    env = {**os.environ, "UPOTBO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "upotbo.cli", "refine", str(run_dir), "--rounds", "1", "--k", "2",
         "--top", "2", "--committee", "none", "--ecut", "200", "--kdensity", "1.5", "--epochs", "2",
         "--replay", "4"],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "winner under GPAW (single point on the labelled cell)" in proc.stdout
    assert "E_c GPAW (eV/atom)" in proc.stdout and "stopped: " in proc.stdout
    assert (run_dir / "refine" / "round1" / "model" / "chgnet_finetuned.pth.tar").is_file()
    assert len(LabelSet(run_dir / "labels").labels()) == 2


def test_a_folder_from_before_a_recipe_setting_resumes_with_its_default(tmp_path):
    """``settings.json`` written before ``stress_weight``, ``force_weight`` and ``layers`` existed was
    trained at 0.1, 1 and the last layers: those resume, other values are refused naming them."""
    import json
    from dataclasses import asdict

    from upotbo.refine.loop import _check_settings

    training = asdict(FineTuneSettings(holdout=0.0, stress_weight=0.1, force_weight=1.0, layers="last"))
    wanted = {"k": 3, "top": 3, "training": training, "labels": {}, "committee": []}
    added = {"stress_weight": 0.0, "force_weight": 0.1, "layers": "all"}
    old = {**wanted, "training": {k: v for k, v in wanted["training"].items() if k not in added}}
    (tmp_path / "settings.json").write_text(json.dumps(old))
    _check_settings(tmp_path, wanted)
    for name in added:
        other = {**wanted, "training": {**training, name: added[name]}}
        with pytest.raises(InputError, match=name):
            _check_settings(tmp_path, other)
