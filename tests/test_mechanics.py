"""Mechanical properties with the real CHGNet-0.3.0: against experiment where the potential reproduces it,
against values measured with the same potential where it does not.

CHGNet's bulk moduli of diamond and NaCl match experiment, but its elastic tensors are soft, as for
universal potentials generally (B. Deng et al., "Overcoming systematic softening in universal machine
learning interatomic potentials by fine-tuning", arXiv:2405.07105 (2024)): diamond's C11 and C44 come
out ~40-50 % below experiment and C12 ~2.5x above it, so Chen's hardness of diamond is ~21 GPa, not ~95.
Those numbers are pinned here as measured (CHGNet's own ``CHGNetCalculator`` gives the same stresses),
with the experimental values beside them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from upotbo.potentials import relax_batch
from upotbo.properties.mechanics import (
    Mechanics,
    born_stable,
    bulk_moduli,
    mechanics,
    vickers_hardness,
    vrh_moduli,
)


def fcc(a: float) -> Lattice:
    """Primitive fcc cell with its Cartesian axes along the cube axes (so C11 is C_xxxx)."""
    return Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])


def bcc(a: float) -> Lattice:
    return Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]])


@pytest.fixture(scope="module")
def relaxed(chgnet) -> dict[str, Structure]:
    crystals = {
        "diamond": Structure(fcc(3.567), ["C", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        "NaCl": Structure(fcc(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Al": Structure(fcc(4.05), ["Al"], [[0, 0, 0]]),
        # bcc Cu is the textbook Born-unstable cubic metal: C11 < C12, it slides down the Bain path to
        # fcc (T. Kraft, P. M. Marcus, M. Methfessel, M. Scheffler, Phys. Rev. B 48, 5886 (1993)).
        "bcc Cu": Structure(bcc(2.88), ["Cu"], [[0, 0, 0]]),
    }
    results = relax_batch(chgnet, list(crystals.values()), steps=100, fmax=0.01)
    assert all(r.converged for r in results)
    out = {name: r.structure for name, r in zip(crystals, results, strict=True)}
    # Diamond squeezed to 3 Å^3 per cell, 1.5 Å^3/atom: calculate() refuses it (< 2.5 Å^3/atom).
    out["collapsed"] = Structure(
        Lattice(out["diamond"].lattice.matrix * (3.0 / out["diamond"].volume) ** (1 / 3)),
        ["C", "C"],
        [[0, 0, 0], [0.25, 0.25, 0.25]],
    )
    return out


@pytest.fixture(scope="module")
def eos(chgnet, relaxed) -> dict[str, float | str]:
    names = ["diamond", "collapsed", "NaCl", "Al"]  # the failure sits inside the batch
    return dict(zip(names, bulk_moduli(chgnet, [relaxed[n] for n in names]), strict=True))


@pytest.fixture(scope="module")
def mech(chgnet, relaxed) -> dict[str, Mechanics | str]:
    names = ["diamond", "collapsed", "NaCl", "Al", "bcc Cu"]
    return dict(zip(names, mechanics(chgnet, [relaxed[n] for n in names]), strict=True))


def test_diamond_bulk_modulus_from_eos(eos):
    # Experiment: 443 GPa (H. J. McSkimin & P. Andreatch, J. Appl. Phys. 43, 2944 (1972)); CHGNet: 427.
    assert eos["diamond"] == pytest.approx(443, rel=0.10)


def test_diamond_elastic_tensor(mech):
    result = mech["diamond"]
    assert isinstance(result, Mechanics)
    c = result.elastic_tensor
    assert c.shape == (6, 6) and np.allclose(c, c.T)
    # Cubic: three equal diagonals, equal off-diagonals, no normal-shear coupling.
    assert np.ptp(np.diag(c)[:3]) < 2 and np.ptp(np.diag(c)[3:]) < 2
    assert np.ptp([c[0, 1], c[0, 2], c[1, 2]]) < 2
    assert np.abs(c[:3, 3:]).max() < 1 and np.abs(c[3:, 3:] - np.diag(np.diag(c)[3:])).max() < 1
    # Experiment (McSkimin & Andreatch 1972): C11 1079, C12 124, C44 578 GPa. CHGNet-0.3.0 (measured,
    # 2 % strain): 643, 318, 298 -- soft in C11 and C44, stiff in C12, as noted in the module docstring.
    assert c[0, 0] == pytest.approx(643, rel=0.05)
    assert c[0, 1] == pytest.approx(318, rel=0.05)
    assert c[3, 3] == pytest.approx(298, rel=0.05)
    assert c[0, 0] > c[0, 1] > 0 and c[3, 3] > 0


def test_diamond_vrh_bulk_agrees_with_eos(mech, eos):
    # Two routes to one number: d(stress)/d(strain) vs the curvature of E(V).
    assert mech["diamond"].bulk_vrh == pytest.approx(eos["diamond"], rel=0.10)
    assert mech["diamond"].shear_vrh == pytest.approx(234, rel=0.05)  # experiment 535 (from the C above)


def test_diamond_is_hard_and_the_soft_crystals_are_not(mech):
    # Chen's model on experimental moduli gives 95 GPa (exp. 96 ± 5); on CHGNet's soft ones ~21 GPa.
    diamond = mech["diamond"].hardness
    assert diamond == pytest.approx(21, rel=0.15)
    for soft in ("NaCl", "Al"):
        assert isinstance(mech[soft], Mechanics)
        assert mech[soft].hardness < 3  # negative in Chen's model: ductile
        assert mech[soft].hardness < diamond - 15


def test_soft_crystal_bulk_moduli(eos, mech):
    # NaCl: experiment 24-25 GPa; CHGNet 25.0. Al: experiment 76 GPa; CHGNet 55 (softened).
    assert 22 < eos["NaCl"] < 28
    assert 45 < eos["Al"] < 65
    for name in ("NaCl", "Al"):
        assert born_stable(mech[name].elastic_tensor)
        assert mech[name].bulk_vrh == pytest.approx(eos[name], rel=0.15)


def test_bcc_copper_is_flagged_unstable(mech):
    reason = mech["bcc Cu"]
    assert isinstance(reason, str)
    match = re.fullmatch(
        r"mechanically unstable \(Born criteria\): smallest eigenvalue of C is (\S+) GPa", reason
    )
    assert match, reason
    assert float(match.group(1)) < -10  # C11 - C12: -20 GPa with CHGNet at 2 % strain (-36 at 1 %)


def test_collapsed_cell_is_a_reason_not_an_exception(eos, mech):
    for result in (eos["collapsed"], mech["collapsed"]):
        assert isinstance(result, str) and "collapsed cell" in result
    # Its neighbours in both batches came through (their values are checked above).
    assert isinstance(eos["diamond"], float) and isinstance(eos["NaCl"], float)
    assert isinstance(mech["diamond"], Mechanics) and isinstance(mech["NaCl"], Mechanics)


# ----------------------------------------------------------------------------- pure functions


def isotropic(bulk: float, shear: float) -> np.ndarray:
    """C of an isotropic solid: C11 = λ + 2G, C12 = λ, C44 = G with λ = B - 2G/3."""
    lam = bulk - 2 * shear / 3
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2 * shear
    c[np.arange(3, 6), np.arange(3, 6)] = shear
    return c


def cubic(c11: float, c12: float, c44: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[np.arange(3), np.arange(3)] = c11
    c[np.arange(3, 6), np.arange(3, 6)] = c44
    return c


def test_vrh_of_isotropic_tensor_returns_its_moduli():
    assert vrh_moduli(isotropic(160.0, 80.0)) == pytest.approx((160.0, 80.0))


def test_vrh_of_cubic_tensor_by_hand():
    # Diamond, experiment: B = (C11 + 2 C12)/3 = 442.33; G_V = (C11 - C12 + 3 C44)/5 = 537.80;
    # G_R = 5 (C11 - C12) C44 / (4 C44 + 3 (C11 - C12)) = 533.12; G_H = 535.46.
    bulk, shear = vrh_moduli(cubic(1079, 124, 578))
    assert bulk == pytest.approx(442.333, abs=1e-3)
    assert shear == pytest.approx((537.8 + 533.1176) / 2, abs=1e-3)


def test_vickers_hardness_by_hand():
    # Hv = 2 (k^2 G)^0.585 - 3, k = G/B. Diamond (B 443, G 535): 2 * 780.31^0.585 - 3 = 95.40.
    assert vickers_hardness(443, 535) == pytest.approx(95.40, abs=0.01)
    # Al (B 76, G 26): 2 * 3.0430^0.585 - 3 = 0.835; a softer, more ductile metal goes negative.
    assert vickers_hardness(76, 26) == pytest.approx(0.835, abs=0.001)
    assert vickers_hardness(100, 10) < 0
    with pytest.raises(ValueError):
        vickers_hardness(100, -5)


def test_born_stability():
    assert born_stable(isotropic(160, 80))
    assert born_stable(cubic(1079, 124, 578))
    assert not born_stable(cubic(97, 133, 72))  # C11 < C12: bcc Cu's tetragonal shear
    assert not born_stable(cubic(98, 2, -13))  # C44 < 0: simple-cubic Al with CHGNet
    assert not born_stable(isotropic(100, 0))  # zero shear stiffness is not stable either
    with pytest.raises(ValueError):
        born_stable(np.eye(3))
