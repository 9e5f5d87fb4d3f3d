"""Search space (pools, define-by-run draws, symmetry tables) and the symmetric crystal builder."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.symmetry import Group

from upotbo.crystal import build_structure
from upotbo.crystal.filters import check_vacuum
from upotbo.errors import CandidateFailed, InputError
from upotbo.space import Candidate, SearchSpace, parse_pool
from upotbo.space.space import apportion
from upotbo.space.symmetry import assign_wyckoffs, compatible_space_groups

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_paper42_pool():
    pool = parse_pool("paper42")
    assert len(pool) == 42 and "Nb" in pool and "Tc" not in pool and "V" not in pool


@pytest.mark.parametrize(
    ("spec", "message"),
    [("Zr,Xx", "'Xx'"), ("", "empty element pool"), ("zr,c", "'zr'"), ("Zr,C,Zr", "lists Zr twice")],
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


def test_shipped_wyckoff_tables_are_pyxtals():
    """The table a search reads instead of building 230 PyXtal groups is PyXtal's, group by group."""
    from upotbo.space.symmetry import _shipped, pyxtal_table

    shipped = _shipped()
    assert sorted(shipped, key=int) == [str(n) for n in range(1, 231)]
    for n in range(1, 231):
        assert shipped[str(n)] == pyxtal_table(n), f"space group {n}"


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


@pytest.mark.parametrize("ncomp", [1, 2, 3])
def test_every_stoichiometry_is_reachable_through_shares(ncomp):
    """``composition_params`` gives the parameters that draw exactly the requested counts."""
    space = SearchSpace.create("C,Zr,N", ncomp=ncomp, nchem=5)
    picks = ("Zr", "C", "N")[:ncomp]
    for counts in itertools.product(range(1, 6), repeat=ncomp):
        params = space.composition_params(picks, counts)
        shares = [params[f"share{i}"] for i in range(ncomp - 1)]
        assert apportion(shares, params["natoms"], 5) == counts
        study = optuna.create_study()
        study.enqueue_trial({**params, "spg": 0.99, "wyckoff": 0.5})
        trial = study.ask()
        try:
            cand = space.suggest(trial)
        except CandidateFailed:  # e.g. no space group hosts these counts: the counts still were drawn
            continue
        drawn = dict(zip(cand.species, cand.counts, strict=True))
        expected: dict[str, int] = {}
        for symbol, n in zip(picks, counts, strict=True):
            expected[symbol] = expected.get(symbol, 0) + n
        assert drawn == expected


def test_shares_keep_counts_in_bounds():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        ncomp = int(rng.integers(1, 5))
        natoms = int(rng.integers(ncomp, 5 * ncomp + 1))
        counts = apportion(list(rng.random(ncomp - 1)), natoms, 5)
        assert sum(counts) == natoms and all(1 <= n <= 5 for n in counts)
    assert apportion([0.5], 8, 5) == (4, 4)  # 1:1 is share 0.5 at any size
    assert apportion([0.5], 2, 5) == (1, 1)


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


def test_build_rejects_overlap_and_squeezes_vacuum():
    overlap = Candidate(
        ("C", "Zr"), (4, 4), 225, (("4a",), ("4a",)), _rocksalt_candidate().lattice, ((0, 0, 0),) * 2
    )
    with pytest.raises(CandidateFailed, match="coincide"):
        build_structure(overlap)
    slab = Candidate(
        ("C", "Zr"),
        (1, 1),
        1,
        (("1a",), ("1a",)),
        {"volume": 3.0, "b_a": 1.0, "c_a": 3.0, "alpha": 90, "beta": 90, "gamma": 90},
        ((0, 0, 0.0), (0.5, 0.5, 0.1)),
    )
    unrepaired = Structure(Lattice.tetragonal(2.6, 7.8), ["C", "Zr"], [[0, 0, 0], [0.5, 0.5, 0.1]])
    with pytest.raises(CandidateFailed, match="vacuum slab: 7.0 Å empty gap along axis c"):
        check_vacuum(unrepaired)
    squeezed = build_structure(slab)  # the same content and sites, the c axis shortened to a bond
    check_vacuum(squeezed)
    assert squeezed.lattice.c < 0.6 * squeezed.lattice.a * 3.0
    assert squeezed.composition.reduced_formula == "ZrC"


def test_prototypes_hold_pymatgen_s_crystals(monkeypatch):
    """``from_spacegroup`` (ASE's tables) builds the same sites as pymatgen's
    ``Structure.from_spacegroup`` for every prototype written as a space group and its orbits."""
    from upotbo.crystal import prototypes as module

    built = []
    proto = module._proto

    def spy(name, sg, lattice, species, coords, nn_volume=0.0):
        built.append((name, sg, lattice, species, coords))
        return proto(name, sg, lattice, species, coords, nn_volume)

    monkeypatch.setattr(module, "_proto", spy)
    module.prototypes.cache_clear()
    try:
        module.prototypes()
    finally:
        module.prototypes.cache_clear()
    assert len(built) >= 20

    def sites(structure: Structure) -> list[tuple[str, tuple[float, ...]]]:
        return sorted((s.species_string, tuple(np.round(s.frac_coords % 1.0, 6) % 1.0)) for s in structure)

    for name, sg, lattice, species, coords in built:
        ours = module.from_spacegroup(sg, lattice, species, coords)
        theirs = Structure.from_spacegroup(sg, lattice, species, coords)
        assert np.allclose(ours.lattice.matrix, theirs.lattice.matrix), name
        assert sites(ours) == sites(theirs), name
