"""Completeness of a ternary search's top list against enumerated ordered ternaries (E_c, eV/atom).

A search's top list is only as good as what it missed. This benchmark builds a reference it can be
checked against: the best binary compounds of a binary run (the parents) are put in their
conventional cells and one site, or two sites with the same element, are replaced by every pool
element not in the parent (one crystal per symmetry-distinct choice of sites), keeping the ternaries
the ternary space holds (at most 5 atoms of one element, 15 per cell). Each is relaxed fully with the
same potential and ranked by cohesive energy; the enumerated top 20 are the 20 best reduced formulas.
For each checkpoint (1,000 / 3,000 / 10,000 steps) the ternary search's top list, built from the
trials before it with upotbo's own ranking (best crystal per reduced formula), is compared with it:
how many of the enumerated top 20 its top 10 holds (same formula; same structure by StructureMatcher
reported beside), how many it scored at any rank, and which of its own top 10 the enumeration lacks.
Goal: the top 10 holds at least half of the enumerated top 20 within 10,000 steps. The search's
top list is reported twice: as ``top.md`` lists it (binaries and elements included, which the
enumeration cannot hold) and restricted to ternaries. Its E_c are after the search's 20 BFGS steps
(upper bounds); the enumeration's after a full relaxation (FIRE, fmax 0.05 eV/Å, 500 steps at most).

    upotbo search --out runs/search                                  # binary run, 2,000 steps: parents
    python benchmarks/completeness.py --binary-run runs/search        # enumerate + relax (~8.5 min)
    upotbo search --ncomp 3 --steps 10000 --out runs/ternary10k      # the ternary search
    python benchmarks/completeness.py --search-run runs/ternary10k    # compare at 1k / 3k / 10k steps

The relaxed enumeration is cached (``--enumeration``, default
``benchmarks/results/completeness_enumeration.json``) and reused while its parents and settings
match (``--recompute`` forces a new one), so comparisons need neither the binary run nor the
potential once it exists.

``--run-search STEPS --seed S --out DIR`` runs the ternary search first, through the Python API, with
the CLI's defaults (``upotbo search --ncomp 3 --steps STEPS --seed S --out DIR``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from upotbo.cells import SYMPREC, standard_cells
from upotbo.crystal.prototypes import first_distinct, prototype_name, same_crystal
from upotbo.errors import InputError
from upotbo.properties import CohesiveEnergy
from upotbo.report import best_per_composition, ranked
from upotbo.space import SearchSpace
from upotbo.space.seeds import cell_formula, counts_of
from upotbo.storage import Objective, Record, RunDirectory, completed_records
from upotbo.storage.run_record import describe_crystal, is_step

optuna.logging.set_verbosity(optuna.logging.WARNING)
RESULTS = Path(__file__).parent / "results"
ENUMERATION_FORMAT = 1  # bump when the cache's fields or the enumeration's rules change
OBJECTIVE = Objective.of(CohesiveEnergy())


# -- parents and enumeration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Parent:
    """A binary of the binary run and the cell its substitutions are made in."""

    record: Record
    cell: Structure
    cell_kind: str  # "conventional" or "primitive"


@dataclass(frozen=True)
class Substituted:
    """One enumerated crystal before relaxation."""

    parent: str
    substitution: str
    structure: Structure


def fits(structure: Structure, space: SearchSpace) -> bool:
    """Whether the space could draw this cell (the space's own check of a seed crystal)."""
    try:
        space.seed_composition(*counts_of(structure))
    except InputError:
        return False
    return True


def binary_parents(run_dir: str | Path, n: int, space: SearchSpace) -> list[Parent]:
    """The ``n`` best binaries (exactly two elements, best per reduced formula) of a run, each in its
    conventional standard cell when the ternary space holds that cell, else in its primitive cell:
    a bigger cell has more ways to place a third element, which is what the enumeration is for."""
    run = RunDirectory.open(run_dir)
    records = [r for r in completed_records(run.study()) if len(r.elements) == 2]
    parents = []
    for record in best_per_composition([r for r in records if r.feasible], n, run.objective):
        conventional, primitive = standard_cells(record.structure, SYMPREC)
        if fits(conventional, space):
            parents.append(Parent(record, conventional, "conventional"))
        else:
            parents.append(Parent(record, primitive, "primitive"))
    return parents


def site_permutations(cell: Structure) -> list[np.ndarray]:
    """Each symmetry operation of ``cell`` (centring translations included) as the permutation of
    its sites: two choices of sites are the same crystal when one permutation maps one on the other."""
    frac = cell.frac_coords
    numbers = np.array([site.specie.Z for site in cell])
    perms = []
    for op in SpacegroupAnalyzer(cell, symprec=SYMPREC).get_symmetry_operations(cartesian=False):
        moved = op.operate_multi(frac)
        diff = moved[:, None, :] - frac[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ cell.lattice.matrix, axis=2)
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        perm = dist.argmin(axis=1)
        if dist[np.arange(len(cell)), perm].max() < SYMPREC and len(set(perm)) == len(cell):
            perms.append(perm)
    return perms or [np.arange(len(cell))]


def distinct_choices(perms: Sequence[np.ndarray], k: int, natoms: int) -> list[tuple[int, ...]]:
    """One representative of each symmetry orbit of the ``k``-site subsets of the cell."""
    seen, out = set(), []
    for choice in combinations(range(natoms), k):
        key = min(tuple(sorted(int(p[i]) for i in choice)) for p in perms)
        if key not in seen:
            seen.add(key)
            out.append(choice)
    return out


def substitutions(parent: Parent, pool: Sequence[str], space: SearchSpace) -> tuple[list[Substituted], int]:
    """The parent's cell with one site, or two sites (same new element), replaced by each pool element
    not in the parent; the ternaries the space holds, and how many ternaries its limits dropped."""
    cell = parent.cell
    perms = site_permutations(cell)
    elements = set(parent.record.elements)
    kept, dropped = [], 0
    for k in (1, 2):
        for choice in distinct_choices(perms, k, len(cell)):
            old = [cell[i].specie.symbol for i in choice]
            apart = "" if k == 1 else f", {cell.get_distance(*choice):.2f} Å apart"
            for new in sorted(set(pool) - elements):
                structure = cell.copy()
                for i in choice:
                    structure.replace(i, new)
                if len(structure.composition.elements) != 3:
                    continue
                if not fits(structure, space):
                    dropped += 1
                    continue
                label = f"{'+'.join(old)} -> {new}{apart}"
                kept.append(Substituted(parent.record.formula, label, structure))
    return kept, dropped


def deduplicate(crystals: list[Substituted]) -> list[Substituted]:
    """Drop crystals that are the same as an earlier one (reduced formula + StructureMatcher, any
    cell, scale or origin): NbZrC2 comes from rock-salt NbC and from rock-salt ZrC alike."""
    return [group[0] for group in first_distinct(crystals, lambda c: c.structure, len(crystals))]


# -- relaxation -------------------------------------------------------------------------------------


def relax_all(
    potential: Any, crystals: list[Substituted], steps: int, fmax: float, batch: int, optimizer: str
) -> tuple[list[dict[str, Any]], int]:
    """Relax every crystal fully (positions and cell) from a slightly strained and rattled start, so
    that a symmetric saddle point is left as a search's crystals leave it; a rolling batch of
    ``batch`` crystals per potential call. Returns one row per crystal and the potential evaluations."""
    from upotbo.potentials import RelaxPool
    from upotbo.search.evaluate import break_symmetry

    prop = CohesiveEnergy()
    starts = [break_symmetry(c.structure) for c in crystals]
    pool = RelaxPool(potential, steps, fmax, optimizer=optimizer)
    waiting = iter(range(len(starts)))
    done: dict[int, Any] = {}
    started = time.perf_counter()

    def refill() -> None:
        while len(pool) < batch:
            i = next(waiting, None)
            if i is None:
                return
            pool.add(i, starts[i])

    refill()
    while len(pool):
        for key, relaxation in pool.step():
            done[int(key)] = relaxation
            if len(done) % 50 == 0 or len(done) == len(starts):
                print(
                    f"  relaxed {len(done)}/{len(starts)}, {time.perf_counter() - started:.0f} s", flush=True
                )
        refill()
    rows = []
    for i, c in enumerate(crystals):
        r = done[i]
        row: dict[str, Any] = {
            "parent": c.parent,
            "substitution": c.substitution,
            "formula": c.structure.composition.reduced_formula,
            "cell_formula": cell_formula(c.structure),
            "natoms": len(c.structure),
            "steps": r.steps,
            "converged": r.converged,
            "error": r.error,
        }
        value = math.nan
        if r.error is None and math.isfinite(r.energy):
            value = prop.value(r.structure, r.energy, potential)
            row["ec_start_eV_per_atom"] = round(prop.value(starts[i], r.initial_energy, potential), 5)
            row["energy_eV"] = round(r.energy, 5)
            low, high = prop.plausible
            if not low <= value <= high:
                row["error"], value = f"implausible E_c {value:.3f} eV/atom (potential failure)", math.nan
        row["ec_eV_per_atom"] = round(value, 5) if math.isfinite(value) else None
        row["structure"] = pack(r.structure)
        rows.append(row)
    return rows, pool.evaluations


def pack(structure: Structure) -> dict[str, Any]:
    """A compact JSON form (pymatgen's own is ~3 kB per 8-atom crystal; this is a tenth of it)."""
    return {
        "lattice": np.round(structure.lattice.matrix, 5).tolist(),
        "species": [site.specie.symbol for site in structure],
        "frac": np.round(structure.frac_coords, 5).tolist(),
    }


def unpack(data: dict[str, Any]) -> Structure:
    return Structure(Lattice(data["lattice"]), data["species"], data["frac"])


def enumeration_key(parents: list[Parent], space: SearchSpace, args: argparse.Namespace) -> dict[str, Any]:
    """What the cached enumeration depends on: a cache with another key is computed again."""
    return {
        "format": ENUMERATION_FORMAT,
        "parents": [
            [p.record.formula, p.record.cell_formula, p.record.number, round(p.record.value, 5)]
            for p in parents
        ],
        "pool": list(space.pool),
        "nchem": space.nchem,
        "max_atoms": space.max_atoms,
        "potential": args.potential,
        "relax_steps": args.relax_steps,
        "fmax": args.fmax,
        "optimizer": args.optimizer,
    }


def enumerate_and_relax(args: argparse.Namespace, space: SearchSpace, potential: Any) -> dict[str, Any]:
    """Parents, their substitutions, and every one relaxed: the cache's content."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    parents = binary_parents(args.binary_run, args.parents, space)
    made, per_parent, dropped_total = [], [], 0
    for parent in parents:
        crystals, dropped = substitutions(parent, space.pool, space)
        made += crystals
        dropped_total += dropped
        per_parent.append(
            {
                "formula": parent.record.formula,
                "stored_cell": parent.record.cell_formula,
                "step": parent.record.number,
                "ec_stored_eV_per_atom": round(parent.record.value, 5),
                "spacegroup": f"{parent.record.spacegroup} ({parent.record.spacegroup_number})",
                "prototype": prototype_name(parent.cell) or "-",
                "cell": parent.cell_kind,
                "cell_formula": cell_formula(parent.cell),
                "substituted": len(crystals),
                "dropped_by_limits": dropped,
            }
        )
        print(
            f"parent {parent.record.formula} ({parent.cell_kind} cell {cell_formula(parent.cell)}): "
            f"{len(crystals)} ternaries, {dropped} outside the space's limits",
            flush=True,
        )
    distinct = deduplicate(made)
    built = time.perf_counter() - start
    print(
        f"{len(made)} substituted, {len(distinct)} distinct after StructureMatcher ({built:.0f} s); "
        f"relaxing ({args.optimizer}, {args.relax_steps} steps, fmax {args.fmax} eV/Å)",
        flush=True,
    )
    relax_start = time.perf_counter()
    rows, evaluations = relax_all(
        potential, distinct, args.relax_steps, args.fmax, args.batch, args.optimizer
    )
    relax_s = time.perf_counter() - relax_start
    return {
        "key": enumeration_key(parents, space, args),
        "binary_run": str(args.binary_run),
        "parents": per_parent,
        "substituted": len(made),
        "distinct": len(distinct),
        "dropped_by_limits": dropped_total,
        "failed": sum(r["ec_eV_per_atom"] is None for r in rows),
        "converged": sum(bool(r["converged"]) for r in rows),
        "potential_evaluations": evaluations,
        "build_s": round(built, 1),
        "relax_s": round(relax_s, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "load_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "crystals": rows,
    }


def load_enumeration(args: argparse.Namespace, space: SearchSpace, potential_for: Any) -> dict[str, Any]:
    """The cached enumeration when it matches this run's parents and settings, else a new one."""
    path = Path(args.enumeration)
    cached = json.loads(path.read_text()) if path.is_file() and not args.recompute else None
    if cached is not None and args.binary_run is None:
        print(f"enumeration from {path} (parents of {cached['binary_run']})")
        key = cached.get("key", {})
        made = (key.get("pool"), key.get("nchem"), key.get("max_atoms"))
        if made != (list(space.pool), space.nchem, space.max_atoms):
            print(
                f"warning: enumerated for another space (nchem {made[1]}, max atoms {made[2]}): "
                "pass --binary-run and --recompute"
            )
        return cached
    if args.binary_run is None:
        raise SystemExit(f"no enumeration cached at {path}: pass --binary-run DIR (a binary upotbo search)")
    if cached is not None:
        key = enumeration_key(binary_parents(args.binary_run, args.parents, space), space, args)
        if cached.get("key") == key:
            print(f"enumeration from {path}: same parents and settings")
            return cached
        print(f"{path} was made from other parents or settings: enumerating again")
    enumeration = enumerate_and_relax(args, space, potential_for())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(enumeration))
    print(f"enumeration written to {path}")
    return enumeration


def dump(enumeration: dict[str, Any]) -> str:
    """The cache as JSON with one crystal per line: readable, and a small diff when it changes."""
    head = json.dumps({k: v for k, v in enumeration.items() if k != "crystals"}, indent=1)
    rows = ",\n".join(json.dumps(row) for row in enumeration["crystals"])
    return f'{head[:-2]},\n "crystals": [\n{rows}\n ]\n}}\n'


def as_records(rows: list[dict[str, Any]]) -> list[Record]:
    """The enumerated crystals as run records, so upotbo's own ranking ranks them."""
    out = []
    for i, row in enumerate(rows):
        if row["ec_eV_per_atom"] is None:
            continue
        a = describe_crystal(unpack(row["structure"]))
        out.append(
            Record(
                number=i,
                value=row["ec_eV_per_atom"],
                energy=row.get("energy_eV", math.nan),
                formula=a["formula"],
                cell_formula=row["cell_formula"],
                natoms=a["natoms"],
                spacegroup=a["spacegroup"],
                spacegroup_number=a["spacegroup_number"],
                initial_value=row.get("ec_start_eV_per_atom", math.nan),
                structure_json=a["structure"],
                elements=tuple(a["elements"]),
            )
        )
    return out


# -- comparison with a search -----------------------------------------------------------------------


def stored_steps(run: RunDirectory) -> int:
    study = run.study()
    return sum(
        is_step(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    )


def compare(
    records: list[Record],
    objectives: list[Objective],
    enumerated: list[Record],
    rows: list[dict[str, Any]],
    checkpoint: int,
    top: int,
) -> dict[str, Any]:
    """The search's top list from the trials before ``checkpoint`` against the enumerated top list."""
    before = [r for r in records if r.number < checkpoint]
    every = ranked(before, objectives, len(before) or 1)  # best per formula, in the top table's order
    rank_of = {r.formula: i for i, r in enumerate(every, 1)}
    ternaries = [r for r in every if len(r.elements) == 3]
    ternary_rank = {r.formula: i for i, r in enumerate(ternaries, 1)}
    enum_all = best_per_composition(enumerated, len(enumerated), OBJECTIVE)
    enum_rank = {r.formula: i for i, r in enumerate(enum_all, 1)}
    reference = enumerated_top(enumerated)
    worst_enumerated = reference[-1].value if reference else math.nan
    best_enumerated = reference[0].value if reference else math.nan
    best_search = {r.formula: r for r in every}

    wanted = []
    for i, e in enumerate(reference, 1):
        s = best_search.get(e.formula)
        same_anywhere = s is not None and any(
            same_crystal(e.structure, r.structure)
            for r in sorted((r for r in before if r.formula == e.formula), key=lambda r: r.value)
        )
        wanted.append(
            {
                "enumerated_rank": i,
                "formula": e.formula,
                "parent": rows[e.number]["parent"],
                "substitution": rows[e.number]["substitution"],
                "ec_enumerated_eV_per_atom": e.value,
                "scored": s is not None,
                "search_rank": rank_of.get(e.formula),
                "search_ternary_rank": ternary_rank.get(e.formula),
                "ec_search_eV_per_atom": None if s is None else round(s.value, 5),
                "search_step": None if s is None else s.number,
                "search_spacegroup": None if s is None else f"{s.spacegroup} ({s.spacegroup_number})",
                "same_structure": None if s is None else bool(same_crystal(e.structure, s.structure)),
                "same_structure_anywhere": same_anywhere,
            }
        )
    n = len(wanted)
    in_top = sum(w["search_rank"] is not None and w["search_rank"] <= top for w in wanted)
    in_ternary_top = sum(
        w["search_ternary_rank"] is not None and w["search_ternary_rank"] <= top for w in wanted
    )
    shown = []
    for label, listed in (("top", every[:top]), ("ternary_top", ternaries[:top])):
        for i, r in enumerate(listed, 1):
            rank = enum_rank.get(r.formula)
            missed = len(r.elements) == 3 and rank is None and r.value < worst_enumerated
            shown.append(
                {
                    "list": label,
                    "rank": i,
                    "formula": r.formula,
                    "cell_formula": r.cell_formula,
                    "elements": len(r.elements),
                    "spacegroup": f"{r.spacegroup} ({r.spacegroup_number})",
                    "ec_eV_per_atom": round(r.value, 5),
                    "step": r.number,
                    "enumerated_rank": rank,
                    "in_enumerated_top": rank is not None and rank <= n,
                    "ec_enumerated_eV_per_atom": None if rank is None else enum_all[rank - 1].value,
                    "same_structure_as_enumerated": None
                    if rank is None
                    else bool(same_crystal(r.structure, enum_all[rank - 1].structure)),
                    "not_enumerated_better_than_enumerated_20th": missed,
                    "not_enumerated_better_than_enumerated_best": missed and r.value < best_enumerated,
                }
            )
    return {
        "checkpoint": checkpoint,
        "trials": len(before),
        "top": top,
        "in_top": in_top,
        "in_ternary_top": in_ternary_top,
        "scored_anywhere": sum(w["scored"] for w in wanted),
        "same_structure_anywhere": sum(w["same_structure_anywhere"] for w in wanted),
        "fraction_in_top": in_top / n if n else math.nan,
        "fraction_in_ternary_top": in_ternary_top / n if n else math.nan,
        "enumerated_top": wanted,
        "search_lists": shown,
    }


TOP_ENUMERATED = 20


def enumerated_top(enumerated: list[Record]) -> list[Record]:
    """The 20 best distinct reduced formulas of the enumeration, best crystal of each."""
    return best_per_composition(enumerated, TOP_ENUMERATED, OBJECTIVE)


# -- output -----------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_enumeration(enumeration: dict[str, Any], top: list[Record]) -> None:
    rows = enumeration["crystals"]
    print(
        table(
            [
                "parent",
                "stored cell",
                "step",
                "E_c stored (eV/atom)",
                "space group",
                "prototype",
                "cell used",
                "ternaries",
                "dropped by limits",
            ],
            [
                [
                    p["formula"],
                    p["stored_cell"],
                    p["step"],
                    p["ec_stored_eV_per_atom"],
                    p["spacegroup"],
                    p["prototype"],
                    f"{p['cell']} {p['cell_formula']}",
                    p["substituted"],
                    p["dropped_by_limits"],
                ]
                for p in enumeration["parents"]
            ],
        )
    )
    e = enumeration
    print(
        f"\nenumeration: {e['substituted']} substituted ternaries, {e['distinct']} distinct, "
        f"{e['dropped_by_limits']} dropped by the space's limits, {e['failed']} failed, "
        f"{e['converged']} converged; {e['potential_evaluations']} potential evaluations, "
        f"{e['build_s']} s to build + {e['relax_s']} s to relax "
        f"(load {e['load_before_after'][0]} before, {e['load_before_after'][1]} after)\n"
    )
    print(f"Enumerated top {len(top)} (best crystal per reduced formula, relaxed fully):\n")
    print(
        table(
            [
                "rank",
                "formula",
                "cell",
                "parent",
                "substitution",
                "space group",
                "E_c (eV/atom)",
                "relax steps",
                "converged",
            ],
            [
                [
                    i,
                    r.formula,
                    r.cell_formula,
                    rows[r.number]["parent"],
                    rows[r.number]["substitution"],
                    f"{r.spacegroup} ({r.spacegroup_number})",
                    r.value,
                    rows[r.number]["steps"],
                    rows[r.number]["converged"],
                ]
                for i, r in enumerate(top, 1)
            ],
        )
    )


def print_comparison(c: dict[str, Any]) -> None:
    n, top = len(c["enumerated_top"]), c["top"]
    share, ternary_share = 100 * c["fraction_in_top"], 100 * c["fraction_in_ternary_top"]
    print(
        f"\n## {c['checkpoint']} steps ({c['trials']} scored trials before it)\n\n"
        f"enumerated top {n} in the search's top {top}: {c['in_top']}/{n} ({share:.0f} %); "
        f"in its top {top} ternaries: {c['in_ternary_top']}/{n} ({ternary_share:.0f} %); "
        f"scored at any rank: {c['scored_anywhere']}/{n} "
        f"(same structure: {c['same_structure_anywhere']}/{n})\n"
    )
    print(
        table(
            [
                "enum. rank",
                "formula",
                "substitution",
                "E_c enum. (eV/atom)",
                "search rank",
                "ternary rank",
                "E_c search (eV/atom)",
                "step",
                "search space group",
                "same structure",
                "same structure anywhere",
            ],
            [
                [
                    w["enumerated_rank"],
                    w["formula"],
                    f"{w['parent']}: {w['substitution']}",
                    w["ec_enumerated_eV_per_atom"],
                    w["search_rank"],
                    w["search_ternary_rank"],
                    w["ec_search_eV_per_atom"],
                    w["search_step"],
                    w["search_spacegroup"],
                    w["same_structure"],
                    w["same_structure_anywhere"],
                ]
                for w in c["enumerated_top"]
            ],
        )
    )
    for label, title in (("top", f"top {top}, as top.md lists it"), ("ternary_top", f"top {top} ternaries")):
        print(f"\nThe search's {title}:\n")
        print(
            table(
                [
                    "rank",
                    "formula",
                    "cell",
                    "elements",
                    "space group",
                    "E_c (eV/atom)",
                    "step",
                    "enum. rank",
                    "E_c enum. (eV/atom)",
                    "same structure",
                    "not enumerated, beats enum. #20",
                ],
                [
                    [
                        s["rank"],
                        s["formula"],
                        s["cell_formula"],
                        s["elements"],
                        s["spacegroup"],
                        s["ec_eV_per_atom"],
                        s["step"],
                        s["enumerated_rank"],
                        s["ec_enumerated_eV_per_atom"],
                        s["same_structure_as_enumerated"],
                        missed_label(s),
                    ]
                    for s in c["search_lists"]
                    if s["list"] == label
                ],
            )
        )


def missed_label(s: dict[str, Any]) -> str:
    """Whether the enumeration lacks a crystal that belongs in its top list: what it is incomplete on."""
    if s["elements"] != 3:
        return f"- ({s['elements']} elements)"
    if s["not_enumerated_better_than_enumerated_best"]:
        return "**yes, beats enum. #1**"
    return "**yes**" if s["not_enumerated_better_than_enumerated_20th"] else "no"


def share(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else f"{k}/0"


def print_summary(comparisons: list[dict[str, Any]]) -> None:
    if not comparisons:
        return
    top = comparisons[0]["top"]
    print("\nSummary (enumerated top 20 found by the search, same reduced formula):\n")
    print(
        table(
            [
                "steps",
                f"in top {top}",
                f"in top {top} ternaries",
                "scored at any rank",
                "same structure scored",
            ],
            [
                [
                    c["checkpoint"],
                    share(c["in_top"], len(c["enumerated_top"])),
                    share(c["in_ternary_top"], len(c["enumerated_top"])),
                    share(c["scored_anywhere"], len(c["enumerated_top"])),
                    share(c["same_structure_anywhere"], len(c["enumerated_top"])),
                ]
                for c in comparisons
            ],
        )
    )


# -- the optional search ----------------------------------------------------------------------------


def run_search(space: SearchSpace, potential: Any, steps: int, seed: int, out: str) -> dict[str, Any]:
    """The ternary search with ``upotbo search``'s defaults (20 BFGS steps, 200 random steps first,
    children of the best crystals, prune margin 2 eV/atom, batches of 32), then its report files."""
    from upotbo.report import write_report
    from upotbo.search import Search, SearchConfig

    config = SearchConfig(
        n_init=200, seed=seed, relax_steps=20, optimizer="bfgs", prune_margin=2.0, batch_size=32
    )
    search = Search(space, potential, CohesiveEnergy(), out, config)
    result = search.run(steps)
    write_report(out)
    best = "none" if result.best_value is None else f"{result.best_formula} {result.best_value:.3f} eV/atom"
    print(f"search: {result.steps} steps in {result.elapsed:.0f} s, best {best} at step {result.best_step}")
    return {"steps": result.steps, "seconds": round(result.elapsed, 1), "seed": seed, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary-run", default=None, help="run directory of a binary search: the parents")
    parser.add_argument("--parents", type=int, default=3, help="best distinct binaries to substitute into")
    parser.add_argument("--search-run", default=None, help="run directory of the ternary search to check")
    parser.add_argument("--checkpoints", default="1000,3000,10000", help="steps, comma-separated")
    parser.add_argument("--top", type=int, default=10, help="rows of the search's top list compared")
    parser.add_argument("--pool", default="paper42")
    parser.add_argument("--nchem", type=int, default=5, help="atoms of one element, at most (as the search)")
    parser.add_argument("--max-atoms", type=int, default=None, help="atoms per cell (default 3 * nchem)")
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument(
        "--relax-steps",
        type=int,
        default=500,
        help="FIRE steps at most (500: upotbo validate's full relaxation)",
    )
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Å")
    parser.add_argument("--optimizer", default="fire")
    parser.add_argument("--batch", type=int, default=64, help="crystals per potential call")
    parser.add_argument("--enumeration", default=str(RESULTS / "completeness_enumeration.json"))
    parser.add_argument("--recompute", action="store_true", help="enumerate again even if cached")
    parser.add_argument(
        "--run-search", type=int, default=None, metavar="STEPS", help="run the ternary search"
    )
    parser.add_argument("--seed", type=int, default=0, help="with --run-search")
    parser.add_argument(
        "--out", default="runs/completeness_ternary", help="with --run-search: its run directory"
    )
    parser.add_argument("--json", default=str(RESULTS / "completeness.json"))
    args = parser.parse_args()

    space = SearchSpace.create(args.pool, 3, args.nchem, args.max_atoms)
    loaded: list[Any] = []

    def potential() -> Any:
        if not loaded:
            from upotbo.potentials import load_potential

            loaded.append(load_potential(args.potential))
        return loaded[0]

    searched = None
    if args.run_search:
        searched = run_search(space, potential(), args.run_search, args.seed, args.out)
        args.search_run = args.out
    enumeration = load_enumeration(args, space, potential)
    enumerated = as_records(enumeration["crystals"])
    top = enumerated_top(enumerated)
    print_enumeration(enumeration, top)

    comparisons, search_info = [], None
    if args.search_run:
        run = RunDirectory.open(args.search_run)
        settings = {
            k: run.settings.get(k) for k in ("pool", "ncomp", "nchem", "max_atoms", "potential", "property")
        }
        if (
            settings["ncomp"] != 3
            or settings["nchem"] != space.nchem
            or settings["max_atoms"] != space.max_atoms
        ):
            print(
                f"warning: the search's space {settings} is not the enumeration's (3, {space.nchem}, "
                f"{space.max_atoms})"
            )
        steps = stored_steps(run)
        records = [r for r in completed_records(run.study()) if r.feasible]
        search_info = {
            "run": str(args.search_run),
            "stored_steps": steps,
            "settings": settings,
            "ran": searched,
        }
        wanted = [int(x) for x in args.checkpoints.split(",") if x.strip()]
        skipped = [c for c in wanted if c > steps]
        if skipped:
            print(f"\ncheckpoints {skipped} skipped: the search stored {steps} steps")
        for checkpoint in (c for c in wanted if c <= steps):
            comparisons.append(
                compare(records, run.objectives, enumerated, enumeration["crystals"], checkpoint, args.top)
            )
            print_comparison(comparisons[-1])
        print_summary(comparisons)

    out = {
        "enumeration_file": args.enumeration,
        "enumeration": {k: v for k, v in enumeration.items() if k != "crystals"},
        "enumerated_top": [
            {
                "rank": i,
                "formula": r.formula,
                "cell_formula": r.cell_formula,
                "parent": enumeration["crystals"][r.number]["parent"],
                "substitution": enumeration["crystals"][r.number]["substitution"],
                "spacegroup": f"{r.spacegroup} ({r.spacegroup_number})",
                "ec_eV_per_atom": r.value,
            }
            for i, r in enumerate(top, 1)
        ],
        "search": search_info,
        "comparisons": comparisons,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
