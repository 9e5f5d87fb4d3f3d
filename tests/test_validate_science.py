"""Validation science with the real CHGNet and phonopy: rock-salt ZrC relaxes, is Fm-3m, sits on the
hull of Zr-C against independently relaxed references, and is phonon-stable; CsCl-type (B2) ZrC has
imaginary modes."""

from __future__ import annotations

import math

import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure

from upotbo.crystal.prototypes import merge_duplicates, prototype_name
from upotbo.potentials import relax_batch
from upotbo.validate import Crystal, ValidationSettings, validate


@pytest.fixture(scope="module")
def zrc_rows(chgnet, tmp_path_factory):
    out = tmp_path_factory.mktemp("zrc")
    # elemental references relaxed once per test session (shared with the CLI tests), never stale
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPOTBO_CACHE", str(tmp_path_factory.getbasetemp() / "upotbo_cache"))
        return _validate_zrc(chgnet, out)


def _validate_zrc(chgnet, out):
    b2 = Structure.from_spacegroup(221, Lattice.cubic(2.95), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    crystals = [Crystal("ZrC_B1", rocksalt("Zr", "C", 4.6)), Crystal("ZrC_B2", b2)]
    rows = validate(crystals, chgnet, out, ValidationSettings(), log=lambda _: None)
    return {r["name"]: r for r in rows}, out


def test_rocksalt_zrc(zrc_rows):
    rows, out = zrc_rows
    row = rows["ZrC_B1"]
    relaxed = Structure.from_file(out / "relaxed" / "ZrC_B1.cif")
    a = relaxed.lattice.a * math.sqrt(2) if len(relaxed) == 2 else relaxed.lattice.a
    assert 4.6 <= a <= 4.75
    assert row["spacegroup"] == "Fm-3m (225)" and row["prototype"] == "rock salt (B1)"
    assert row["ec_relaxed"] == pytest.approx(-7.881, abs=0.01)
    assert row["relaxation_energy"] < 0  # started compressed at a = 4.6 Å
    assert row["e_above_hull"] <= 0.001 and "on hull" in row["verdict"]
    assert abs(row["min_frequency"]) < 0.1 and "dynamically stable" in row["verdict"]
    assert (out / "phonons" / "ZrC_B1.png").stat().st_size > 10_000
    assert (out / "hull" / "hull_C-Zr.png").exists()
    assert (out / "validation.csv").exists() and "rock salt (B1)" in (out / "validation.md").read_text()


def test_cscl_zrc_is_dynamically_unstable(zrc_rows):
    # B2 and B1 are the two ends of the [111] trigonal (Buerger) path; under CHGNet B2 lies ~1 eV/atom
    # higher, a saddle of that path, so its lattice has imaginary modes (unstable at zero pressure).
    row = zrc_rows[0]["ZrC_B2"]
    assert row["prototype"] == "CsCl (B2)"
    assert row["min_frequency"] < -1.0 and "dynamically unstable" in row["verdict"]
    assert row["e_above_hull"] > 0.5


def test_formation_energy_against_the_right_references(zrc_rows, chgnet):
    """Formation energy = E(ZrC) - lowest relaxed Zr - lowest relaxed C, per atom. Checked against
    references relaxed here by hand: isolated atoms, diamond instead of graphite, or fcc Zr would all
    miss by more than the tolerance (graphite is 0.12 eV/atom below diamond under CHGNet)."""
    row = zrc_rows[0]["ZrC_B1"]
    zr = [
        Structure.from_spacegroup(229, Lattice.cubic(3.57), ["Zr"], [[0, 0, 0]]),
        Structure(Lattice.hexagonal(3.23, 5.15), ["Zr"] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
    ]
    graphite = Structure(
        Lattice.hexagonal(2.46, 6.8),
        ["C"] * 4,
        [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
    )
    diamond = Structure.from_spacegroup(216, Lattice.cubic(3.57), ["C", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    zrc = rocksalt("Zr", "C", 4.72)
    relaxed = relax_batch(chgnet, [*zr, graphite, diamond, zrc], steps=500, fmax=0.05)
    per_atom = [r.energy / len(r.structure) for r in relaxed]
    e_zr, e_graphite, e_diamond, e_zrc = min(per_atom[:2]), per_atom[2], per_atom[3], per_atom[4]
    assert e_graphite < e_diamond - 0.05
    expected = e_zrc - (e_zr + e_graphite) / 2
    assert row["formation_energy"] == pytest.approx(expected, abs=0.01)
    assert -1.1 < row["formation_energy"] < -0.5  # PBE (MP): ZrC about -0.8 eV/atom


def test_prototypes_and_merging():
    wurtzite = Structure.from_spacegroup(
        186, Lattice.hexagonal(3.25, 5.2), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]]
    )
    zrb2 = Structure.from_spacegroup(
        191, Lattice.hexagonal(3.17, 3.53), ["Zr", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]
    )
    fluorite = Structure.from_spacegroup(
        225, Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    perovskite = Structure.from_spacegroup(
        221, Lattice.cubic(3.9), ["Sr", "Ti", "O"], [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]]
    )
    diamond = Structure.from_spacegroup(216, Lattice.cubic(3.57), ["C", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    names = [
        prototype_name(s) for s in (wurtzite, zrb2, fluorite, perovskite, diamond, rocksalt("Ti", "C", 4.3))
    ]
    assert names == [
        "wurtzite (B4)",
        "AlB2 (C32)",
        "fluorite (C1)",
        "perovskite (E2_1)",
        "diamond (A4)",
        "rock salt (B1)",
    ]
    assert prototype_name(Structure(Lattice.cubic(5.0), ["Zr", "C"], [[0, 0, 0], [0.3, 0.1, 0.2]])) == ""
    primitive = rocksalt("Zr", "C", 4.70).get_primitive_structure()
    conventional = rocksalt("Zr", "C", 4.72)
    # the same crystal twice (2- and 8-atom cells): both point at the lower-energy one
    assert merge_duplicates([primitive, conventional, wurtzite], [-9.1, -9.2, -5.0]) == [1, 1, 2]
