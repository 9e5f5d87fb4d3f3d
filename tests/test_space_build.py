"""Search space (pools, define-by-run draws, symmetry tables) and the symmetric crystal builder."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.symmetry import Group

from upotbo.build import build_structure
from upotbo.errors import CandidateFailed, InputError
from upotbo.space import Candidate, SearchSpace, parse_pool
from upotbo.space.symmetry import assign_wyckoffs, compatible_space_groups

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_paper42_pool():
    pool = parse_pool("paper42")
    assert len(pool) == 42 and "Nb" in pool and "Tc" not in pool and "V" not in pool


@pytest.mark.parametrize(
    ("spec", "message"), [("Zr,Xx", "'Xx'"), ("", "empty element pool"), ("zr,c", "'zr'")]
)
def test_bad_pools(spec, message):
    with pytest.raises(InputError, match=message):
        parse_pool(spec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ncomp": 0}, "--ncomp 0"),
        ({"ncomp": 5}, "--ncomp 5"),
        ({"nchem": 0}, "--nchem 0"),
        ({"ncomp": 3, "max_atoms": 2}, "--max-atoms 2"),
    ],
)
def test_bad_space_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        SearchSpace.create("Zr,C", **kwargs)


@pytest.mark.parametrize("counts", [(1, 1), (4, 4), (2, 3), (3, 5), (10,), (1, 2, 3)])
def test_compatible_groups_match_pyxtal(counts):
    expected = tuple(n for n in range(1, 231) if Group(n).check_compatible(list(counts))[0])
    assert compatible_space_groups(counts) == expected


def test_wyckoff_assignment_counts():
    for seed in range(5):
        combo = assign_wyckoffs(225, (4, 4), np.random.default_rng(seed))
        assert combo in ((("4a",), ("4b",)), (("4b",), ("4a",)))
    assert assign_wyckoffs(225, (3,)) is None


def test_draws_respect_counts_and_unaries():
    space = SearchSpace.create("C,Zr", ncomp=2, nchem=5, max_atoms=8)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_unary = False
    for _ in range(200):
        trial = study.ask()
        try:
            cand = space.suggest(trial)
        except CandidateFailed:
            continue
        assert cand.natoms <= 8 and all(1 <= n for n in cand.counts)
        seen_unary |= len(cand.species) == 1
        study.tell(trial, 0.0)
    assert seen_unary  # drawing with replacement reaches C_n and Zr_n


def _rocksalt_candidate(a=4.7) -> Candidate:
    ratio = a**3 / (4 * 4 / 3 * np.pi * (1.75**3 + 0.76**3))
    lattice = {"volume": ratio, "b_a": 1, "c_a": 1, "alpha": 90, "beta": 90, "gamma": 90}
    return Candidate(
        ("C", "Zr"), (4, 4), 225, (("4b",), ("4a",)), lattice, ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    )


def test_build_rocksalt():
    structure = build_structure(_rocksalt_candidate())
    assert len(structure) == 8
    assert SpacegroupAnalyzer(structure).get_space_group_number() == 225
    assert structure.lattice.a == pytest.approx(4.7, abs=1e-6)
    assert build_structure(_rocksalt_candidate()) == structure  # deterministic


def test_build_rejects_overlap_and_vacuum():
    overlap = Candidate(
        ("C", "Zr"), (4, 4), 225, (("4a",), ("4a",)), _rocksalt_candidate().lattice, ((0, 0, 0),) * 2
    )
    with pytest.raises(CandidateFailed, match="coincide"):
        build_structure(overlap)
    slab = Candidate(
        ("Zr",),
        (1,),
        1,
        (("1a",),),
        {"volume": 4.0, "b_a": 0.6, "c_a": 1.8, "alpha": 90, "beta": 90, "gamma": 90},
        ((0, 0, 0),),
    )
    with pytest.raises(CandidateFailed, match="vacuum|empty"):
        build_structure(slab)
