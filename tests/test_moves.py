"""Children of the best crystals (``--sampler tpe+moves``): which elements are neighbours, which children
a run's best trials get, and a real search that proposes and scores them."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import rocksalt, run_cli
from optuna.distributions import FloatDistribution
from pymatgen.core import Lattice, Structure

from upotbo.crystal.prototypes import prototype_name
from upotbo.errors import InputError
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.search.moves import Moves, periodic_neighbours, proposes_moves
from upotbo.search.samplers import make_sampler
from upotbo.search.scoring import RollingBatch
from upotbo.space.formula import FormulaSpace
from upotbo.space.seeds import cell_formula, spacegroup_number
from upotbo.space.space import SearchSpace
from upotbo.storage import RunDirectory


def test_periodic_neighbours():
    assert periodic_neighbours("Zr") == {"Y", "Nb", "Ti", "Hf"}
    assert periodic_neighbours("C") == {"B", "N", "Si"}
    assert periodic_neighbours("Nb") == {"Zr", "Mo", "V", "Ta"}
    assert periodic_neighbours("Ce") == frozenset()  # f block: no group to step along


def _scored(structure: Structure, value: float, number: int) -> optuna.trial.FrozenTrial:
    attrs = {
        "cell_formula": cell_formula(structure),
        "spacegroup_number": spacegroup_number(structure),
        "structure": json.dumps(structure.as_dict()),
    }
    trial = optuna.trial.create_trial(
        params={"volume": 2.0},
        distributions={"volume": FloatDistribution(1.0, 5.0, log=True)},
        value=value,
        user_attrs=attrs,
    )
    trial.number = number
    return trial


def test_children_of_the_best():
    """Substitutions of the relaxed crystal and common structure types of its elements, each crystal
    once, within the pool and the cell bounds, parents taken in turn."""
    space = SearchSpace.create("Zr,Ti,Nb,C,N", ncomp=2, nchem=2)
    zrc = rocksalt("Zr", "C", 4.7).get_primitive_structure()  # C1Zr1, 2 atoms
    trials = [_scored(zrc, -7.9, 0), _scored(Structure(Lattice.cubic(3.3), ["Nb"], [[0, 0, 0]]), -6.0, 1)]
    moves = Moves(space, share=1.0, parents=1)
    children = moves.children(trials, 100, rank=lambda t: t.value)
    assert {c.parent.number for c in children} == {0}
    by_move = {c.move: c for c in children}
    swapped = by_move["Zr->Ti"].structure
    assert cell_formula(swapped) == "C1Ti1" and prototype_name(swapped).startswith("rock salt")
    assert swapped.volume < zrc.volume  # Ti is smaller than Zr
    assert {"Zr->Nb", "C->N"} <= set(by_move) and "Zr->Hf" not in by_move  # Hf is not in the pool
    assert prototype_name(by_move["CsCl (B2) C:Zr"].structure).startswith("CsCl")
    assert not any(m.startswith("rock salt (B1)") for m in by_move)  # the parent's own crystal, found
    assert all(len(c.structure) <= 4 and max(c.structure.composition.values()) <= 2 for c in children)
    assert len({c.key for c in children}) == len(children)
    assert ("ZrC", 221) in {c.key for c in children} and ("ZrC", 225) not in {c.key for c in children}
    for child in children:  # the parameters a drawn candidate with that content and cell would have
        species = [space.chemical_scale[child.params[f"el{i}"]] for i in range(2)]
        assert set(species) == {s.symbol for s in child.structure.species}
        assert child.params["natoms"] == len(child.structure) and "spg" in child.params
    assert moves.children(trials, 100, rank=lambda t: t.value) == []  # each crystal proposed once
    both = Moves(space, share=0.25, parents=2).children(trials, 16, rank=lambda t: t.value)
    assert len(both) == 4 and {c.parent.number for c in both} == {0, 1}  # parents in turn
    assert any(c.move == "bcc (A2)" for c in Moves(space, share=1.0).children(trials[1:], 99, lambda t: 0))


def test_site_substitutions_make_ordered_ternaries():
    """In a ternary space, one atom of rock-salt ZrC's conventional cell replaced (Zr4C3O, as in the
    paper's ternary list), and a two-atom child written in the conventional cell the draws need."""
    space = SearchSpace.create("Zr,Nb,C,O", ncomp=3, nchem=5)
    zrc = rocksalt("Zr", "C", 4.7).get_primitive_structure()
    children = Moves(space, share=1.0).children([_scored(zrc, -7.9, 0)], 100, rank=lambda t: t.value)
    by_move = {c.move: c for c in children}
    oxycarbide = by_move["C->O (one site)"].structure
    assert cell_formula(oxycarbide) == "C3O1Zr4" and spacegroup_number(oxycarbide) == 221
    assert cell_formula(by_move["Zr->Nb (one site)"].structure) == "C4Nb1Zr3"
    assert cell_formula(by_move["Zr->Nb"].structure) == "C4Nb4"  # 2 atoms cannot fill 3 draws: 8
    assert by_move["Zr->Nb"].key == ("NbC", 225)


def test_sampler_names():
    space = SearchSpace.create("Zr,C", ncomp=2, nchem=2)
    assert proposes_moves("tpe+moves", space) and not proposes_moves("tpe", space)
    make_sampler("tpe+moves", 0, 10)  # TPE underneath
    with pytest.raises(InputError, match="a --formula search fixes them: use tpe"):
        proposes_moves("tpe+moves", FormulaSpace.create("ZrC"))
    with pytest.raises(InputError, match="tpe, random, tpe\\+moves, random\\+moves"):
        make_sampler("bogus", 0, 10)


def test_search_proposes_children(tmp_path):
    """A real search: after its first scored batch, some trials are children of the best so far,
    scored from the crystal the move made."""
    out = tmp_path / "run"
    proc = run_cli(
        "search", "--pool", "Zr,Ti,Nb,C,N", "--nchem", "2", "--steps", "40", "--n-init", "8",
        "--batch-size", "8", "--relax-steps", "0", "--sampler", "tpe+moves", "--out", str(out),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    trials = RunDirectory.open(out).study().get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    children = [t for t in trials if "parent" in t.user_attrs]
    assert children, "no child proposed"
    assert all(c.number >= 8 for c in children)  # not before the first batch was scored
    for child in children:
        parent = by_number[child.user_attrs["parent"]]
        assert parent.number < child.number and parent.value is not None
        assert child.user_attrs["child"].endswith(f"from {parent.number}")
        move = child.user_attrs["child"].split(" from ")[0]
        if "->" in move:  # a substitution: the parent's elements, one swapped
            old, new = move.split("->")
            assert old in parent.user_attrs["cell_formula"] and new in child.user_attrs["cell_formula"]


def test_children_relax_from_their_own_crystal(chgnet, tmp_path, monkeypatch):
    """In a real relaxing search, exactly the children join the rolling batch unperturbed."""
    joined: dict[int, bool] = {}
    add = RollingBatch.add

    def spy(self, key, structure, exact=False):
        joined[key] = exact
        add(self, key, structure, exact)

    monkeypatch.setattr(RollingBatch, "add", spy)
    space = SearchSpace.create("Zr,Ti,Nb,C,N", 2, 2)
    config = SearchConfig(n_init=8, batch_size=8, relax_steps=3, sampler="tpe+moves", seed=1, threads=1)
    search = Search(space, chgnet, CohesiveEnergy(), tmp_path / "run", config)
    search.run(40)
    trials = {t.number: t for t in search.memory.get_trials(deepcopy=False)}  # the batch's keys
    children = {n for n in joined if "child" in trials[n].user_attrs}
    assert children and len(children) < len(joined)
    assert {n for n, exact in joined.items() if exact} == children


def test_formula_search_refuses_moves(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("search", "--formula", "ZrC", "--sampler", "tpe+moves", "--steps", "8", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("use tpe")
    assert not out.exists()
