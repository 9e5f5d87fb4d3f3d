"""``label_run``: plan the picks of a run once, then label them one by one (GPAW PBE, or another
``Labeller``), each committed before the next starts; a rerun (after a kill) labels only what is missing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pymatgen.core import Structure

from upotbo.dft import DFTSettings, cohesive_energy, require_gpaw, single_point
from upotbo.errors import CandidateFailed, InputError
from upotbo.labels.dataset import Label, LabelSet
from upotbo.labels.select import Pick, plan, shares
from upotbo.potentials import Potential

FOLDER = "labels"


class Labeller(Protocol):
    """What computes a label: ``settings`` are stored with the plan (a resumed set must use the same),
    ``source`` and ``describe`` name it in progress lines, ``check`` refuses early (one line) when it
    cannot run here."""

    source: str

    @property
    def settings(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def check(self) -> None: ...

    def cost(self, structure: Structure) -> float:
        """Estimated seconds to label ``structure`` (picks are bounded by it, see ``select``)."""
        ...

    def __call__(self, pick: Pick, log_dir: Path) -> Label: ...


@dataclass(frozen=True)
class GPAWLabeller:
    """GPAW PBE single point (energy, forces, stress) and E_c against isolated atoms, as validation."""

    dft: DFTSettings = field(default_factory=DFTSettings)
    source = "GPAW"

    @property
    def settings(self) -> dict[str, Any]:
        return {"dft": asdict(self.dft)}

    def describe(self) -> str:
        return f"GPAW PBE, PW {self.dft.ecut:g} eV, k-density {self.dft.kdensity:g}"

    def check(self) -> None:
        require_gpaw()

    def cost(self, structure: Structure) -> float:
        """Estimated seconds on 2 cores (``upotbo.dft.cost``)."""
        from upotbo.dft.cost import estimated_seconds

        return estimated_seconds(structure, self.dft)

    def __call__(self, pick: Pick, log_dir: Path) -> Label:
        start = time.perf_counter()
        try:
            point = single_point(pick.structure, self.dft, log_dir, pick.name)
            ec = cohesive_energy(point.energy, pick.structure, self.dft, log_dir)
        except CandidateFailed as exc:
            return Label(pick, seconds=time.perf_counter() - start, error=str(exc))
        return Label(pick, point.energy, point.forces, point.stress, ec, time.perf_counter() - start)


@dataclass(frozen=True)
class PotentialLabeller:
    """Labels from another potential (a teacher: e.g. a larger model distilled into CHGNet, or a
    stand-in for DFT where GPAW is not installed); E_c on the teacher's own reference."""

    teacher: Potential

    @property
    def source(self) -> str:
        return self.teacher.name

    @property
    def settings(self) -> dict[str, Any]:
        return {"teacher": self.teacher.name}

    def describe(self) -> str:
        return self.teacher.name

    def check(self) -> None:
        return None

    def cost(self, structure: Structure) -> float:
        """Estimated seconds: about 50 crystals per second, as CHGNet and SevenNet-0 run."""
        return len(structure) / 50.0

    def __call__(self, pick: Pick, log_dir: Path) -> Label:
        from upotbo.potentials.base import to_tensor
        from upotbo.properties import CohesiveEnergy

        start = time.perf_counter()
        calc = self.teacher.calculate([pick.structure], forces=True, stress=True)[0]
        if not calc.ok:
            return Label(pick, seconds=time.perf_counter() - start, error=calc.error)
        ec = CohesiveEnergy().value(pick.structure, calc.energy, self.teacher)
        stress = to_tensor(calc.stress)
        return Label(pick, calc.energy, calc.forces, stress, ec, time.perf_counter() - start)


def _wanted(k: int, top: int, labeller: Labeller, potentials: Sequence[Potential]) -> dict[str, Any]:
    """What a label set stores of how it was planned (a resumed set must match)."""
    return {"k": k, "top": top, **labeller.settings, "potentials": [p.name for p in potentials]}


def resumable(
    labels: LabelSet, k: int, top: int, labeller: Labeller, potentials: Sequence[Potential]
) -> list[Pick]:
    """The plan of an existing label set, if it was made with these settings; else one line."""
    wanted = _wanted(k, top, labeller, potentials)
    picks, stored = labels.plan()
    if stored != wanted:
        raise InputError(
            f"{labels.path} was planned with {differences(stored, wanted)}: rerun with those "
            f"settings to resume it, or label into a new folder"
        )
    return picks


def label_run(
    run_dir: str | Path,
    potentials: Sequence[Potential],
    k: int = 20,
    top: int = 10,
    labeller: Labeller | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    exclude: Collection[int] = (),
) -> list[Label]:
    """Label ``k`` crystals of the run in ``run_dir`` into ``out`` (default ``RUN_DIR/labels``) with
    ``labeller`` (default GPAW PBE at validation's settings); ``potentials`` score the candidates (the
    first is the run's, the others the committee); ``exclude``: trials not to pick (labelled before).
    Returns every label of the set, finished ones from earlier runs included."""
    labeller = labeller or GPAWLabeller()
    labeller.check()
    labels = LabelSet(Path(out) if out is not None else Path(run_dir) / FOLDER)
    if labels.exists():
        picks = resumable(labels, k, top, labeller, potentials)
    else:
        count = shares(k, top, committee=len(potentials) > 1)
        log(
            f"planning {k} label(s): {count['top']} best, {count['committee']} committee disagreement(s), "
            f"{count['diverse']} diverse; candidates scored by {', '.join(p.name for p in potentials)}"
        )
        picks = plan(str(run_dir), k, top, potentials, exclude=exclude, cost=labeller.cost)
        minutes = sum(labeller.cost(p.structure) for p in picks) / 60
        log(f"estimated {labeller.source} time for the {len(picks)} label(s): about {minutes:.0f} min")
        labels.start(picks, _wanted(k, top, labeller, potentials))
    done = {label.pick.name for label in labels.labels()}
    todo = [p for p in picks if p.name not in done]
    if done:
        log(f"{len(done)} label(s) already in {labels.path}, {len(todo)} to go")
    log_dir = labels.path.parent / "gpaw"
    log_dir.mkdir(exist_ok=True)
    for i, pick in enumerate(todo, start=1):
        log(
            f"[{i}/{len(todo)}] {pick.name} ({pick.structure.composition.reduced_formula}, "
            f"{len(pick.structure)} atoms): {labeller.describe()}"
        )
        label = labeller(pick, log_dir)
        labels.add(label)
        if label.ok:
            log(f"  E_c({labeller.source}) {label.ec:.3f} eV/atom{_against(pick)} ({label.seconds:.0f} s)")
        else:
            log(f"  {labeller.source} failed ({label.seconds:.0f} s): {label.error}")
    return labels.labels()


def _against(pick: Pick) -> str:
    shown = [f"{name} {value:.3f}" for name, value in pick.upot.items() if math.isfinite(value)]
    return f"; {', '.join(shown)}" if shown else ""


def differences(stored: dict, wanted: dict) -> str:
    """The settings that changed, each with its stored and its new value (for a refusal's one line)."""
    changed = [key for key in wanted if stored.get(key) != wanted[key]]
    return ", ".join(f"{key} {stored.get(key)!r} (now {wanted[key]!r})" for key in changed)
