"""Cohesive energies with the real CHGNet against values measured with the same potential
(CHGNet-relaxed, MP2020 correction removed)."""

from __future__ import annotations

import math

import pytest
from conftest import rocksalt
from pymatgen.core import Composition, Lattice, Structure

from upotbo.potentials import MP2020Corrected, RawPBE, relax_batch
from upotbo.potentials.base import Calculation, sanitize
from upotbo.properties import CohesiveEnergy, cohesive_energy, isolated_atom_energies


@pytest.fixture(scope="module")
def relaxed(chgnet):
    structures = {
        "ZrC": rocksalt("Zr", "C", 4.6),
        "TiC": rocksalt("Ti", "C", 4.3),
        "ZrN": rocksalt("Zr", "N", 4.5),
        "ZrB2": Structure.from_spacegroup(
            191, Lattice.hexagonal(3.17, 3.53), ["Zr", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]
        ),
    }
    results = relax_batch(chgnet, list(structures.values()), steps=150, fmax=0.02)
    prop = CohesiveEnergy()
    return {
        name: (r, prop.value(r.structure, r.energy, chgnet))
        for name, r in zip(structures, results, strict=True)
    }


def test_rocksalt_zrc_matches_reference(relaxed):
    result, ec = relaxed["ZrC"]
    assert result.converged
    assert ec == pytest.approx(-7.881, abs=0.03)
    assert 4.6 < result.structure.lattice.a < 4.75


def test_paper_ordering(relaxed):
    ec = {name: value for name, (_, value) in relaxed.items()}
    assert ec["ZrC"] < ec["TiC"] < ec["ZrN"] < ec["ZrB2"]


def test_nitride_and_oxide_corrections_are_removed(relaxed, chgnet):
    result, ec = relaxed["ZrN"]
    assert ec == pytest.approx(-7.356, abs=0.03)  # with the learned -0.180 eV/atom left in it would be -7.54
    uncorrected = cohesive_energy(result.structure.composition, result.energy)
    assert ec - uncorrected == pytest.approx(0.1805, abs=0.002)
    zro = rocksalt("Zr", "O", 4.6)
    energy = chgnet.energies([zro])[0]
    ec_o = CohesiveEnergy().value(zro, energy, chgnet)
    assert ec_o - cohesive_energy(zro.composition, energy) == pytest.approx(0.3435, abs=0.002)


def test_reference_shifts():
    ref = MP2020Corrected()
    assert ref.pbe_shift_per_atom(Composition("ZrC")) == 0.0
    assert ref.pbe_shift_per_atom(Composition("ZrN")) == pytest.approx(0.1805, abs=1e-3)
    # Mo oxide is GGA+U in MP: only the oxide correction is removed, not the U mixing shift
    assert ref.pbe_shift_per_atom(Composition("MoO3")) == pytest.approx(2.061 / 4, abs=1e-3)
    assert RawPBE().pbe_shift_per_atom(Composition("ZrN")) == 0.0


def test_mp2020_corrects_anions_of_the_listed_elements_only():
    """The shortcut for crystals without an anion MP2020 corrects: the list is pymatgen's, and
    pymatgen's own answer for such crystals is no anion correction."""
    from upotbo.potentials.reference import _MP2020_ANIONS, _compatibility, _mp2020_anion_shift

    oxygen = {"oxide", "peroxide", "superoxide", "ozonide"}
    assert set(_compatibility().comp_correction) - oxygen | {"O"} == _MP2020_ANIONS
    for formula in ("ZrC", "NbC", "Cu3Au", "TiB2", "Nb2C", "Zr4C3"):
        reduced = tuple(sorted(Composition(formula).reduced_composition.as_dict().items()))
        assert _mp2020_anion_shift(reduced) == 0.0
        assert MP2020Corrected().pbe_shift_per_atom(Composition(formula)) == 0.0


def test_isolated_atom_table_ships_with_source():
    table = isolated_atom_energies()
    assert table["Zr"] == pytest.approx(-2.28579303)
    assert len(table) > 80


def test_unscorable_structures_fail_per_structure(chgnet):
    isolated = Structure(Lattice.cubic(20.0), ["Zr"], [[0, 0, 0]])
    calcs = chgnet.calculate([isolated, rocksalt("Zr", "C", 4.7)])
    assert not calcs[0].ok and "isolated" in calcs[0].error
    assert calcs[1].ok and math.isfinite(calcs[1].energy)


def test_nan_energy_is_a_failure():
    assert "non-finite" in sanitize(Calculation(energy=math.nan), 2).error
    assert "absurd" in sanitize(Calculation(energy=-1e6), 2).error
    assert sanitize(Calculation(energy=-10.0), 2).ok


def test_collapsed_cell_is_refused_not_built(chgnet):
    collapsed = rocksalt("Zr", "C", 2.0)  # 1 Å^3/atom: a relaxation fallen into a potential hole
    calc = chgnet.calculate([collapsed])[0]
    assert not calc.ok and "collapsed cell" in calc.error
