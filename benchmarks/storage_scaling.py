"""PostgreSQL vs SQLite: trials per second with 1, 2 and 4 worker processes (issue 4).

Real ``upotbo search`` runs (paper42 binaries, single points, TPE), three ways for each N:
- SQLite (the default): one search process with ``--workers N`` build processes (one writer);
- PostgreSQL, the same single search with ``--workers N``;
- PostgreSQL, N search processes sharing one study (``--join``, ``--workers 1`` each): the cluster mode.
The rate is steady state, read from the database: trials finished after the first stored batch over
the time from that batch to the last one. Needs a PostgreSQL server whose role may create databases
(``.ci/run`` sets one up; pass its URL with --server or UPOTBO_TEST_POSTGRES_URL).

    python benchmarks/storage_scaling.py --steps 400 --server postgresql://upotbo:upotbo@127.0.0.1/upotbo_ci
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from upotbo.storage import load_existing, local_url
from upotbo.storage.scratch import scratch_database

optuna.logging.set_verbosity(optuna.logging.WARNING)
RESULTS = Path(__file__).parent / "results" / "storage_scaling.json"


def _launch(args, out: Path, storage: str | None, workers: int, join: bool) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "upotbo.cli",
        "search",
        "--pool",
        args.pool,
        "--steps",
        str(args.steps),
        "--relax-steps",
        "0",
        "--batch-size",
        str(args.batch_size),
        "--workers",
        str(workers),
        "--seed",
        str(args.seed),
        "--out",
        str(out),
        "--no-progress",
    ]
    if storage:
        cmd += ["--storage", storage]
    if join:
        cmd += ["--join"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rate(url: str) -> dict:
    trials = load_existing(url).get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    ends = sorted(t.datetime_complete.timestamp() for t in trials)
    first = ends[0]
    later = [t for t in ends if t > first + 1e-3]
    span = ends[-1] - first
    return {"trials": len(trials), "span_s": round(span, 2), "trials_per_s": round(len(later) / span, 2)}


def one(args, work: Path, backend: str, n: int, join: bool) -> dict:
    out = work / f"{backend}-{n}-{'join' if join else 'solo'}"
    load_before = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()

    def run(storage: str | None) -> dict:
        procs = [
            _launch(args, out / f"p{k}", storage, 1 if join else n, join) for k in range(n if join else 1)
        ]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise RuntimeError(f"search failed: {err.strip().splitlines()[-1:]}")
        return _rate(storage or local_url(out / "p0"))

    if backend == "sqlite":
        rate = run(None)
    else:
        with scratch_database(args.server, prefix="upotbo_bench") as url:
            rate = run(url)
    return {
        "backend": backend,
        "processes": n if join else 1,
        "build_workers": 1 if join else n,
        "mode": "join" if join else "solo",
        **rate,
        "wall_s": round(time.perf_counter() - start, 1),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("UPOTBO_TEST_POSTGRES_URL"))
    parser.add_argument("--pool", default="paper42")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n", default="1,2,4", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.server:
        parser.error("no PostgreSQL server: pass --server or set UPOTBO_TEST_POSTGRES_URL")
    rows = []
    with tempfile.TemporaryDirectory(prefix="upotbo-storage-") as tmp:
        for n in args.n:
            for backend, join in (("sqlite", False), ("postgresql", False), ("postgresql", True)):
                rows.append(one(args, Path(tmp), backend, n, join))
                r = rows[-1]
                print(f"  {backend} {r['mode']} N={n}: {r['trials_per_s']} trials/s ({r['trials']} trials)")
    by = {(r["backend"], r["mode"], max(r["processes"], r["build_workers"])): r["trials_per_s"] for r in rows}
    print("\n| N | SQLite --workers N | PostgreSQL --workers N | PostgreSQL, N searches --join |")
    print("| ---: | ---: | ---: | ---: |")
    for n in args.n:
        cells = [by[("sqlite", "solo", n)], by[("postgresql", "solo", n)], by[("postgresql", "join", n)]]
        print(f"| {n} | " + " | ".join(str(c) for c in cells) + " |")
    report = {
        "command": "python benchmarks/storage_scaling.py " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items() if k != "server"},
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
