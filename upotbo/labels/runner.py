"""``label_run``: plan the picks of a run once, then label them with GPAW one by one, each committed
before the next starts; a rerun (after a kill) labels only what is missing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from upotbo.dft import DFTSettings, cohesive_energy, require_gpaw, single_point
from upotbo.errors import CandidateFailed, InputError
from upotbo.labels.dataset import Label, LabelSet
from upotbo.labels.select import Pick, plan, shares
from upotbo.potentials import Potential

FOLDER = "labels"


def label_run(
    run_dir: str | Path,
    potentials: Sequence[Potential],
    k: int = 20,
    top: int = 10,
    settings: DFTSettings | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> list[Label]:
    """Label ``k`` crystals of the run in ``run_dir`` with GPAW PBE into ``out`` (default
    ``RUN_DIR/labels``); ``potentials`` score the candidates (the first is the run's, the others the
    committee). Returns every label of the set, finished ones from earlier runs included."""
    require_gpaw()
    settings = settings or DFTSettings()
    wanted = {"k": k, "top": top, "dft": asdict(settings), "potentials": [p.name for p in potentials]}
    labels = LabelSet(Path(out) if out is not None else Path(run_dir) / FOLDER)
    if labels.exists():
        picks, stored = labels.plan()
        if stored != wanted:
            raise InputError(
                f"{labels.path} was planned with {_differences(stored, wanted)}: rerun with those "
                f"settings to resume it, or pass --out to a new folder"
            )
    else:
        count = shares(k, top, committee=len(potentials) > 1)
        log(
            f"planning {k} label(s): {count['top']} best, {count['committee']} committee disagreement(s), "
            f"{count['diverse']} diverse; candidates scored by {', '.join(p.name for p in potentials)}"
        )
        picks = plan(str(run_dir), k, top, potentials)
        labels.start(picks, wanted)
    done = {label.pick.name for label in labels.labels()}
    todo = [p for p in picks if p.name not in done]
    if done:
        log(f"{len(done)} label(s) already in {labels.path}, {len(todo)} to go")
    log_dir = labels.path.parent / "gpaw"
    log_dir.mkdir(exist_ok=True)
    for i, pick in enumerate(todo, start=1):
        log(
            f"[{i}/{len(todo)}] {pick.name} ({pick.structure.composition.reduced_formula}, "
            f"{len(pick.structure)} atoms): GPAW PBE, PW {settings.ecut:g} eV, "
            f"k-density {settings.kdensity:g}"
        )
        label = _label(pick, settings, log_dir)
        labels.add(label)
        if label.ok:
            log(f"  E_c(GPAW) {label.ec:.3f} eV/atom{_against(pick)} ({label.seconds:.0f} s)")
        else:
            log(f"  GPAW failed ({label.seconds:.0f} s): {label.error}")
    return labels.labels()


def _label(pick: Pick, settings: DFTSettings, log_dir: Path) -> Label:
    start = time.perf_counter()
    try:
        point = single_point(pick.structure, settings, log_dir, pick.name)
        ec = cohesive_energy(point.energy, pick.structure, settings, log_dir)
    except CandidateFailed as exc:
        return Label(pick, seconds=time.perf_counter() - start, error=str(exc))
    return Label(pick, point.energy, point.forces, point.stress, ec, time.perf_counter() - start)


def _against(pick: Pick) -> str:
    shown = [f"{name} {value:.3f}" for name, value in pick.upot.items() if math.isfinite(value)]
    return f"; {', '.join(shown)}" if shown else ""


def _differences(stored: dict, wanted: dict) -> str:
    changed = [key for key in wanted if stored.get(key) != wanted[key]]
    return ", ".join(f"{key} {stored.get(key)!r} (now {wanted[key]!r})" for key in changed)
