"""The validation pipeline: relax -> symmetry/merge -> references + hull -> phonons -> DFT -> table.

Resumable: every finished step is stored in ``OUT/state.json`` (see ``state.py``) and skipped on the
next run. A crystal whose phonon or DFT step fails gets the reason in its row; the others go on.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter

from upotbo.crystal.prototypes import SYMPREC, merge_duplicates, prototype_name, spacegroup
from upotbo.dft import DFTSettings, dft_cohesive, require_gpaw
from upotbo.errors import CandidateFailed
from upotbo.potentials import Potential
from upotbo.thermo.hull import Entry, hull_energies, phase_diagram
from upotbo.thermo.references import Reference, elemental_references
from upotbo.validate import committee as vote
from upotbo.validate.hull import plot_binary_hull
from upotbo.validate.inputs import Crystal
from upotbo.validate.phonons import DISPLACEMENT, MAX_ATOMS, MESH, MIN_LENGTH, TOLERANCE, phonons
from upotbo.validate.relax import relax_crystals
from upotbo.validate.state import State
from upotbo.validate.table import write_tables

HULL_TOLERANCE = 0.001  # eV/atom: "on the hull" up to rounding


@dataclass
class ValidationSettings:
    fmax: float = 0.05  # eV/Å
    relax_steps: int = 500
    symprec: float = SYMPREC  # Å
    phonons: bool = True
    phonon_min_length: float = MIN_LENGTH  # Å
    phonon_max_atoms: int = MAX_ATOMS
    phonon_mesh: int = MESH
    phonon_tolerance: float = TOLERANCE  # THz
    dft: DFTSettings | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, filled by the run
    summary: list[str] = field(default_factory=list)  # winners and committee lines, filled by the run


def _fingerprint(structure: Structure) -> str:
    return hashlib.sha1(json.dumps(structure.as_dict(), sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def validate(
    crystals: list[Crystal],
    potential: Potential,
    out_dir: str | Path,
    settings: ValidationSettings | None = None,
    run_entries: list[Entry] | None = None,
    log: Callable[[str], None] = print,
    committee: Sequence[Potential] = (),
) -> list[dict[str, Any]]:
    """Validate ``crystals``; writes ``validation.csv/.md``, relaxed CIFs and plots into ``out_dir``
    and returns the table rows (merged duplicates are folded into the row that keeps them).
    ``committee``: more potentials that relax every kept crystal again (see ``committee.py``)."""
    settings = settings or ValidationSettings()
    if settings.dft is not None:
        require_gpaw()
    out = Path(out_dir)
    for sub in ("relaxed", "phonons", "hull"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    state = State(out / "state.json")
    relax_cfg = {"potential": potential.name, "fmax": settings.fmax, "steps": settings.relax_steps}
    cfg = {c.name: {**relax_cfg, "input": _fingerprint(c.structure)} for c in crystals}

    # 1. relaxation, all pending crystals in one batch
    pending = [c for c in crystals if state.done(c.name, "relax", cfg[c.name]) is None]
    if pending:
        log(f"relaxing {len(pending)} crystal(s) with {potential.name} (fmax {settings.fmax} eV/Å)")
        t0 = time.perf_counter()
        results = relax_crystals(
            potential, [c.structure for c in pending], settings.fmax, settings.relax_steps
        )
        seconds = (time.perf_counter() - t0) / len(pending)
        for c, r in zip(pending, results, strict=True):
            result: dict[str, Any] = {"error": r.error, "seconds": seconds}
            if r.error is None:
                CifWriter(r.structure).write_file(out / "relaxed" / f"{c.name}.cif")
                sg, number = spacegroup(r.structure, settings.symprec)
                result |= {
                    "structure": r.structure.as_dict(),
                    "energy": r.energy,
                    "value": r.value,
                    "value_initial": r.value_initial,
                    "relaxation_energy": r.relaxation_energy,
                    "steps": r.steps,
                    "converged": r.converged,
                    "spacegroup": f"{sg} ({number})",
                    "prototype": prototype_name(r.structure),
                }
            state.put(c.name, "relax", cfg[c.name], result)
    relaxed = {c.name: state.done(c.name, "relax", cfg[c.name]) for c in crystals}
    ok = [c for c in crystals if relaxed[c.name]["error"] is None]
    structures = {c.name: Structure.from_dict(relaxed[c.name]["structure"]) for c in ok}

    # 2. same crystal twice: keep the lowest energy per atom
    owner = merge_duplicates(
        [structures[c.name] for c in ok], [relaxed[c.name]["energy"] / len(structures[c.name]) for c in ok]
    )
    kept_of = {c.name: ok[k].name for c, k in zip(ok, owner, strict=True)}
    kept = {n: structures[n] for n in set(kept_of.values())}
    fingerprints = {c.name: cfg[c.name]["input"] for c in crystals}
    vote.committee_step(state, committee, kept, fingerprints, settings.fmax, settings.relax_steps, log)

    # 3. elemental references and hulls
    elements = sorted({el.symbol for s in structures.values() for el in s.composition.elements})
    references = _references(state, potential, elements, log)
    entries = list(run_entries or []) + [
        (structures[n].composition, relaxed[n]["energy"], n) for n in structures
    ]
    hulls: dict[tuple[str, ...], Any] = {}

    rows = []
    for c in crystals:
        r = relaxed[c.name]
        row: dict[str, Any] = {
            "name": c.name,
            "formula": c.structure.composition.reduced_formula,
            "natoms": len(c.structure),
            "notes": "",
        }
        if r["error"] is not None:
            row["notes"] = f"relaxation failed: {r['error']}"
            rows.append(row)
            continue
        if kept_of[c.name] != c.name:
            continue  # folded into the row of the crystal it duplicates
        s = structures[c.name]
        row |= {
            "natoms": len(s),
            "spacegroup": r["spacegroup"],
            "prototype": r["prototype"],
            "ec_found": c.value_found if c.value_found is not None else r["value_initial"],
            **({"objective_found": c.found[1], "objective_header": c.found[0]} if c.found else {}),
            "ec_relaxed": r["value"],
            "relaxation_energy": r["relaxation_energy"],
            "merged": ", ".join(n for n, k in kept_of.items() if k == c.name and n != c.name),
        }
        notes, verdicts = [], []
        if committee:
            values, member_notes = vote.member_values(
                state, committee, c.name, settings.fmax, settings.relax_steps, fingerprints[c.name]
            )
            row |= {vote.column(potential.name): r["value"], "committee": [m.name for m in committee]}
            row |= {vote.column(n): v for n, v in values.items()}
            notes += member_notes
        if not r["converged"]:
            notes.append(f"relaxation not converged in {r['steps']} steps")
        chemsys = tuple(sorted(el.symbol for el in s.composition.elements))
        row["chemsys"] = chemsys
        try:
            if chemsys not in hulls:
                hulls[chemsys] = phase_diagram(chemsys, entries, references)
            form, above = hull_energies(hulls[chemsys], s.composition, r["energy"])
            row |= {"formation_energy": form, "e_above_hull": above}
            verdicts.append("on hull" if above <= HULL_TOLERANCE else f"{above:.3f} eV/atom above hull")
        except CandidateFailed as exc:
            notes.append(f"hull: {exc}")
        _phonon_step(
            state, potential, c.name, s, cfg[c.name]["input"], settings, out, row, verdicts, notes, log
        )
        _dft_step(state, c.name, s, cfg[c.name]["input"], settings, out, row, notes, log)
        row["verdict"] = "; ".join(verdicts)
        row["notes"] = "; ".join(notes)
        rows.append(row)

    for chemsys, pd in hulls.items():
        if len(chemsys) == 2:
            mine = {
                row["name"]: (structures[row["name"]].composition, relaxed[row["name"]]["energy"])
                for row in rows
                if "formation_energy" in row and set(row["chemsys"]) == set(chemsys)
            }
            plot_binary_hull(pd, mine, out / "hull" / f"hull_{'-'.join(chemsys)}.png")
    settings.summary = [line for line in [vote.winner(rows, "ec_relaxed", potential.name)] if line]
    if committee:
        settings.summary = vote.rank(rows, [potential.name, *(m.name for m in committee)])
    if dft_line := vote.winner(rows, "ec_dft", "GPAW PBE (single point)"):
        settings.summary.append(dft_line)
        keys = {potential.name: "ec_relaxed", **{m.name: vote.column(m.name) for m in committee}}
        settings.summary += vote.agreement(rows, keys, "ec_dft")
    write_tables(rows, out, settings.summary)
    settings.timings = _timings(state, crystals)
    return rows


def _references(
    state: State, potential: Potential, elements: list[str], log: Callable[[str], None]
) -> dict[str, Reference]:
    references = elemental_references(potential, elements, log)
    state.data["references"].update({el: ref.to_dict() for el, ref in references.items()})
    state.save()
    return references


def _phonon_step(
    state: State,
    potential: Potential,
    name: str,
    s: Structure,
    fingerprint: str,
    settings: ValidationSettings,
    out: Path,
    row: dict,
    verdicts: list,
    notes: list,
    log: Callable[[str], None],
) -> None:
    if not settings.phonons:
        return
    cfg = {
        "min_length": settings.phonon_min_length,
        "max_atoms": settings.phonon_max_atoms,
        "displacement": DISPLACEMENT,
        "mesh": settings.phonon_mesh,
        "tolerance": settings.phonon_tolerance,
        "input": fingerprint,
        "potential": potential.name,
    }
    done = state.done(name, "phonons", cfg)
    if done is None:
        t0 = time.perf_counter()
        try:
            ph = phonons(
                potential,
                s,
                out / "phonons" / f"{name}.png",
                settings.phonon_min_length,
                settings.phonon_mesh,
                settings.phonon_tolerance,
                settings.symprec,
                settings.phonon_max_atoms,
            )
            done = {"error": None, **asdict(ph)}
        except CandidateFailed as exc:
            done = {"error": str(exc)}
        except Exception as exc:  # phonopy/spglib on an odd cell: record it, the other crystals go on
            done = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"}
        done["seconds"] = time.perf_counter() - t0
        state.put(name, "phonons", cfg, done)
        if done["error"] is None:
            log(
                f"{name}: lowest phonon frequency {done['min_frequency']:.2f} THz "
                f"({done['supercell_atoms']}-atom supercell {done['supercell_length']:.1f} Å across, "
                f"{done['seconds']:.1f} s)"
            )
    if done["error"] is not None:
        notes.append(f"phonons failed: {done['error']}")
        return
    row["min_frequency"] = done["min_frequency"]
    if done["supercell_length"] < settings.phonon_min_length - 1e-6:
        notes.append(
            f"phonon supercell {done['supercell_length']:.1f} Å across "
            f"(capped at {settings.phonon_max_atoms} atoms)"
        )
    tol = done["tolerance"]
    verdicts.append(
        f"dynamically stable (min ≥ -{tol:g} THz)"
        if done["stable"]
        else f"dynamically unstable (imaginary modes below -{tol:g} THz)"
    )


def _dft_step(
    state: State,
    name: str,
    s: Structure,
    fingerprint: str,
    settings: ValidationSettings,
    out: Path,
    row: dict,
    notes: list,
    log: Callable[[str], None],
) -> None:
    if settings.dft is None:
        done = state.crystal(name).get("dft")  # earlier DFT results stay in the table
    else:
        cfg = {**asdict(settings.dft), "input": fingerprint}
        done = state.done(name, "dft", cfg)
        if done is None:
            log(
                f"{name}: GPAW PBE single point "
                f"(PW {settings.dft.ecut:g} eV, k-density {settings.dft.kdensity:g})"
            )
            (out / "dft").mkdir(exist_ok=True)
            t0 = time.perf_counter()
            try:
                res = dft_cohesive(s, settings.dft, out / "dft", name)
                done = {"error": None, **asdict(res)}
            except CandidateFailed as exc:
                done = {"error": str(exc)}
            done["seconds"] = time.perf_counter() - t0
            state.put(name, "dft", cfg, done)
            if done["error"] is None:
                log(f"{name}: E_c(DFT) {done['value']:.3f} eV/atom ({done['seconds']:.0f} s)")
    if done is None:
        return
    if done["error"] is not None:
        notes.append(f"DFT failed: {done['error']}")
        return
    row["ec_dft"] = done["value"]
    row["ec_dft_relaxed"] = done.get("value_relaxed")


def _timings(state: State, crystals: list[Crystal]) -> dict[str, float]:
    """Mean wall seconds per crystal for each step (as stored, so resumed steps keep their time)."""
    out = {}
    for step in ("relax", "phonons", "dft"):
        times = [state.crystal(c.name)[step]["seconds"] for c in crystals if step in state.crystal(c.name)]
        times = [t for t in times if t is not None and math.isfinite(t)]
        if times:
            out[step] = sum(times) / len(times)
    return out
