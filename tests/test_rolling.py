"""Relaxations in a rolling batch: crystals join and leave a pool stepped as one potential call."""

from __future__ import annotations

import multiprocessing
import sys
import types

import numpy as np
import optuna
import pytest
from conftest import rocksalt
from pymatgen.core import Lattice, Structure

from upotbo.errors import InputError, WorkerDied
from upotbo.potentials import Potential, RelaxPool, relax_batch
from upotbo.potentials.chgnet import CHGNetPotential
from upotbo.properties import CohesiveEnergy
from upotbo.search import Search, SearchConfig
from upotbo.search.evaluate import break_symmetry
from upotbo.search.split_potential import PotentialProcesses, cost, split
from upotbo.space import SearchSpace
from upotbo.storage import load_existing, local_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Counting(Potential):
    """The real potential, counting the crystals of each call it gets (forces calls apart)."""

    def __init__(self, inner: Potential) -> None:
        self.inner, self.calls, self.force_calls = inner, [], []
        self.name, self.elements, self.energy_reference = inner.name, inner.elements, inner.energy_reference

    def calculate(self, structures, forces=False, stress=False):
        self.calls.append(len(structures))
        if forces:
            self.force_calls.append(len(structures))
        return self.inner.calculate(structures, forces=forces, stress=stress)


def test_a_crystal_relaxes_alike_whoever_shares_its_steps(chgnet):
    """A crystal's FIRE trajectory is its own: relaxed alone, or joining a pool mid-way next to others
    that leave early, it ends at the same energy after the same number of steps."""
    zrc = break_symmetry(rocksalt("Zr", "C", 4.9))
    alone = relax_batch(chgnet, [zrc], steps=30, fmax=0.01)[0]
    pool = RelaxPool(chgnet, steps=30, fmax=0.01)
    pool.add("tin", break_symmetry(rocksalt("Ti", "N", 4.1)))
    pool.add("nbc", break_symmetry(rocksalt("Nb", "C", 4.3)))
    pool.step()
    pool.step()
    pool.add("zrc", zrc)
    finished = {}
    while pool:
        finished.update(pool.step(lambda key, step, energy: key == "tin" and step == 5))
    assert set(finished) == {"tin", "nbc", "zrc"}
    assert finished["tin"].steps == 5 and not finished["tin"].converged
    assert finished["zrc"].steps == alone.steps
    assert finished["zrc"].energy == pytest.approx(alone.energy, abs=1e-4 * len(zrc))
    assert finished["zrc"].initial_energy == pytest.approx(alone.initial_energy, abs=1e-4 * len(zrc))


def test_bfgs_relaxes_a_distorted_crystal_further_in_the_same_steps(chgnet):
    """The in-loop relaxation's optimizer is a setting: BFGS takes a strained, rattled rock-salt ZrC
    lower than FIRE in 10 steps (the reason it is offered); an unknown name is refused in one line."""
    start = break_symmetry(rocksalt("Zr", "C", 5.1), strain=0.08, rattle=0.1)
    fire, bfgs = (relax_batch(chgnet, [start], steps=10, fmax=0.01, optimizer=o)[0] for o in ("fire", "bfgs"))
    assert fire.steps == bfgs.steps == 10 and bfgs.initial_energy == pytest.approx(fire.initial_energy)
    assert bfgs.energy < fire.energy - 0.01
    with pytest.raises(InputError, match="optimizer 'lbfgs' unknown: use one of fire, bfgs"):
        RelaxPool(chgnet, steps=3, optimizer="lbfgs")


def test_a_failed_crystal_leaves_the_pool_alone(chgnet):
    """A crystal the potential refuses (collapsed cell) leaves at once with its reason; the others go on."""
    collapsed = Structure(Lattice.cubic(1.0), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    pool = RelaxPool(chgnet, steps=3)
    pool.add(0, collapsed)
    pool.add(1, rocksalt("Zr", "C", 4.7))
    first = dict(pool.step())
    assert list(first) == [0] and "collapsed cell" in first[0].error
    assert len(pool) == 1


def test_potential_processes_give_the_potential_s_values(chgnet):
    """Split over two processes of one thread each, every crystal gets the values the potential gives
    it in this process, in the caller's order; a refused crystal keeps its reason; no process is left."""
    crystals = [
        rocksalt("Zr", "C", 4.7),
        Structure(Lattice.cubic(1.0), ["Zr", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        break_symmetry(rocksalt("Ti", "N", 4.2)),
        Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        break_symmetry(rocksalt("Nb", "C", 4.5)),
    ]
    here = chgnet.calculate(crystals, forces=True, stress=True)
    with PotentialProcesses(chgnet, 2) as split_up:
        assert len(multiprocessing.active_children()) == 2
        there = split_up.calculate(crystals, forces=True, stress=True)
        energies = split_up.calculate(crystals)
        alone = split_up.calculate(crystals[:1])  # one crystal goes to a worker too
        flags = [True, False, True, False, False]
        mixed = split_up.calculate_mixed(crystals, flags, stress=True)  # one round trip
        threads = {split_up._pool.submit(_torch_threads).result() for _ in range(4)}  # type: ignore[union-attr]
    assert not multiprocessing.active_children()
    assert threads == {1}, "one torch thread per potential process (two at 2 each ran 10-100x slower)"
    assert alone[0].energy == pytest.approx(here[0].energy, abs=1e-4 * len(crystals[0]))
    assert "collapsed cell" in there[1].error and not there[1].ok
    for a, b, e, crystal in zip(here, there, energies, crystals, strict=True):
        if a.ok:
            assert b.energy == pytest.approx(a.energy, abs=1e-4 * len(crystal))
            assert e.energy == pytest.approx(a.energy, abs=1e-4 * len(crystal))
            assert np.allclose(b.forces, a.forces, atol=1e-3) and np.allclose(b.stress, a.stress, atol=1e-2)
    for a, m, wanted, crystal in zip(here, mixed, flags, crystals, strict=True):
        assert m.ok == a.ok
        if m.ok:  # each crystal gets what it asked for: its energy, and its forces and stress if flagged
            assert m.energy == pytest.approx(a.energy, abs=1e-4 * len(crystal))
            assert (m.forces is not None, m.stress is not None) == (wanted, wanted)
            if wanted:
                assert np.allclose(m.forces, a.forces, atol=1e-3)
    in_process = chgnet.calculate_mixed(crystals, flags, stress=True)
    asked = [f for f, c in zip(flags, here, strict=True) if c.ok]
    assert [c.forces is not None for c in in_process if c.ok] == asked


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_a_potential_process_that_cannot_start_ends_the_call_with_one_error():
    """Workers that die while loading the potential (here: its class is in a module they cannot
    import) end the call with ``WorkerDied``, whose message says what to do, instead of a hang; no
    process is left."""
    ghost = types.ModuleType("upotbo_ghost_module")
    source = "from upotbo.potentials.chgnet import CHGNetPotential\nclass Ghost(CHGNetPotential): pass"
    exec(source, ghost.__dict__)
    sys.modules[ghost.__name__] = ghost
    try:
        with pytest.raises(WorkerDied, match="potential process died.*__main__.*--resume"):
            with PotentialProcesses(ghost.Ghost(), 2) as split_up:
                split_up.calculate([rocksalt("Zr", "C", 4.7), rocksalt("Ti", "N", 4.2)])
    finally:
        del sys.modules[ghost.__name__]
    assert not multiprocessing.active_children()
    assert isinstance(ghost.Ghost(), CHGNetPotential)


def test_split_balances_cost_and_depends_on_the_batch_alone():
    """Dense crystals weigh most (atoms / (volume per atom)^2); the halves are within the heaviest
    crystal's cost of each other, and the same batch always splits the same way."""
    crystals = [rocksalt("Zr", "C", a) for a in (4.0, 4.2, 4.4, 4.6, 4.8, 5.0, 5.5)]
    groups = split(crystals, 2)
    assert sorted(i for g in groups for i in g) == list(range(len(crystals)))
    loads = [sum(cost(crystals[i]) for i in g) for g in groups]
    assert abs(loads[0] - loads[1]) <= max(cost(c) for c in crystals)
    assert split(crystals, 2) == groups and cost(crystals[0]) > cost(crystals[-1])
    assert split(crystals[:1], 2) == [[0]]
    # a crystal asked for its energy alone weighs less: two dense ones on energy alone share a
    # process, against the lighter one with forces
    pair = [rocksalt("Zr", "C", 4.0), rocksalt("Zr", "C", 4.0), rocksalt("Zr", "C", 4.8)]
    assert split(pair, 2) == [[0, 2], [1]]
    assert split(pair, 2, [0.3, 0.3, 1.0]) == [[2], [0, 1]]


def _run(potential, out, rolling: bool):
    space = SearchSpace.create("Zr,C,N,B", 2, 3)
    # one thread: the potential runs in this process, where the counting wrapper sees its calls
    config = SearchConfig(n_init=8, relax_steps=12, batch_size=8, seed=4, threads=1, rolling=rolling)
    return Search(space, potential, CohesiveEnergy(), out, config).run(48)


@pytest.mark.slow
def test_a_rolling_batch_keeps_the_potential_busy(chgnet, tmp_path):
    """While the budget lasts, the potential sees full batches: fixed batches shrink as their
    relaxations end (most end early, pruned or converged), a rolling batch refills the places."""
    sizes = {}
    for rolling in (True, False):
        counting = Counting(chgnet)
        result = _run(counting, tmp_path / str(rolling), rolling)
        assert result.steps == 48 and result.scored >= 36  # the rest failed to build
        assert sum(counting.calls) == result.potential_calls
        sizes[rolling] = counting.force_calls  # energy-only calls screen the newcomers alone
    lasting = sizes[True][: len(sizes[True]) // 2]  # the tail drains the pool: nothing left to ask
    assert sum(lasting) >= 0.75 * 8 * len(lasting), lasting  # dips when many leave at once
    mean = {rolling: sum(calls) / len(calls) for rolling, calls in sizes.items()}
    assert mean[True] > 1.3 * mean[False], mean
    stored = load_existing(local_url(tmp_path / "True")).trials
    assert len(stored) == 48 and len({t.number for t in stored}) == 48


def test_two_lanes_take_turns_at_the_potential_processes(chgnet, tmp_path, monkeypatch):
    """With the potential in two processes, the relaxations are split in two rolling batches that are
    stepped in turn (one computed while the other's optimizer steps run here), each at most half of
    ``batch_size``, and every crystal asked is stored."""
    from upotbo.search import scoring, study

    steps: list[tuple[int, int]] = []
    step = scoring.Scorer.step

    def spy(self, batch, best, cores=1):
        steps.append((id(batch), len(batch)))
        return step(self, batch, best, cores)

    monkeypatch.setattr(scoring.Scorer, "step", spy)
    space = SearchSpace.create("Zr,C,N,B", 2, 3)
    config = SearchConfig(n_init=8, relax_steps=6, batch_size=8, seed=4, threads=2)
    result = Search(space, chgnet, CohesiveEnergy(), tmp_path, config).run(32)
    assert result.steps == 32
    assert len({lane for lane, _ in steps}) == study.LANES == 2
    assert max(size for _, size in steps) <= 4
    middle = steps[1:-4]  # alternation, but at the start (one lane filled first) and the drained end
    turns = sum(a[0] != b[0] for a, b in zip(middle, middle[1:], strict=False))
    assert turns >= 0.8 * (len(middle) - 1), steps
    stored = load_existing(local_url(tmp_path)).trials
    assert len(stored) == 32 and not multiprocessing.active_children()
