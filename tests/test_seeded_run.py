"""Same seed and settings, same trials: two short runs compared with a recording made on the code
before the architecture change (``tests/seeded_run.py`` rewrites it when a change is meant to alter
the search). Parameters must match exactly, values to float noise of the potential."""

from __future__ import annotations

import json

import pytest
from seeded_run import RECORDING, RUNS, trials_of


@pytest.mark.parametrize("name", list(RUNS))
def test_seeded_run_matches_the_recording(chgnet, tmp_path, name):
    recorded = json.loads(RECORDING.read_text())[name]
    trials = trials_of(chgnet, tmp_path, **RUNS[name])
    assert len(trials) == len(recorded)
    for got, want in zip(trials, recorded, strict=True):
        assert (got["state"], got["params"], got["cell_formula"], got["fail_stage"]) == (
            want["state"], want["params"], want["cell_formula"], want["fail_stage"]
        )
        if want["value"] is None:
            assert got["value"] is None
        else:
            assert got["value"] == pytest.approx(want["value"], abs=1e-5)
