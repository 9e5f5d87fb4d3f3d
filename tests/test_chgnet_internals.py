"""CHGNet's internals as upotbo uses them, against CHGNet's own: the one-backward-pass forces and stress
(vs ``predict_graph`` on the same graphs) and the numpy crystal graphs (vs ``CrystalGraphConverter``)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure

from upotbo.potentials.chgnet_internals import crystal_graph, predict_forces


def _crystals() -> list[Structure]:
    """Unlike cells: a strained rock salt, a rattled 8-atom cell, one atom, a light molecule-like cell."""
    rng = np.random.default_rng(0)
    strained = rocksalt("Zr", "C", 4.6)
    strained.apply_strain([0.03, -0.02, 0.01])
    rattled = rocksalt("Nb", "C", 4.5)
    rattled.make_supercell([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    rattled.perturb(0.1)
    single = Structure(Lattice.cubic(3.1), ["Mo"], [[0, 0, 0]])
    tilted = Structure(
        Lattice.from_parameters(4.1, 4.6, 5.2, 80, 95, 105), ["Li", "F", "O"], rng.random((3, 3))
    )
    return [strained, rattled, single, tilted]


@pytest.mark.parametrize("stress", [True, False])
def test_same_values_as_chgnet(chgnet, stress):
    model = chgnet.model
    graphs = [model.graph_converter(s) for s in _crystals()]
    theirs = model.predict_graph(graphs, task="efs" if stress else "ef", batch_size=len(graphs))
    ours = predict_forces(model, graphs, stress=stress)
    assert len(ours) == len(theirs)
    assert np.abs(ours[1]["f"]).max() > 0.1  # the rattled cell really is under force
    for a, b in zip(ours, theirs, strict=True):
        assert a["e"] == pytest.approx(b["e"], abs=1e-6)
        np.testing.assert_allclose(a["f"], b["f"], atol=1e-4)
        assert ("s" in a) == stress
        if stress:
            np.testing.assert_allclose(a["s"], b["s"], atol=5e-3)  # GPa


def test_potential_forces_are_chgnets(chgnet):
    """Through ``CHGNetPotential.calculate``: eV per cell, eV/Å and the Voigt stress in eV/Å^3."""
    from ase import units

    crystals = _crystals()
    model = chgnet.model
    theirs = model.predict_graph([model.graph_converter(s) for s in crystals], task="efs", batch_size=4)
    for calc, s, ref in zip(
        chgnet.calculate(crystals, forces=True, stress=True), crystals, theirs, strict=True
    ):
        assert calc.ok
        assert calc.energy == pytest.approx(float(ref["e"]) * len(s), abs=1e-5)
        np.testing.assert_allclose(calc.forces, ref["f"], atol=1e-4)
        np.testing.assert_allclose(calc.stress[:3], np.diag(ref["s"]) * units.GPa, atol=5e-3 * units.GPa)


GRAPH_FIELDS = (
    "atomic_number",
    "atom_frac_coord",
    "atom_graph",
    "neighbor_image",
    "directed2undirected",
    "undirected2directed",
    "bond_graph",
    "lattice",
)


def _random_cells(count: int) -> list[Structure]:
    """Random 1-16-atom triclinic cells from dense to open: the same neighbour atom at several images,
    some inside the 3 Å bond cutoff and some outside, which decides the order of CHGNet's angle list."""
    rng = np.random.default_rng(1)
    cells = []
    for _ in range(count):
        n = int(rng.integers(1, 17))
        a = (n * rng.uniform(6, 20)) ** (1 / 3)
        lattice = Lattice.from_parameters(*(a * rng.uniform(0.7, 1.3, 3)), *rng.uniform(60, 120, 3))
        cells.append(Structure(lattice, list(rng.choice(["Zr", "C", "Nb", "N", "H"], n)), rng.random((n, 3))))
    return cells


def test_graphs_are_chgnets(chgnet):
    """Every index array equal, element by element and in order, on 120 unlike cells: the model then
    sees exactly the inputs CHGNet's converter would give it."""
    import torch

    converter = chgnet.model.graph_converter
    cells = _random_cells(120) + _crystals()
    angles = 0
    for cell in cells:
        theirs, ours = converter(cell), crystal_graph(converter, cell)
        for field in GRAPH_FIELDS:
            a, b = getattr(theirs, field), getattr(ours, field)
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), (field, cell.formula)
        assert ours.atom_frac_coord.requires_grad and ours.lattice.requires_grad
        assert (ours.composition, ours.atom_graph_cutoff, ours.bond_graph_cutoff) == (
            theirs.composition,
            theirs.atom_graph_cutoff,
            theirs.bond_graph_cutoff,
        )
        angles += len(ours.bond_graph)
    assert angles > 10_000  # the angle lists were really compared


def test_graph_edge_cases_as_chgnet(chgnet):
    """No bond under 3 Å (an empty angle list) and an isolated atom (CHGNet refuses it)."""
    converter = chgnet.model.graph_converter
    sparse = Structure(Lattice.cubic(4.0), ["Cs", "Cs"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ours, theirs = crystal_graph(converter, sparse), converter(sparse)
    assert ours.bond_graph.shape == theirs.bond_graph.shape == (0,)
    lonely = Structure(Lattice.cubic(14.0), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="isolated atom"):
        converter(lonely)
    with pytest.raises(ValueError, match="isolated atom"):
        crystal_graph(converter, lonely)
