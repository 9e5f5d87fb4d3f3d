"""The map descriptor (CHGNet's per-atom-mean crystal embedding) ignores how a crystal is written down
(rotation, translation, unit cell, atom order) and sees what it is (rock salt vs zincblende)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from upotbo.landscape import crystal_embedding, draw, formula_map

TOL = 2e-3  # relative; float32 model, measured differences are ~1e-6 (rock salt vs zincblende: 0.25)


def zincblende(a: str, b: str, lattice: float) -> Structure:
    return Structure.from_spacegroup(216, Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])


def rewritten(structure: Structure, seed: int = 3) -> dict[str, Structure]:
    """The same crystal written five other ways."""
    rng = np.random.default_rng(seed)
    rotated = structure.copy()
    rotated.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))
    translated = structure.copy()
    translated.translate_sites(list(range(len(structure))), [0.13, 0.27, 0.41])
    permuted = Structure.from_sites([structure[i] for i in rng.permutation(len(structure))])
    supercell = structure * (2, 1, 2)
    other_cell = structure.copy()
    other_cell.make_supercell([[1, 1, 0], [0, 1, 0], [0, 1, 1]])  # unimodular: same volume, new cell
    return {
        "rotated": rotated,
        "translated": translated,
        "permuted": permuted,
        "supercell": supercell,
        "other cell": other_cell,
    }


@pytest.fixture(scope="module")
def random_zr4c4() -> Structure:
    """The first triclinic/monoclinic crystal the map generator draws (the space favours high symmetry,
    so several slots may pass before one comes up)."""
    spec = formula_map("Zr4C4", 200, seed=11)
    for start in range(0, spec.total, 20):
        _, drawn = draw(spec, range(start, start + 20))
        low = [d.structure for d in drawn if d.structure is not None and d.candidate.space_group < 16]
        if low:
            return low[0]
    raise AssertionError("expected a triclinic/monoclinic crystal among 200 draws")


def test_same_crystal_same_vector(chgnet, random_zr4c4):
    for crystal in (random_zr4c4, rocksalt("Zr", "C", 4.70)):
        copies = rewritten(crystal)
        vectors = crystal_embedding(chgnet, [crystal, *copies.values()])
        assert np.all(np.isfinite(vectors))
        scale = np.linalg.norm(vectors[0])
        for name, vector in zip(copies, vectors[1:], strict=True):
            assert np.linalg.norm(vector - vectors[0]) / scale < TOL, name


def test_conventional_and_primitive_rocksalt_agree(chgnet):
    conventional = rocksalt("Zr", "C", 4.70)
    primitive = conventional.get_primitive_structure()
    assert len(conventional) == 8 and len(primitive) == 2
    a, b = crystal_embedding(chgnet, [conventional, primitive])
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < TOL


def test_rocksalt_and_zincblende_differ(chgnet):
    rs, zb = rocksalt("Zr", "C", 4.70), zincblende("Zr", "C", 4.70)
    a, b = crystal_embedding(chgnet, [rs, zb])
    assert np.linalg.norm(a - b) / np.linalg.norm(a) > 50 * TOL


def test_unscorable_structure_gives_nan_row(chgnet):
    collapsed = Structure(Lattice.cubic(1.0), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    vectors = crystal_embedding(chgnet, [rocksalt("Zr", "C", 4.70), collapsed])
    assert np.all(np.isfinite(vectors[0])) and np.all(np.isnan(vectors[1]))
