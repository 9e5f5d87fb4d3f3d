"""``upotbo validate``: one-line errors with exit 2, a real run directory validated and resumed, and a
crystal that fails keeping its reason while the others go on."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import rocksalt, run_main
from pymatgen.core import Lattice, Structure

from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.space import SearchSpace


@pytest.fixture(scope="module", autouse=True)
def session_cache(tmp_path_factory):
    """Elemental references relaxed once per test session (shared with the science tests), never
    taken from a stale ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPOTBO_CACHE", str(tmp_path_factory.getbasetemp() / "upotbo_cache"))
        yield


def validate_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``upotbo validate ARGS`` in this process: (exit code, stdout, stderr)."""
    return run_main(capsys, "validate", *args)


@pytest.fixture(scope="module")
def cifs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cifs")
    rocksalt("Zr", "C", 4.7).to(filename=str(d / "ZrC.cif"))
    Structure(Lattice.cubic(4.0), ["Zr", "C"], [[0, 0, 0], [0.05, 0, 0]]).to(filename=str(d / "overlap.cif"))
    (d / "broken.cif").write_text("data_x\n_cell_length_a 4.0\nthis is not a CIF\n")
    # one H atom alone in a 12 Å box: no neighbour within CHGNet's cutoff, so the potential refuses it
    Structure(Lattice.cubic(12.0), ["H"], [[0, 0, 0]]).to(filename=str(d / "lonely.cif"))
    return d


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("not-a-run",), "not an upotbo run directory"),
        (("--cif", "{d}/broken.cif", "--out", "{d}/o"), "cannot read CIF"),
        (("--cif", "{d}/missing.cif", "--out", "{d}/o"), "does not exist"),
        (("--cif", "{d}/overlap.cif", "--out", "{d}/o"), "overlap (0.20 Å apart"),
        (("--cif", "{d}/ZrC.cif"), "--cif needs --out"),
        (("--cif", "{d}/ZrC.cif", "--out", "{d}/o", "--top", "0"), "--top 0 is out of range: use 1 or more"),
        (("--cif", "{d}/ZrC.cif", "--out", "{d}/o", "--dft"), "GPAW is not installed"),
        (("--cif", "{d}/ZrC.cif", "--out", "{d}/o", "--fmax", "x"), "--fmax must be a number, got 'x'"),
    ],
)
def test_bad_input(cifs, args, message, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # as if GPAW were not installed
    code, _, err = validate_cli(capsys, *(a.format(d=cifs) for a in args))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("upotbo: error:"), err
    assert message in lines[0] and "Traceback" not in err
    assert not (cifs / "o" / "validation.csv").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--fmax", "nan", "--fmax nan must be a finite number"),
        ("--symprec", "inf", "--symprec inf must be a finite number"),
        ("--ecut", "0", "--ecut 0 must be positive"),
        ("--phonon-tol", "-1", "--phonon-tol -1 must be >= 0"),
        ("--relax-steps", "-1", "--relax-steps -1 is out of range: use 0 or more"),
    ],
)
def test_bad_number_refused_before_anything_is_written(cifs, tmp_path, capsys, flag, value, message):
    out = tmp_path / "o"
    code, _, err = validate_cli(capsys, "--cif", str(cifs / "ZrC.cif"), "--out", str(out), flag, value)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("upotbo: error:"), err
    assert message in lines[0]
    assert not out.exists()


def test_failed_crystal_keeps_reason_others_go_on(cifs, tmp_path, capsys):
    out = tmp_path / "v"
    code, stdout, stderr = validate_cli(
        capsys, "--cif", str(cifs / "ZrC.cif"), str(cifs / "lonely.cif"), "--out", str(out), "--no-phonons"
    )
    assert code == 0, stderr
    rows = {r["crystal"]: r for r in _csv(out / "validation.csv")}
    assert rows["lonely"]["notes"].startswith("relaxation failed:")
    assert rows["ZrC"]["space group"] == "Fm-3m (225)" and rows["ZrC"]["verdicts"] == "on hull"
    assert "eV/atom" in stdout


def test_run_directory_validated_and_resumed(chgnet, tmp_path, capsys):
    run = tmp_path / "run"
    space = SearchSpace.create("Zr,C", 2, 2, None)
    config = SearchConfig(n_init=8, relax_steps=10, batch_size=8, seed=1)
    Search(space, chgnet, CohesiveEnergy(), run, config).run(8)
    code, first, err = validate_cli(capsys, str(run), "--top", "2", "--no-phonons", "--relax-steps", "60")
    assert code == 0, err
    assert "relaxing 2 crystal(s)" in first
    out = run / "validation"
    rows = _csv(out / "validation.csv")
    assert len(rows) == 2 and all(r["E_above_hull (eV/atom)"] for r in rows)
    assert len(list((out / "relaxed").glob("*.cif"))) == 2
    state = json.loads((out / "state.json").read_text())
    assert set(state["references"]) == {"C", "Zr"}
    # a rerun finds everything done: nothing relaxed again, same table
    code, second, err = validate_cli(capsys, str(run), "--top", "2", "--no-phonons", "--relax-steps", "60")
    assert code == 0, err
    assert "relaxing" not in second
    assert _csv(out / "validation.csv") == rows


def _csv(path) -> list[dict[str, str]]:
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))
