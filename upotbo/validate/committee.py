"""A committee of potentials: each member relaxes every crystal, and the table shows where the ranking
depends on which model is asked.

Why: one potential's error against DFT (0.07-0.10 eV/atom for CHGNet) is larger than the gaps between
a search's best crystals, so a ranking that flips under an independently trained potential is one no
single model can settle; those crystals are the ones worth a DFT label. Members start from the crystal
the main potential relaxed (all minima lie close to it), relax to the same ``fmax``, and are stored
per member in the validation state, so a rerun or an added member redoes nothing already done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymatgen.core import Structure

from upotbo.potentials import Potential
from upotbo.validate.relax import relax_crystals
from upotbo.validate.state import State

STEP = "committee"


def column(name: str) -> str:
    """Row key of a member's E_c (eV/atom)."""
    return f"ec:{name}"


def committee_step(
    state: State,
    members: Sequence[Potential],
    structures: dict[str, Structure],
    fingerprints: dict[str, str],
    fmax: float,
    steps: int,
    log: Callable[[str], None],
) -> None:
    """Relax each crystal in ``structures`` (name -> main potential's relaxed crystal) under each member
    and store its E_c, one batch per member."""
    for member in members:
        cfg = {name: _settings(member, fmax, steps, fingerprints[name]) for name in structures}
        step = f"{STEP}:{member.name}"
        pending = [n for n in structures if state.done(n, step, cfg[n]) is None]
        if not pending:
            continue
        log(f"committee: relaxing {len(pending)} crystal(s) with {member.name} (fmax {fmax} eV/Å)")
        t0 = time.perf_counter()
        results = relax_crystals(member, [structures[n] for n in pending], fmax, steps)
        seconds = (time.perf_counter() - t0) / len(pending)
        for name, r in zip(pending, results, strict=True):
            state.put(
                name,
                step,
                cfg[name],
                {"error": r.error, "value": r.value, "converged": r.converged, "seconds": seconds},
            )


def member_values(
    state: State, members: Sequence[Potential], name: str, fmax: float, steps: int, fingerprint: str
) -> tuple[dict[str, float], list[str]]:
    """(member name -> E_c eV/atom, notes) for one crystal, from the stored committee steps."""
    values, notes = {}, []
    for member in members:
        done = state.done(name, f"{STEP}:{member.name}", _settings(member, fmax, steps, fingerprint))
        if done is None:
            continue
        if done["error"] is not None:
            notes.append(f"{member.name} relaxation failed: {done['error']}")
        else:
            values[member.name] = done["value"]
            if not done["converged"]:
                notes.append(f"{member.name} relaxation not converged in {steps} steps")
    return values, notes


def rank(rows: list[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Add each row's spread and ranks under every potential in ``names`` (E_c, lower ranks first);
    return summary lines: the winner under each potential, with its margin, and how many ranks move."""
    scored = [r for r in rows if all(_finite(r.get(column(n))) for n in names)]
    lines = [line for n in names if (line := winner(scored, column(n), n))]
    ranks = {n: {r["name"]: k for k, r in enumerate(_ordered(scored, column(n)), start=1)} for n in names}
    moved = 0
    for r in scored:
        values = [r[column(n)] for n in names]
        r["committee_spread"] = max(values) - min(values)
        mine = [ranks[n][r["name"]] for n in names]
        r["committee_ranks"] = " / ".join(str(k) for k in mine)
        if len(set(mine)) > 1:
            moved += 1
            r["verdict"] = "; ".join(v for v in (r.get("verdict"), "rank depends on the potential") if v)
    if scored:
        lines.append(
            f"committee ({' / '.join(names)}): {moved} of {len(scored)} crystal(s) rank differently "
            f"under different potentials; largest spread "
            f"{max(r['committee_spread'] for r in scored):.3f} eV/atom"
        )
    return lines


def winner(rows: list[dict[str, Any]], key: str, label: str) -> str | None:
    """'winner under LABEL: ...' for the rows that have ``key`` (E_c, eV/atom), or None."""
    order = _ordered(rows, key)
    if not order:
        return None
    best = order[0]
    margin = f"{order[1][key] - best[key]:.3f} eV/atom ahead of the next" if len(order) > 1 else "alone"
    return f"winner under {label}: {best['formula']} ({best['name']}), E_c {best[key]:.3f} eV/atom, {margin}"


def agreement(rows: list[dict[str, Any]], keys: dict[str, str], reference: str) -> list[str]:
    """Spearman rank correlation of each potential's E_c (``keys``: name -> row key) with the
    ``reference`` column's (DFT) over the rows that have both: how far its ranking can be trusted."""
    from scipy.stats import spearmanr

    lines = []
    for name, key in keys.items():
        both = [r for r in rows if _finite(r.get(key)) and _finite(r.get(reference))]
        if len(both) >= 3:
            rho = spearmanr([r[key] for r in both], [r[reference] for r in both]).statistic
            lines.append(f"ranking against DFT, {name}: Spearman ρ {rho:.2f} over {len(both)} crystal(s)")
    return lines


def _ordered(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted((r for r in rows if _finite(r.get(key))), key=lambda r: r[key])


def _settings(member: Potential, fmax: float, steps: int, fingerprint: str) -> dict[str, Any]:
    return {"potential": member.name, "fmax": fmax, "steps": steps, "input": fingerprint}


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)
