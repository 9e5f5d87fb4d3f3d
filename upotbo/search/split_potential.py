"""One potential in several processes of one torch thread each, a batch split among them by cost.

On these CPUs CHGNet does not use a second thread well on a relaxation's batches (small crystals,
many small tensor operations, the autograd engine's per-operation overhead): 27.5 crystals/s with
forces and stress on 2 threads, 21.8 on 1, on a paper42 search's own geometries in batches of 32.
Two processes of one thread each run two such halves at once. A crystal's cost grows with its atoms
times the neighbours each has within the bond cutoff (the angles CHGNet's line graph holds), which
grows as the square of the number density, so halves are balanced on ``atoms / (volume per atom)^2``,
longest first, and a crystal's half (and so its value) depends on the batch alone, never on timing.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pymatgen.core import Lattice, Structure

from upotbo.errors import WorkerDied
from upotbo.potentials.base import Calculation, Potential
from upotbo.search.processes import held, helpers_holding, stop_children


def cost(structure: Structure) -> float:
    """A crystal's relative cost to the potential: atoms x neighbours per atom (~ density squared)."""
    per_atom = structure.volume / len(structure)
    return len(structure) / per_atom**2


def split(
    structures: Sequence[Structure], parts: int, weights: Sequence[float] | None = None
) -> list[list[int]]:
    """Indices of ``structures`` in ``parts`` groups of about equal cost (largest first, to the
    lightest group: deterministic, ties by index); ``weights`` scale each crystal's cost."""
    weights = [1.0] * len(structures) if weights is None else weights
    costs = [cost(s) * w for s, w in zip(structures, weights, strict=True)]
    groups: list[list[int]] = [[] for _ in range(parts)]
    load = [0.0] * parts
    for i in sorted(range(len(structures)), key=lambda i: (-costs[i], i)):
        k = min(range(parts), key=lambda k: (load[k], k))
        groups[k].append(i)
        load[k] += costs[i]
    return [sorted(g) for g in groups if g]


ENERGY_WEIGHT = 0.5  # a crystal's cost without forces, relative to with forces and stress


class PotentialProcesses(Potential):
    """``potential`` in ``processes`` helper processes, one torch thread each; a context manager.

    Values, units and failures as the wrapped potential's; a call's crystals are split in cost-balanced
    parts, one per worker. Outside the ``with`` block (or with one process) it calls ``potential``
    in this process.
    """

    def __init__(self, potential: Potential, processes: int) -> None:
        self.potential, self.processes = potential, processes
        self.name, self.elements = potential.name, potential.elements
        self.energy_reference = potential.energy_reference
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PotentialProcesses:
        if self.processes > 1:
            self._pool = helpers_holding(self.processes, pickle.dumps(self.potential), threads=1)
            # start every worker now, each loading the model on a first small call, while the search
            # samples and builds its first crystals (the pool would spawn them one by one, on demand)
            element = "Cu" if "Cu" in self.potential.elements else min(self.potential.elements)
            probe = Structure(Lattice.cubic(2.9), [element] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])
            for _ in range(self.processes):
                self._pool.submit(_calculate, [probe], [False], False)
        return self

    @property
    def remote(self) -> bool:
        """Whether the potential runs in the worker processes (not in this one)."""
        return self._pool is not None

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._pool is not None:
            if exc_type is not None:
                stop_children()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def calculate(
        self, structures: Sequence[Structure], forces: bool = False, stress: bool = False
    ) -> list[Calculation]:
        if self._pool is None:  # a single crystal too goes to a worker: this process never loads the model
            return self.potential.calculate(structures, forces=forces, stress=stress)
        return self.calculate_mixed(structures, [forces] * len(structures), stress)

    def calculate_mixed(
        self, structures: Sequence[Structure], forces: Sequence[bool], stress: bool = False
    ) -> list[Calculation]:
        """One round trip: each process gets its share of both kinds (a crystal's energy alone
        weighs half of its energy with forces and stress, CHGNet on a paper42 search's crystals)."""
        if self._pool is None:
            return self.potential.calculate_mixed(structures, forces, stress)
        groups = split(structures, self.processes, [1.0 if f else ENERGY_WEIGHT for f in forces])
        out: list[Calculation | None] = [None] * len(structures)
        try:
            futures = [
                self._pool.submit(
                    _calculate, [structures[i] for i in g], [forces[i] for i in g], stress
                )
                for g in groups
            ]
            for group, future in zip(groups, futures, strict=True):
                for i, calc in zip(group, future.result(), strict=True):
                    out[i] = calc
        except BrokenProcessPool as exc:
            raise WorkerDied(
                f"a potential process died (killed, out of memory, or it could not start or load "
                f"{self.potential.name}; a Python script that runs a search needs "
                f'`if __name__ == "__main__":`): what was scored is stored, rerun with --resume'
            ) from exc
        return out  # type: ignore[return-value]


def _calculate(structures: list[Structure], forces: list[bool], stress: bool) -> list[Calculation]:
    return held().calculate_mixed(structures, forces, stress)
