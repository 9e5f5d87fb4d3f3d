"""A committee of potentials in ``upotbo validate``: rock-salt NbC against graphite is the paper42
ranking that flips with the model (CHGNet puts NbC first, SevenNet-0 graphite), so it must be flagged."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from tests.conftest import rocksalt, run_main

pytest.importorskip("sevenn")


@pytest.fixture(scope="module")
def cifs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifs")
    graphite = Structure(
        Lattice.hexagonal(2.46, 6.70),
        ["C"] * 4,
        [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
    )
    paths = []
    for name, structure in (("NbC", rocksalt("Nb", "C", 4.47)), ("graphite", graphite)):
        path = folder / f"{name}.cif"
        structure.to(filename=str(path))
        paths.append(str(path))
    return paths


def test_ranking_that_depends_on_the_potential_is_flagged(capsys, tmp_path, cifs):
    out = tmp_path / "v"
    args = ("validate", "--cif", *cifs, "--out", str(out), "--no-phonons", "--fmax", "0.02")
    code, stdout, err = run_main(capsys, *args, "--committee", "sevenn")
    assert code == 0, err
    assert "winner under CHGNet-0.3.0: NbC" in stdout
    assert "winner under SevenNet-7net-0: C (graphite)" in stdout
    assert "2 of 2 crystal(s) rank differently" in stdout
    table = (out / "validation.md").read_text()
    assert "E_c SevenNet-7net-0 relaxed (eV/atom)" in table and "rank depends on the potential" in table
    assert "| 1 / 2 |" in table and "| 2 / 1 |" in table
    state = json.loads((out / "state.json").read_text())
    members = state["crystals"]["graphite"]["committee:SevenNet-7net-0"]
    assert members["value"] == pytest.approx(-7.955, abs=0.01)  # measured with sevenn's calculator

    code, stdout, err = run_main(capsys, *args, "--committee", "sevenn")  # resumed: nothing relaxed again
    assert code == 0, err
    assert "relaxing" not in stdout and "2 of 2 crystal(s) rank differently" in stdout


@pytest.mark.parametrize(
    ("committee", "words"),
    [
        ("chgnet", "must name potentials other than --potential CHGNet-0.3.0"),
        ("sevenn,sevenn:7net-0", "must name potentials other than"),
        ("mace", "unknown potential 'mace'"),
        ("sevenn:7net-omat", "not a SevenNet checkpoint file nor a model shipped"),
    ],
)
def test_bad_committee_is_one_line_and_touches_nothing(capsys, tmp_path, cifs, committee, words):
    out = tmp_path / "v"
    code, stdout, err = run_main(
        capsys, "validate", "--cif", *cifs, "--out", str(out), "--no-phonons", "--committee", committee
    )
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_ranking_agreement_with_dft():
    """Spearman ρ of each potential's E_c against DFT: 1 for the same order, -1 for the reverse; no
    line with fewer than three crystals that have both."""
    from upotbo.validate.committee import agreement, column

    rows = [{"ec_relaxed": v, column("B"): -v, "ec_dft": v - 0.1} for v in (-7.9, -7.5, -7.2, -6.0)]
    lines = agreement(rows, {"A": "ec_relaxed", "B": column("B")}, "ec_dft")
    assert lines == [
        "ranking against DFT, A: Spearman ρ 1.00 over 4 crystal(s)",
        "ranking against DFT, B: Spearman ρ -1.00 over 4 crystal(s)",
    ]
    assert agreement(rows[:2], {"A": "ec_relaxed"}, "ec_dft") == []
