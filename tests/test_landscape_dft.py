"""DFT overlay: GPAW single points on a seeded subsample of a map, parity plot and MAE split."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

from upotbo.cli import main


def test_dft_without_gpaw_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # as if GPAW were not installed
    code = main(["landscape", "--formula", "Zr4C4", "--n", "40", "--dft", "4", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "GPAW is not installed" in lines[0]
    assert not (tmp_path / "m" / "study.db").exists()


@pytest.mark.slow
def test_dft_overlay_on_small_map(tmp_path, tmp_path_factory, capsys, monkeypatch):
    pytest.importorskip("gpaw")
    # isolated atoms shared with the ZrC check of this session (never a stale ~/.cache)
    monkeypatch.setenv("UPOTBO_CACHE", str(tmp_path_factory.getbasetemp() / "upotbo_cache"))
    out = tmp_path / "m"
    code = main(
        ["landscape", "--formula", "Zr1C1", "--n", "24", "--dft", "3", "--out", str(out), "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    assert "MAE" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "dft.csv")))
    assert 2 <= len(rows) <= 3
    upot = np.array([float(r["upot_E_c_eV_per_atom"]) for r in rows])
    dft = np.array([float(r["dft_E_c_eV_per_atom"]) for r in rows])
    assert np.all(np.abs(upot - dft) < 5.0)  # same crystals, same reference: eV/atom-level agreement
    assert (out / "parity_dft.png").exists() and (out / "landscape_dft.png").exists()
