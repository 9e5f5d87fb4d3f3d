"""``upotbo finetune LABEL_DIR ... --out DIR``: CHGNet fine-tuned on GPAW labels, checked on held-out ones.

``register(sub)`` adds the subcommand; user errors raise ``InputError`` (one line, exit status 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from upotbo.cli_args import finite_float, int_in
from upotbo.errors import InputError
from upotbo.finetune.settings import LAYERS, FineTuneSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune CHGNet on the labels of `upotbo label`")
    p.add_argument("labels", nargs="+", help="label folders written by `upotbo label`")
    p.add_argument("--out", required=True, help="folder for the model, its log and finetune.json")
    p.add_argument(
        "--run", default=None, help="run whose other crystals form the replay sample (default: the "
        "folder holding the first label folder)"
    )  # fmt: skip
    add_training_arguments(p, holdout=0.25)
    p.set_defaults(func=run)


def add_training_arguments(p: argparse.ArgumentParser, holdout: float) -> None:
    """The fine-tuning recipe's knobs (shared with ``refine``); ``holdout``: the default share."""
    d = FineTuneSettings()
    p.add_argument("--epochs", type=int_in(1, None, "--epochs"), default=d.epochs, help=f"default {d.epochs}")
    p.add_argument(
        "--lr", type=finite_float("--lr", "positive", f"the default is {d.learning_rate:g}"),
        default=d.learning_rate, help=f"learning rate (default {d.learning_rate:g})",
    )  # fmt: skip
    p.add_argument(
        "--replay", type=int_in(0, None, "--replay"), default=d.replay,
        help=f"replay crystals (default {d.replay})",
    )  # fmt: skip
    p.add_argument(
        "--holdout", type=finite_float("--holdout", "non-negative", f"use {holdout:g}"),
        default=holdout, help=f"share of the labels never trained on (default {holdout:g})",
    )  # fmt: skip
    stress = f"{d.stress_weight:g}"
    p.add_argument(
        "--stress-weight", type=finite_float("--stress-weight", "non-negative", f"the default is {stress}"),
        default=d.stress_weight,
        help=f"weight of the stress term (GPa) in the loss (default {stress}; 0: energies and forces)",
    )  # fmt: skip
    force = f"{d.force_weight:g}"
    p.add_argument(
        "--force-weight", type=finite_float("--force-weight", "non-negative", f"the default is {force}"),
        default=d.force_weight, help=f"weight of the force term (eV/Å) in the loss, energy's being 1 "
        f"(default {force})",
    )  # fmt: skip
    p.add_argument(
        "--layers", choices=LAYERS, default=d.layers,
        help=f"layers trained, the others kept as pretrained (default {d.layers}: the last atom "
        "convolution and the readout; convolutions: every message-passing layer; all)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--base", default=d.base, help="CHGNet version or model file to start from")


def training_from(args: argparse.Namespace) -> FineTuneSettings:
    """The recipe the arguments ask for; a held-out share of 1 or more is refused."""
    if args.holdout >= 1:
        raise InputError(
            f"--holdout {args.holdout:g} leaves nothing to train on: use a share below 1, e.g. 0.25"
        )
    return FineTuneSettings(
        epochs=args.epochs,
        learning_rate=args.lr,
        replay=args.replay,
        holdout=args.holdout,
        seed=args.seed,
        base=args.base,
        stress_weight=args.stress_weight,
        force_weight=args.force_weight,
        layers=args.layers,
    )


def run(args: argparse.Namespace) -> int:
    from upotbo.finetune.train import REPORT_FILE, finetune, replay_pool
    from upotbo.labels import LabelSet

    settings = training_from(args)
    out = Path(args.out)
    if (out / REPORT_FILE).exists():
        raise InputError(f"{out} already holds a fine-tuned model: pass --out to a new folder")
    labels = []
    for folder in args.labels:
        found = LabelSet(folder)
        if not found.exists():
            raise InputError(f"no labels.db in {folder!r}: pass a folder written by `upotbo label`")
        labels += found.labels()
    good = [x for x in labels if x.ok]
    if not good:
        raise InputError(
            f"no finished labels in {', '.join(args.labels)}: run `upotbo label` to the end first"
        )
    run_dir = Path(args.run) if args.run else Path(args.labels[0]).resolve().parent
    candidates = replay_pool(run_dir, labels, args.replay, args.seed)
    result = finetune(good, candidates, out, settings, log=lambda m: print(m, flush=True))
    print(table(result.rows))
    n_replay = result.counts["replay"]
    for name, value in result.mae.items():
        what = f"mean |E_c fine-tuned - original| on {n_replay} replay crystals" if "drift" in name else "MAE"
        print(f"{what} ({name}): {value:.3f} eV/atom")
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"time: {seconds}")
    report = result.save()
    print(f"model: {result.model} (use: --potential chgnet:{result.model}); report: {report}")
    return 0


def table(rows: list[dict]) -> str:
    lines = [
        "| label | split | E_c GPAW (eV/atom) | E_c original (eV/atom) | E_c fine-tuned (eV/atom) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['name']} | {r['split']} | {r['gpaw']:.3f} | {r['base']:.3f} | {r['tuned']:.3f} |" for r in rows
    ]
    return "\n".join(lines)
