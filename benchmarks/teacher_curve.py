"""How many labels fine-tuning needs: the learning curve with a teacher potential standing in for DFT.

    python benchmarks/teacher_curve.py --run runs/search [--teacher sevenn] [--sizes 20,40,80,160,320]
        [--layers last] [--json benchmarks/results/teacher_curve.json]

GPAW labels cost 30-400 s each here, so a learning curve to hundreds of labels is out of reach on 2
cores; a second universal potential costs milliseconds. The teacher (SevenNet-0 by default) labels:
- the test set: the cells the run's GPAW labels were made on (``upotbo label`` and ``refine`` rounds),
  so the test is the same crystals the DFT measurement (``dft_loop.py``) holds out;
- the training set: the run's best N distinct bound crystals (standard primitive cells of at most 12
  atoms), none a copy of a test crystal.
CHGNet 0.3.0 is fine-tuned on the first N with the recipe of ``upotbo finetune`` (replay 30 from the
run, labelled by CHGNet) and its E_c compared with the teacher's on the test cells. The teacher differs
from CHGNet on these cells about as much as GPAW does (0.100 vs 0.108 eV/atom for SevenNet-0), so the
curve says how far more labels of the same kind would take the error against GPAW, not what it is.

Prints a table and writes ``--json`` (load average before and after).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from upotbo.cells import standard_cells
from upotbo.crystal.prototypes import among, first_distinct
from upotbo.finetune import FineTuneSettings, finetune, replay_pool
from upotbo.finetune.settings import LAYERS
from upotbo.labels import LabelSet, PotentialLabeller
from upotbo.labels.select import Pick
from upotbo.potentials import load_potential
from upotbo.potentials.chgnet import CHGNetPotential
from upotbo.properties import cohesive_energies
from upotbo.refine import labelled_rounds
from upotbo.storage import RunDirectory, completed_records

sys.path.insert(0, str(Path(__file__).parent))
from dft_loop import _load, _mae  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "teacher_curve.json"
MAX_ATOMS = 12  # training cells at most this large: a search's best crystals are small cells


def training_picks(run: str, test: list, n: int) -> list[Pick]:
    """The run's best ``n`` distinct bound crystals, standard primitive cells, no copy of a test cell."""
    records = sorted((r for r in completed_records(RunDirectory.open(run).study()) if r.value < 0),
                     key=lambda r: r.value)  # fmt: skip
    picks = []
    for group in first_distinct(records, lambda r: r.structure, 3 * n):
        cell = standard_cells(group[0].structure)[1]
        if len(cell) <= MAX_ATOMS and not among(cell, test):
            picks.append(Pick(f"trial{group[0].number}", "top", group[0].number, cell, {}))
        if len(picks) == n:
            break
    return picks


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/search")
    parser.add_argument("--teacher", default="sevenn")
    parser.add_argument("--sizes", default="20,40,80,160,320")
    parser.add_argument("--layers", default="last", help=f"comma-separated, of {', '.join(LAYERS)}")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    recipes = [replace(FineTuneSettings(holdout=0.0), layers=layers) for layers in args.layers.split(",")]
    report: dict = {
        "command": "python benchmarks/teacher_curve.py " + " ".join(sys.argv[1:]),
        "load_before": _load(),
    }
    teacher = PotentialLabeller(load_potential(args.teacher))
    chgnet = load_potential("chgnet")
    work = Path(tempfile.mkdtemp(prefix="upotbo-teacher-"))

    rounds = [[x for x in LabelSet(path).labels() if x.ok] for path in labelled_rounds(args.run)]
    gpaw = [x for labels in rounds for x in labels]
    cells = [x.pick.structure for x in gpaw]
    test = np.array([teacher(x.pick, work).ec for x in gpaw])
    top = [i for i, x in enumerate(rounds[0]) if x.pick.reason == "top"]  # round 1's best compositions
    base = np.array(cohesive_energies(chgnet, cells))
    dft = np.array([x.ec for x in gpaw])
    report["test"] = {"cells": len(cells), "chgnet_vs_teacher": _mae(base, test),
                      "chgnet_vs_teacher_top": _mae(base[top], test[top]),
                      "chgnet_vs_gpaw": _mae(base, dft), "teacher_vs_gpaw": _mae(test, dft)}  # fmt: skip
    m = report["test"]
    print(f"test: the {len(cells)} GPAW-labelled cells; MAE (eV/atom) CHGNet vs {teacher.source} "
          f"{m['chgnet_vs_teacher']:.3f} (top {len(top)}: {m['chgnet_vs_teacher_top']:.3f}), CHGNet vs "
          f"GPAW {m['chgnet_vs_gpaw']:.3f}, {teacher.source} vs GPAW {m['teacher_vs_gpaw']:.3f}")  # fmt: skip

    t0 = time.perf_counter()
    train = [
        label for label in (teacher(p, work) for p in training_picks(args.run, cells, sizes[-1])) if label.ok
    ]
    print(f"{len(train)} training labels by {teacher.source} in {time.perf_counter() - t0:.0f} s")
    replay = replay_pool(args.run, gpaw + train, FineTuneSettings.replay, 0)
    rows = []
    print(f"\n| labels | layers | held-out MAE, all {len(cells)} | top {len(top)} | fit to its own labels "
          "| train s |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for settings in recipes:
        layers = settings.layers
        for n in sizes:
            result = finetune(train[:n], replay, work / f"{layers}{n}", settings, log=lambda m: None)
            predicted = np.array(cohesive_energies(CHGNetPotential(model=str(result.model)), cells))
            row = {"labels": n, "layers": layers, "mae": _mae(predicted, test),
                   "mae_top": _mae(predicted[top], test[top]), "fit": result.mae["train after"],
                   "train_s": round(result.seconds["train"], 1)}  # fmt: skip
            rows.append(row)
            print(f"| {n} | {layers} | {row['mae']:.3f} | {row['mae_top']:.3f} | {row['fit']:.3f} "
                  f"| {row['train_s']:.0f} |", flush=True)  # fmt: skip
    report |= {"teacher": teacher.source, "rows": rows, "settings": vars(args) | {"json": str(args.json)},
               "load_after": _load()}  # fmt: skip
    args.json.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
