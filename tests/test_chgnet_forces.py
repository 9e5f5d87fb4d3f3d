"""The one-backward-pass forces and stress against CHGNet's own ``predict_graph`` on the same graphs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure

from upotbo.potentials.chgnet_forces import predict_forces


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
