"""SevenNet, the second bundled potential: the batched adapter against sevenn's own ASE calculator,
its cohesive energies, a search and a committee with it, and the refusals."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from tests.conftest import rocksalt, run_main
from upotbo.errors import InputError
from upotbo.potentials import load_potential, relax_batch
from upotbo.properties import CohesiveEnergy

pytest.importorskip("sevenn")


@pytest.fixture(scope="module")
def sevennet():
    return load_potential("sevenn")


def _crystals() -> list[Structure]:
    zrc = rocksalt("Zr", "C", 4.72)
    shaken = zrc.copy()
    shaken.perturb(0.1, min_distance=0.05)
    zrb2 = Structure.from_spacegroup(
        191, Lattice.hexagonal(3.2, 3.5), ["Zr", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]
    )
    zrb2.perturb(0.05, min_distance=0.02)
    return [zrc, shaken, zrb2 * (2, 1, 1)]


def test_batched_path_matches_sevenns_calculator(sevennet):
    """One batch of differently sized crystals gives what sevenn's calculator gives one at a time."""
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SevenNetCalculator("7net-0", device="cpu")
    crystals = _crystals()
    calcs = sevennet.calculate(crystals, forces=True, stress=True)
    for structure, calc in zip(crystals, calcs, strict=True):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = reference
        assert calc.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(calc.forces, atoms.get_forces(), atol=1e-4)
        np.testing.assert_allclose(calc.stress, atoms.get_stress(), atol=1e-5)  # eV/Å^3, ASE's sign
    assert np.abs(calcs[1].forces).max() > 0.1  # the shaken cell really has forces to compare


def test_rocksalt_zrc_cohesive_energy(sevennet):
    """Relaxed rock-salt ZrC under SevenNet-0: -7.912 eV/atom measured with sevenn's calculator and
    ASE's FIRE (fmax 0.02); raw PBE (GPAW) -8.00, CHGNet -7.88."""
    relaxed = relax_batch(sevennet, [rocksalt("Zr", "C", 4.70)], steps=200, fmax=0.02)[0]
    value = CohesiveEnergy().value(relaxed.structure, relaxed.energy, sevennet)
    assert value == pytest.approx(-7.912, abs=0.01)


def test_pickled_copy_carries_no_weights(sevennet):
    sevennet.calculate(_crystals()[:1])  # loads the model
    copy = pickle.loads(pickle.dumps(sevennet))
    assert len(pickle.dumps(sevennet)) < 10_000
    assert copy.calculate(_crystals()[:1])[0].energy == pytest.approx(
        sevennet.calculate(_crystals()[:1])[0].energy, abs=1e-5
    )


def test_uncovered_element_fails_per_structure(sevennet):
    assert "Og" not in sevennet.elements and "Zr" in sevennet.elements
    with pytest.raises(InputError, match="not covered"):
        sevennet.check_elements(["Zr", "Og"])
    calcs = sevennet.calculate([rocksalt("Zr", "C", 4.72), rocksalt("Po", "C", 4.9)])  # Po: not in MPtrj
    assert calcs[0].ok and not calcs[1].ok and "does not cover PoC" in calcs[1].error


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("sevenn:7net-omni", "not a SevenNet checkpoint file nor a model shipped"),
        ("sevenn:/nonexistent/model.pth", "not a SevenNet checkpoint file"),
        ("sevenn:7net-mf-0", "not a SevenNet checkpoint file nor a model shipped"),
    ],
)
def test_bad_model_is_one_line(spec, words):
    with pytest.raises(InputError, match=words):
        load_potential(spec)


def test_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "model.pth"
    bogus.write_text("not a model")
    with pytest.raises(InputError, match="is not a SevenNet checkpoint"):
        load_potential(f"sevenn:{bogus}")


def test_search_with_sevenn(capsys, tmp_path):
    code, out, err = run_main(
        capsys, "search", "--pool", "Zr,C", "--nchem", "2", "--steps", "16", "--n-init", "8",
        "--out", str(tmp_path / "run7"), "--potential", "sevenn:7net-0",
    )  # fmt: skip
    assert code == 0, err
    assert "potential: SevenNet-7net-0" in out and "eV/atom" in out
