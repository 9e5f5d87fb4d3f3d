"""Crystal building in worker processes: the SQLite default stays one writer, and the run is the same."""

from __future__ import annotations

import optuna
from conftest import run_cli

from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.space import SearchSpace
from upotbo.storage import load_existing, local_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trials(out) -> list[tuple]:
    study = load_existing(local_url(out))
    return [
        (t.number, t.state.name, t.params, t.value, t.user_attrs.get("cell_formula")) for t in study.trials
    ]


def test_two_workers_sqlite_no_lost_or_duplicated_trials_and_same_run(chgnet, tmp_path):
    """Same seed with 0 (inline) and 2 build processes: the same 30 trials, each stored once, in order."""
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        space = SearchSpace.create("Zr,C,N,B", 2, 3)
        search = Search(
            space,
            chgnet,
            CohesiveEnergy(),
            out,
            SearchConfig(n_init=10, relax_steps=0, batch_size=8, seed=11, workers=workers),
        )
        result = search.run(30)
        assert result.steps == 30 and result.scored + result.failed == 30
        runs[workers] = _trials(out)
        assert [number for number, *_ in runs[workers]] == list(range(30))  # none lost, none twice
        assert {state for _, state, *_ in runs[workers]} <= {"COMPLETE", "FAIL"}
        params = [tuple(sorted(p.items())) for _, _, p, *_ in runs[workers]]
        assert len(set(params)) == 30
        assert result.best_value == min(v for _, s, _, v, _ in runs[workers] if s == "COMPLETE")
        assert set(result.seconds) == {"sampler", "build", "score", "describe", "storage", "score_busy"}
    assert runs[0] == runs[2]


def test_workers_zero_is_an_input_error(tmp_path):
    proc = run_cli("search", "--workers", "0", "--out", str(tmp_path / "run"), "--steps", "2")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("upotbo: error: argument --workers: --workers 0 is out of range")
    assert len(proc.stderr.strip().splitlines()) == 1
