"""End-to-end searches with the real potential: finds, reproducibility, storage, outputs."""

from __future__ import annotations

import json

import optuna
import pytest

from upotbo.properties import CohesiveEnergy, Property
from upotbo.report import write_report
from upotbo.search import Search, SearchConfig, StudyAccess
from upotbo.space import SearchSpace
from upotbo.storage import completed_records, load_existing, local_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(chgnet, out, resume=False, **kwargs):
    space = SearchSpace.create(kwargs.pop("pool", "Zr,C,N,B"), 2, kwargs.pop("nchem", 4))
    return Search(space, chgnet, CohesiveEnergy(), out, SearchConfig(**kwargs), StudyAccess(resume=resume))


def test_small_search_finds_strong_cohesion(chgnet, tmp_path):
    """Pool Zr,C,N,B: 60 steps with in-loop relaxation reach E_c <= -7.0 eV/atom (ZrC, ZrN, C, ZrB2...).

    Measured: seeds 0/1 end on diamond C4 (-7.802) and rock-salt Zr2C2 (-7.881) in ~40 s each.
    """
    search = _search(chgnet, tmp_path, nchem=2, n_init=20, relax_steps=40, batch_size=20, seed=0)
    result = search.run(60)
    assert result.steps == 60
    assert result.best_value <= -7.0
    rows = write_report(tmp_path)
    assert rows[0].record.value == pytest.approx(result.best_value)
    for name in ("top.csv", "top.md", "convergence.png", "compositions.png", "study.db", "settings.json"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / rows[0].cif).read_text().startswith("# generated using pymatgen")
    formulas = [r.record.formula for r in rows]
    assert len(formulas) == len(set(formulas))  # one row per distinct composition


def test_same_seed_same_run(chgnet, tmp_path):
    runs = []
    for name in ("a", "b"):
        search = _search(
            chgnet, tmp_path / name, sampler="random", n_init=0, relax_steps=3, batch_size=8, seed=7
        )
        search.run(16)
        study = load_existing(local_url(tmp_path / name))
        runs.append([(t.state.name, t.params, t.value) for t in study.trials])
    assert runs[0] == runs[1]


def test_every_step_stored_with_reason(chgnet, tmp_path):
    search = _search(
        chgnet, tmp_path, pool="paper42", nchem=5, n_init=10, relax_steps=0, batch_size=16, seed=3
    )
    result = search.run(32)
    study = load_existing(local_url(tmp_path))
    assert len(study.trials) == 32 == result.steps
    assert result.scored + result.failed == 32
    for t in study.trials:
        if t.state.name == "FAIL":
            assert t.user_attrs["fail_stage"] in ("build", "score") and t.user_attrs["fail_reason"]
        else:
            record = json.loads(t.user_attrs["structure"])
            assert record["@class"] == "Structure" and t.value < 50
    assert len(completed_records(study)) == result.scored
    # the database is an ordinary optuna study
    assert (
        optuna.load_study(study_name="upotbo", storage=local_url(tmp_path)).best_value == result.best_value
    )


def test_scorer_process_scores_like_the_evaluator_and_unpicklable_falls_back_to_a_thread(chgnet):
    """Single points: the scorer process gives the evaluator's own values; an evaluator that cannot be
    pickled (a potential holding a live handle), or one that relaxes, is scored on a thread instead."""
    import threading

    from conftest import rocksalt

    from upotbo.search.evaluate import Evaluator
    from upotbo.search.scoring import Scorer

    crystals = [rocksalt("Zr", "C", 4.7), rocksalt("Nb", "N", 4.4)]
    evaluator = Evaluator(chgnet, CohesiveEnergy(), relax_steps=0)
    direct = [s.value for s in evaluator.score(crystals)]
    with Scorer(evaluator) as scorer:
        assert scorer.in_process
        scored, described, busy = scorer.submit(crystals, None, [{}, {}]).result()
    assert [s.value for s in scored] == pytest.approx(direct, abs=1e-6)
    assert described[0]["spacegroup_number"] == 225 and busy > 0

    class Handle(Evaluator):
        lock = threading.Lock()  # not picklable

        def __reduce__(self):
            raise TypeError(f"cannot pickle {self.lock!r}")

    held = Handle(chgnet, CohesiveEnergy(), relax_steps=0)
    with Scorer(held) as scorer:
        assert not scorer.in_process
        scored, _, _ = scorer.submit(crystals, None, [{}, {}]).result()
    assert [s.value for s in scored] == pytest.approx(direct, abs=1e-6)
    with Scorer(Evaluator(chgnet, CohesiveEnergy(), relax_steps=2)) as scorer:
        assert not scorer.in_process


def test_tally_of_steps_and_best_equals_a_full_count():
    """Trials finish out of order, some fail (steps) or are lost/unused (not steps): each read of the
    incremental tally equals counting the whole study."""
    from optuna.trial import TrialState

    from upotbo.search.study import _Tally
    from upotbo.storage.run_record import FailStage, is_step

    LOST, UNUSED = FailStage.LOST, FailStage.UNUSED

    study = optuna.create_study()
    tally = _Tally()
    rank = lambda t: (t.value, t.number)  # noqa: E731
    for batch in range(6):
        trials = [study.ask() for _ in range(8)]
        for k, trial in enumerate(reversed(trials)):  # the last asked finishes first
            if k % 5 == 3:
                trial.set_user_attr("fail_stage", (LOST, UNUSED, "build")[batch % 3])
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, float((trial.number * 7919) % 13))
            frozen = study.get_trials(deepcopy=False)
            complete = [t for t in frozen if t.state == TrialState.COMPLETE]
            expected = (sum(map(is_step, frozen)), len(complete), min(complete, key=rank, default=None))
            assert tally.read(frozen, rank) == expected


class Densest(Property):
    """A real property to maximize (mass density of the relaxed crystal), to test the direction."""

    name = "density"
    unit = "g/cm³"
    direction = "maximize"
    label = "ρ"
    plausible = (0.0, 30.0)

    def value(self, structure, energy, potential) -> float:
        return float(structure.density)


def test_a_maximized_property_is_honoured_by_study_search_and_report(chgnet, tmp_path):
    space = SearchSpace.create("Zr,C,N,B", 2, 2)
    config = SearchConfig(n_init=8, relax_steps=3, batch_size=8, seed=2)
    search = Search(space, chgnet, Densest(), tmp_path, config)
    progress = list(search.irun(24))
    steps = [p.steps for p in progress]
    assert steps == sorted(steps) and 0 < steps[0] <= 8 and steps[-1] == 24  # a report per finished step
    study = load_existing(local_url(tmp_path))
    assert len(study.trials) == 24
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    values = [t.value for t in study.trials if t.value is not None]
    assert progress[-1].best_value == max(values) == study.best_value
    rows = write_report(tmp_path, top=3)
    assert [r.record.value for r in rows] == sorted([r.record.value for r in rows], reverse=True)
    assert "| ρ (g/cm³) |" in (tmp_path / "top.md").read_text()
    assert "value_g_per_cm³" in (tmp_path / "top.csv").read_text().splitlines()[0]


def test_irun_stops_when_the_caller_stops_and_resume_goes_on(chgnet, tmp_path):
    """Leaving the iterator after a batch finishes that batch (stored) and shuts the workers; the
    stored steps are where ``--resume`` goes on from."""
    first = _search(chgnet, tmp_path, n_init=4, relax_steps=0, batch_size=4, seed=4)
    progress = next(first.irun(12))
    stored = len(load_existing(local_url(tmp_path)).trials)
    assert progress.steps == stored == 4
    again = _search(chgnet, tmp_path, n_init=4, relax_steps=0, batch_size=4, seed=4, resume=True)
    assert again.steps == 4 and again.run(12).steps == 12
    assert [t.number for t in load_existing(local_url(tmp_path)).trials] == list(range(12))


def test_threads_caps_the_potential_threads(chgnet, tmp_path):
    """``threads=1``: the relaxations run torch on one thread, however many cores are free."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _search(chgnet, tmp_path, sampler="random", n_init=0, relax_steps=2, batch_size=4, threads=1).run(4)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
