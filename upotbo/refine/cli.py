"""``upotbo refine RUN_DIR``: GPAW labels -> fine-tuned CHGNet -> re-ranked top, until the ranking holds.

``register(sub)`` adds the subcommand; user errors raise ``InputError`` (one line, exit status 2).
"""

from __future__ import annotations

import argparse

from upotbo.cli_args import int_in
from upotbo.finetune.cli import add_training_arguments, training_from
from upotbo.labels.cli import add_label_arguments, committee_from, labeller_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refine",
        help="label -> fine-tune -> re-rank a run's best, round after round: a DFT-checked ranking",
    )
    p.add_argument("run_dir", help="--out folder of a search (CHGNet)")
    p.add_argument(
        "--rounds", type=int_in(1, None, "--rounds"), default=3,
        help="rounds at most; it stops once a round leaves the ranking as it was (default 3)",
    )  # fmt: skip
    p.add_argument(
        "--every-round", action="store_true",
        help="run all --rounds even when the ranking holds (more labels, a model trained on more)",
    )  # fmt: skip
    add_label_arguments(p)
    add_training_arguments(p, holdout=0.0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from upotbo.potentials import load_potential
    from upotbo.refine.loop import RefineSettings, refine
    from upotbo.storage import RunDirectory

    settings = RefineSettings(
        rounds=args.rounds, k=args.k, top=args.top, every_round=args.every_round, training=training_from(args)
    )
    labeller = labeller_from(args)
    labeller.check()
    RunDirectory.open(args.run_dir)
    base = load_potential(f"chgnet:{args.base}")
    committee = committee_from(args.committee, base)
    result = refine(args.run_dir, base, committee, settings, labeller, log=lambda m: print(m, flush=True))
    print()
    print(result.table)
    for line in result.summary:
        print(line)
    for r in result.rounds:
        seconds = ", ".join(f"{k} {v:.0f} s" for k, v in r.seconds.items())
        print(f"round {r.number}: {r.labels} new label(s); {seconds}; model {r.model}")
    print(f"stopped: {result.stopped}; report: {args.run_dir}/refine/report.md")
    if result.model is not None:
        print(f"search on with it: upotbo search ... --potential chgnet:{result.model}")
    return 0
