"""The one interface every universal potential speaks.

Contract (what callers rely on):
- Units: total energy in eV per cell, forces in eV/Å, stress in eV/Å^3 with ASE's sign convention
  (positive = tensile), Voigt order xx yy zz yz xz xy.
- ``calculate`` takes a *batch*; a potential with a fast batched path (CHGNet) uses it, one without
  (any ASE calculator) loops. Batches are how the search keeps the potential busy.
- Failure is per structure, never per batch: a structure the model cannot handle (no neighbours in
  cutoff, NaN output) comes back as a ``Calculation`` with ``error`` set, the others are unaffected.
- ``energy_reference`` says what the energies mean (see ``reference.py``); ``elements`` what it covers.
"""

from __future__ import annotations

import hashlib
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from upotbo.errors import InputError
from upotbo.potentials.reference import EnergyReference


@dataclass
class Calculation:
    """Result for one structure: energy always (or ``error``), forces/stress when asked."""

    energy: float = math.nan
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Potential(ABC):
    """A universal interatomic potential scoring batches of pymatgen ``Structure`` objects."""

    name: str = "potential"
    energy_reference: EnergyReference
    elements: frozenset[str]
    # what a helper process running this potential imports before its first call: the fork server
    # imports it once for all of them (``upotbo.search.processes``)
    worker_modules: tuple[str, ...] = ()

    @abstractmethod
    def calculate(
        self, structures: Sequence[Structure], forces: bool = False, stress: bool = False
    ) -> list[Calculation]:
        """Score a batch; see the module docstring for units and failure semantics."""

    def calculate_mixed(
        self, structures: Sequence[Structure], forces: Sequence[bool], stress: bool = False
    ) -> list[Calculation]:
        """Score a batch in which only the crystals flagged in ``forces`` need forces (and ``stress``):
        two calls here; a potential in other processes makes them one round trip."""
        wanted = [i for i, f in enumerate(forces) if f]
        alone = [i for i, f in enumerate(forces) if not f]
        out: list[Calculation | None] = [None] * len(structures)
        for group, more in ((alone, False), (wanted, True)):
            if group:
                calcs = self.calculate([structures[i] for i in group], forces=more, stress=more and stress)
                for i, calc in zip(group, calcs, strict=True):
                    out[i] = calc
        return out  # type: ignore[return-value]

    def energies(self, structures: Sequence[Structure]) -> np.ndarray:
        """Total energies (eV per cell); NaN where a structure failed."""
        return np.array([c.energy if c.ok else math.nan for c in self.calculate(structures)])

    def check_elements(self, symbols: Sequence[str]) -> None:
        """Raise ``InputError`` naming any element this potential was not trained on."""
        missing = [s for s in symbols if s not in self.elements]
        if missing:
            raise InputError(
                f"element(s) {', '.join(missing)} not covered by the {self.name} potential: "
                f"remove them from the pool or choose another --potential"
            )


def build_graphs(
    structures: Sequence[Structure], build: Callable[[Structure], object], who: str
) -> tuple[list[Calculation | None], list, list[int]]:
    """Screen each structure and build its model input with ``build``: (a result per structure, set
    where it was refused or could not be built; the inputs built; the index of each in ``structures``).
    A structure that cannot be built fails alone, as the interface promises."""
    results: list[Calculation | None] = [None] * len(structures)
    graphs, index = [], []
    for i, structure in enumerate(structures):
        refused = screen(structure)
        if refused:
            results[i] = Calculation(error=refused)
            continue
        try:
            graphs.append(build(structure))
            index.append(i)
        except Exception as exc:
            results[i] = Calculation(error=f"{who} could not build a graph: {first_line(exc)}")
    return results, graphs, index


def first_line(exc: Exception) -> str:
    """``Type: first line of the message``, at most 200 characters: a failure reason on one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def predict_in_batches(graphs: list, batch_size: int, predict: Callable[[list], list]) -> list:
    """``predict`` over ``graphs`` in batches of ``batch_size``; a batch that raises is retried one
    graph at a time, so one bad graph costs only its own entry (the exception, in its place)."""
    out: list = []
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start : start + batch_size]
        try:
            out.extend(predict(chunk))
        except Exception:
            for graph in chunk:
                try:
                    out.extend(predict([graph]))
                except Exception as exc:
                    out.append(exc)
    return out


def to_voigt(tensor: np.ndarray) -> np.ndarray:
    """3x3 stress -> the interface's Voigt order (xx yy zz yz xz xy); a Voigt vector passes."""
    t = np.asarray(tensor, dtype=float)
    return np.array([t[0, 0], t[1, 1], t[2, 2], t[1, 2], t[0, 2], t[0, 1]]) if t.shape == (3, 3) else t


def to_tensor(voigt: np.ndarray) -> np.ndarray:
    """The interface's Voigt order -> symmetric 3x3."""
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, dtype=float)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


# The densest solid at ambient pressure holds ~5.7 Å^3/atom (diamond); squeezing it to 4.5 takes ~100 GPa.
# A denser cell is a start or a relaxation that fell into one of an ML potential's short-range holes:
# its neighbour graph holds hundreds of neighbours per atom (tens of GB in the worst cases), and at
# 2.8-3.1 Å^3/atom (C4O, BN4, SiF5 from a search) one CHGNet force call took ~1 s, 30x a median crystal.
MIN_VOLUME_PER_ATOM = 4.5  # Å^3


def screen(structure: Structure) -> str | None:
    """A reason to refuse this geometry before calling a model on it, or None."""
    per_atom = structure.volume / len(structure)
    if not per_atom >= MIN_VOLUME_PER_ATOM:
        return f"collapsed cell ({per_atom:.2f} Å^3/atom < {MIN_VOLUME_PER_ATOM})"
    return None


def sanitize(calc: Calculation, natoms: int, max_abs_energy_per_atom: float = 100.0) -> Calculation:
    """Turn NaN/inf or absurd outputs into a recorded per-structure failure."""
    if calc.error is None:
        if not math.isfinite(calc.energy):
            calc.error = "potential returned a non-finite energy"
        elif abs(calc.energy / natoms) > max_abs_energy_per_atom:
            calc.error = f"potential returned an absurd energy ({calc.energy / natoms:.1f} eV/atom)"
        elif calc.forces is not None and not np.all(np.isfinite(calc.forces)):
            calc.error = "potential returned non-finite forces"
        elif calc.stress is not None and not np.all(np.isfinite(calc.stress)):
            calc.error = "potential returned a non-finite stress"
    return calc


def file_model_name(family: str, path: str) -> str:
    """The name of a model given as a file: its family, file name and a digest of its contents, so
    caches keyed by the name (elemental references) never mix two models saved to the same path, and
    a moved file keeps its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"{family}-{os.path.basename(path)}@{digest.hexdigest()[:10]}"
