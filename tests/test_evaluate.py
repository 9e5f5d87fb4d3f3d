"""The search's evaluator with the real CHGNet: symmetry breaking before relaxation, pruning."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from upotbo.properties import CohesiveEnergy
from upotbo.search.evaluate import Evaluator, break_symmetry


def cscl(metal: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [metal, "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_break_symmetry_is_small_deterministic_and_breaks_the_cubic_cell():
    start = cscl("Zr", 2.95)
    moved = break_symmetry(start)
    assert moved.lattice.abc != pytest.approx(start.lattice.abc, abs=1e-3)
    assert np.allclose(break_symmetry(start).cart_coords, moved.cart_coords)  # same candidate, same start
    assert abs(moved.volume / start.volume - 1) < 0.3
    assert moved.get_space_group_info(symprec=0.01)[1] < 221


def test_exact_crystals_start_where_they_are(chgnet):
    """A move's child is relaxed from its own crystal; any other from a broken-symmetry copy."""
    a, b = cscl("Zr", 2.95), cscl("Nb", 2.9)
    starts = Evaluator(chgnet, CohesiveEnergy(), relax_steps=5).start([a, b], exact={1})
    assert starts[1] == b
    assert not np.allclose(starts[0].lattice.matrix, a.lattice.matrix)
    assert Evaluator(chgnet, CohesiveEnergy(), relax_steps=0).start([a, b]) == [a, b]


def test_cscl_start_relaxes_to_rock_salt_only_when_symmetry_is_broken(chgnet):
    """CsCl-type ZrC is a symmetric saddle (-6.86 eV/atom); broken, it relaxes to rock salt (-7.88)."""
    prop = CohesiveEnergy()
    kept = Evaluator(chgnet, prop, relax_steps=40, perturb=False).score([cscl("Zr", 2.95)])[0]
    broken = Evaluator(chgnet, prop, relax_steps=40).score([cscl("Zr", 2.95)])[0]
    assert kept.value == pytest.approx(-6.86, abs=0.05)
    assert broken.value < -7.8
    assert broken.structure.get_space_group_info(symprec=0.1)[0] == "Fm-3m"


def test_hopeless_candidate_is_pruned_at_its_single_point(chgnet):
    """Far above the best known value (margin x 1.5), a candidate gets no force call at all."""
    weak = Structure(Lattice.cubic(5.0), ["K", "I"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    scored = Evaluator(chgnet, CohesiveEnergy(), relax_steps=40, prune_margin=1.0).score([weak], best=-7.8)[0]
    assert scored.relax_steps == 0 and scored.value > -7.8 + 1.5
