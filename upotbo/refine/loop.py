"""``refine``: label -> fine-tune -> re-rank, round after round, until the run's top ranking holds.

Each round labels ``k`` more crystals of the run (its best compositions not labelled yet, the ones the
models disagree on most, a diverse few), fine-tunes CHGNet on every label so far (always from the
original model, so errors do not compound from round to round) and relaxes the run's best
compositions again under the new model. The loop stops when a round leaves that ranking as the
previous model had it, or after ``rounds``.

Everything a round makes is stored as soon as it is made, and a rerun picks up where it stopped:

    RUN_DIR/labels/                    round 1's labels (the set ``upotbo label`` makes, shared with it)
    RUN_DIR/refine/settings.json       the loop's settings (a rerun with others is refused)
    RUN_DIR/refine/ranking.json        the top compositions relaxed under CHGNet and the committee
    RUN_DIR/refine/roundN/labels/      round N's labels (N >= 2)
    RUN_DIR/refine/roundN/model/       the fine-tuned model and its finetune.json
    RUN_DIR/refine/roundN/ranking.json the top compositions relaxed under round N's model
    RUN_DIR/refine/report.md           the DFT-checked ranking
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from upotbo.errors import InputError
from upotbo.finetune.settings import FineTuneSettings
from upotbo.finetune.train import MODEL_FILE, REPORT_FILE, finetune, replay_pool
from upotbo.labels import Label, Labeller, LabelSet, label_run
from upotbo.labels.runner import FOLDER, GPAWLabeller, differences, resumable
from upotbo.potentials import Potential
from upotbo.refine.ranking import (
    Contender,
    contenders,
    load_values,
    markdown,
    order,
    relaxed_values,
    report,
    save_values,
)

REFINE = "refine"


@dataclass(frozen=True)
class RefineSettings:
    rounds: int = 3  # at most; the loop stops earlier once the ranking holds
    every_round: bool = False  # run all ``rounds`` even when the ranking holds (more labels)
    k: int = 20  # labels per round
    top: int = 10  # compositions ranked, and the best of them labelled first
    training: FineTuneSettings = field(default_factory=lambda: FineTuneSettings(holdout=0.0))

    def stored(self, labeller: Labeller, committee: Sequence[Potential]) -> dict[str, Any]:
        """What a resumed loop must share with the stored one (not ``rounds``: more may be asked)."""
        return {
            "k": self.k,
            "top": self.top,
            "training": asdict(self.training),
            "labels": labeller.settings,
            "committee": [p.name for p in committee],
        }


@dataclass
class Round:
    number: int
    labels: int  # labels made in this round
    model: Path
    ranking: list[str]  # formulas, most bound first, under this round's model
    changed: bool  # whether the ranking differs from the previous model's
    mae: dict[str, float]  # the fine-tuning's own check (held out / train, before and after)
    seconds: dict[str, float]  # labels, fine-tune, re-rank (this session's work only)


@dataclass
class Refined:
    rounds: list[Round]
    rows: list[dict[str, Any]]  # the DFT-checked ranking (see ``ranking.report``)
    summary: list[str]
    table: str
    stopped: str  # why the loop ended

    @property
    def model(self) -> Path | None:
        return self.rounds[-1].model if self.rounds else None


def refine(
    run_dir: str | Path,
    base: Potential,
    committee: Sequence[Potential] = (),
    settings: RefineSettings | None = None,
    labeller: Labeller | None = None,
    log: Callable[[str], None] = print,
) -> Refined:
    """Run (or resume) the loop on the run in ``run_dir``; ``base``: the run's CHGNet, ``committee``:
    potentials whose disagreement picks labels and whose rankings the report shows."""
    from upotbo.potentials.chgnet import CHGNetPotential

    settings = settings or RefineSettings()
    labeller = labeller or GPAWLabeller()
    labeller.check()
    run_dir = Path(run_dir)
    crystals = contenders(run_dir, settings.top)
    folder = run_dir / REFINE
    _check_settings(folder, settings.stored(labeller, committee))
    first = LabelSet(run_dir / FOLDER)
    if first.exists():  # `upotbo label`'s set is round 1's: refuse before writing anything if it differs
        resumable(first, settings.k, settings.top, labeller, [base, *committee])
    folder.mkdir(exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings.stored(labeller, committee), indent=1) + "\n")

    values = _ranked(folder / "ranking.json", crystals, [base, *committee], log)
    previous = order(crystals, values[base.name])
    current: Potential = base
    labels: list[Label] = []
    rounds: list[Round] = []
    stopped = f"{settings.rounds} round(s) done"
    for number in range(1, settings.rounds + 1):
        here = folder / f"round{number}"
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        pickers = [current, *([base] if current is not base else []), *committee]
        out = round_labels(run_dir, number)
        known = {x.pick.trial for x in labels}
        before = len(LabelSet(out).labels()) if LabelSet(out).exists() else 0
        made = label_run(
            run_dir, pickers, settings.k, settings.top, labeller, out, log=log, exclude=known
        )
        labels += made
        seconds["labels"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        model_dir = here / "model"
        if not (model_dir / REPORT_FILE).is_file():
            log(f"round {number}: fine-tuning on {sum(x.ok for x in labels)} label(s)")
            replay = replay_pool(run_dir, labels, settings.training.replay, settings.training.seed)
            finetune([x for x in labels if x.ok], replay, model_dir, settings.training, log=log).save()
        mae = json.loads((model_dir / REPORT_FILE).read_text())["mae"]
        seconds["fine-tune"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        model = model_dir / MODEL_FILE
        current = CHGNetPotential(model=str(model))
        tuned = _ranked(here / "ranking.json", crystals, [current], log)[current.name]
        seconds["re-rank"] = time.perf_counter() - t0

        ranking = order(crystals, tuned)
        changed = ranking != previous
        rounds.append(Round(number, len(made) - before, model, ranking, changed, mae, seconds))
        log(
            f"round {number}: {len(made)} label(s) in this round's set; ranking under the fine-tuned "
            f"model {'changed' if changed else 'unchanged'}: {', '.join(ranking[:5])}"
            + (" ..." if len(ranking) > 5 else "")
        )
        if not changed and not settings.every_round:
            stopped = f"the ranking held in round {number}"
            break
        previous = ranking

    shown = dict(values)  # CHGNet and the committee, then the last round's model
    if rounds:
        shown[f"fine-tuned (round {rounds[-1].number})"] = tuned
    rows, summary = report(crystals, shown, labels, labeller.source)
    table = markdown(rows, list(shown), labeller.source)
    (folder / "report.md").write_text(
        "# DFT-checked ranking\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in summary)
        + f"\n- stopped: {stopped}\n"
    )  # fmt: skip
    return Refined(rounds, rows, summary, table, stopped)


def round_labels(run_dir: str | Path, number: int) -> Path:
    """Round ``number``'s label set: round 1's is ``upotbo label``'s, later ones live in their round."""
    run_dir = Path(run_dir)
    return run_dir / FOLDER if number == 1 else run_dir / REFINE / f"round{number}" / FOLDER


def labelled_rounds(run_dir: str | Path) -> list[Path]:
    """The label sets of a run's rounds that exist, round 1 first."""
    sets = []
    while LabelSet(path := round_labels(run_dir, len(sets) + 1)).exists():
        sets.append(path)
    return sets


# recipe settings added since a folder may have been written, with the value they had in effect then
RECIPE_BEFORE = {"stress_weight": 0.1, "force_weight": 1.0, "layers": "last"}


def _check_settings(folder: Path, wanted: dict[str, Any]) -> None:
    path = folder / "settings.json"
    if not path.is_file():
        return
    stored = json.loads(path.read_text())
    stored["training"] = {**RECIPE_BEFORE, **stored.get("training", {})}
    if stored != wanted:
        raise InputError(
            f"{folder} was refined with {differences(stored, wanted)}: rerun with those settings to resume, "
            f"or move {folder} away to start over"
        )


def _ranked(
    path: Path, crystals: Sequence[Contender], potentials: Sequence[Potential], log: Callable[[str], None]
) -> dict[str, list[float]]:
    """Each potential's relaxed E_c of the crystals, from ``path`` when stored there before."""
    stored = load_values(path, crystals) or {}
    for potential in potentials:
        if potential.name not in stored:
            log(f"relaxing the run's {len(crystals)} best compositions with {potential.name}")
            stored[potential.name] = relaxed_values(potential, crystals)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_values(path, stored, crystals)
    return {p.name: stored[p.name] for p in potentials}
