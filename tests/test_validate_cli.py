"""``upotbo validate``: one-line errors with exit 2, a real run directory validated and resumed, and a
crystal that fails keeping its reason while the others go on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure

from upotbo.properties import CohesiveEnergy
from upotbo.search import Search
from upotbo.space import SearchSpace


def validate_cli(*args: str, hide_gpaw: bool = False) -> subprocess.CompletedProcess:
    prelude = "import sys; "
    if hide_gpaw:  # as if GPAW were not installed (its ASE plugin entry point would still warn: silenced)
        prelude += "import warnings; warnings.simplefilter('ignore'); sys.modules['gpaw'] = None; "
    code = prelude + "from upotbo.cli import main; sys.exit(main(['validate', *sys.argv[1:]]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)


def one_error_line(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("upotbo: error:"), proc.stderr
    assert message in lines[0] and "Traceback" not in proc.stderr


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
    ("args", "message", "hide"),
    [
        (("not-a-run",), "not an upotbo run directory", False),
        (("--cif", "{d}/broken.cif", "--out", "{d}/o"), "cannot read CIF", False),
        (("--cif", "{d}/missing.cif", "--out", "{d}/o"), "does not exist", False),
        (("--cif", "{d}/overlap.cif", "--out", "{d}/o"), "overlap (0.20 Å apart", False),
        (("--cif", "{d}/ZrC.cif"), "--cif needs --out", False),
        (("--cif", "{d}/ZrC.cif", "--out", "{d}/o", "--dft"), "GPAW is not installed", True),
    ],
)
def test_bad_input(cifs, args, message, hide):
    one_error_line(validate_cli(*(a.format(d=cifs) for a in args), hide_gpaw=hide), message)


def test_failed_crystal_keeps_reason_others_go_on(cifs, tmp_path):
    out = tmp_path / "v"
    proc = validate_cli(
        "--cif", str(cifs / "ZrC.cif"), str(cifs / "lonely.cif"), "--out", str(out), "--no-phonons"
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["crystal"]: r for r in _csv(out / "validation.csv")}
    assert rows["lonely"]["notes"].startswith("relaxation failed:")
    assert rows["ZrC"]["space group"] == "Fm-3m (225)" and rows["ZrC"]["verdicts"] == "on hull"
    assert "eV/atom" in proc.stdout


def test_run_directory_validated_and_resumed(chgnet, tmp_path):
    run = tmp_path / "run"
    space = SearchSpace.create("Zr,C", 2, 2, None)
    Search(space, chgnet, CohesiveEnergy(), run, n_init=8, relax_steps=10, batch_size=8, seed=1).run(8)
    first = validate_cli(str(run), "--top", "2", "--no-phonons", "--relax-steps", "100")
    assert first.returncode == 0, first.stderr
    assert "relaxing 2 crystal(s)" in first.stdout and "relaxing elemental references" in first.stdout
    out = run / "validation"
    rows = _csv(out / "validation.csv")
    assert len(rows) == 2 and all(r["E_above_hull (eV/atom)"] for r in rows)
    assert len(list((out / "relaxed").glob("*.cif"))) == 2
    state = json.loads((out / "state.json").read_text())
    assert set(state["references"]) == {"C", "Zr"}
    # a rerun finds everything done: nothing relaxed again, same table
    second = validate_cli(str(run), "--top", "2", "--no-phonons", "--relax-steps", "100")
    assert second.returncode == 0, second.stderr
    assert "relaxing" not in second.stdout
    assert _csv(out / "validation.csv") == rows


def _csv(path) -> list[dict[str, str]]:
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))
