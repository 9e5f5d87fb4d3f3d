"""Two searches on one machine: each one's throughput alone and beside another, side by side.

Runs the README's search (paper42 binaries, relaxing in the loop) through the CLI for ``--steps``
steps: each of two seeds alone, then both at once (different seeds and run directories, started
together). Each reports crystals scored per second of search (its final line: scored crystals over
the session's search seconds, model loading excluded). A search that sizes its threads well runs at
about half its lone rate beside a twin on the same cores, not a sixth.

    python benchmarks/two_searches.py --steps 256 --baseline /tmp/old

``--baseline DIR`` runs the same two scenarios with the upotbo source tree in DIR (e.g. a ``git
worktree`` of an older commit) first, so a change is measured against the code before it in one run.
``--extra "--threads 1"`` passes flags to every search. The load average before and after each
scenario goes into the JSON: measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "two_searches.json"
FINAL = re.compile(r"(\d+) steps \((\d+) scored, (\d+) failed\), (\d+) s this session")


def start(source: Path, seed: int, out: Path, args) -> subprocess.Popen:
    argv = [sys.executable, "-m", "upotbo.cli", "search", "--steps", str(args.steps), "--seed", str(seed),
            "--out", str(out), "--no-progress", *shlex.split(args.extra)]
    env = dict(os.environ, PYTHONPATH=str(source))
    return subprocess.Popen(argv, cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen, started: float) -> dict:
    output, _ = proc.communicate()
    wall = time.perf_counter() - started
    match = FINAL.search(output)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"a search failed (exit {proc.returncode}):\n{output[-2000:]}")
    steps, scored, failed, seconds = (int(x) for x in match.groups())
    return {"steps": steps, "scored": scored, "failed": failed, "search_s": seconds,
            "wall_s": round(wall, 1), "crystals_per_s": round(scored / max(seconds, 1), 2)}


def scenario(source: Path, seeds: list[int], args) -> dict:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        procs = [start(source, seed, Path(scratch) / f"seed{seed}", args) for seed in seeds]
        runs = [dict(seed=seed, **finish(proc, started)) for seed, proc in zip(seeds, procs, strict=True)]
    return {"runs": runs, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--extra", default="", help="flags passed to every search, e.g. '--threads 1'")
    parser.add_argument("--baseline", default=None, help="also run the scenarios with the source tree in DIR")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    versions = ([("baseline", Path(args.baseline).resolve())] if args.baseline else []) + [("this", here)]
    results = {"steps": args.steps, "extra": args.extra, "cores": len(os.sched_getaffinity(0)), "rows": []}
    print("| code | scenario | seed | crystals/s | search s | ratio to alone | load before/after |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for label, source in versions:
        scenarios = [("alone", scenario(source, [1], args)), ("alone", scenario(source, [2], args)),
                     ("two at once", scenario(source, [1, 2], args))]
        lone = {r["seed"]: r["crystals_per_s"] for name, s in scenarios if name == "alone" for r in s["runs"]}
        for name, result in scenarios:
            for run in result["runs"]:
                ratio = round(run["crystals_per_s"] / lone[run["seed"]], 2)
                load = {k: result[k] for k in ("load_before", "load_after")}
                results["rows"].append({"code": label, "scenario": name, **run, "ratio": ratio, **load})
                print(f"| {label} | {name} | {run['seed']} | {run['crystals_per_s']:.2f} | {run['search_s']} "
                      f"| {ratio:.2f} | {result['load_before']:.2f}/{result['load_after']:.2f} |", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
