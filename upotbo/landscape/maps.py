"""From stored map points to the files a user opens: 2-D coordinates, CSV, CIFs and figures.

Reads the run database through ``upotbo.storage`` (the same records a search writes), embeds with
UMAP and draws with ``plot``. Also places a search run on the landscape of its space, and overlays
DFT single points (``upotbo.dft``) on a seeded subsample of a map.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
from pymatgen.core import Composition, Structure
from pymatgen.io.cif import CifWriter

from upotbo.errors import InputError
from upotbo.landscape.embed import umap_2d
from upotbo.landscape.plot import plot_landscape, plot_parity, plot_run_overlay
from upotbo.landscape.sampling import MapSpec
from upotbo.storage.run_record import Record

CIF_LIMIT = 2000  # a CIF per point up to this many points; beyond, CIFs for the lowest this many
# GPAW settings of the map overlay: coarser than validation's (500 eV, k-density 4) because random
# crystals are mostly P1 with no k-point symmetry (minutes per point at k-density 4 here), and the
# differences the overlay shows are of order 1 eV/atom (paper: MAE 1.27), far above this setting error.
MAP_DFT = {"ecut": 400.0, "kdensity": 2.5}


@dataclass
class MapPoints:
    """The scored crystals of a map, in slot order (arrays line up with the records)."""

    records: list[Record]
    values: np.ndarray
    embedding: np.ndarray
    slots: np.ndarray

    @classmethod
    def from_study(cls, study: optuna.Study) -> MapPoints:
        return cls.from_studies([study])

    @classmethod
    def from_studies(cls, studies: list[optuna.Study]) -> MapPoints:
        """The scored points of one map, or of the shards of one map (joined in slot order)."""
        complete = [t for s in studies for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        trials = sorted(complete, key=lambda t: t.user_attrs["slot"])
        values = np.array([t.value for t in trials], dtype=float)
        dim = len(trials[0].user_attrs["embedding"]) if trials else 0
        embedding = np.array([t.user_attrs["embedding"] for t in trials], dtype=float).reshape(
            len(trials), dim
        )
        slots = np.array([t.user_attrs["slot"] for t in trials], dtype=int)
        return cls([Record.from_trial(t) for t in trials], values, embedding, slots)

    def structure(self, i: int) -> Structure:
        return self.records[i].structure

    def label(self, i: int) -> str:
        r = self.records[i]
        formula = Composition(r.cell_formula).formula.replace(" ", "")  # Zr4C4, not C4Zr4
        return f"{formula} {r.spacegroup} ({r.spacegroup_number}), {self.values[i]:.2f} eV/atom"


@dataclass(frozen=True)
class MapSummary:
    points: int
    best_label: str
    png: Path
    csv: Path
    umap_seconds: float


def groups_of(spec: MapSpec, slots: np.ndarray) -> list[str] | None:
    """What the second panel colours by: stoichiometry (grid) or composition (pool); None otherwise."""
    if spec.kind == "grid":
        return [spec.label(spec.point_of(int(s))) for s in slots]
    if spec.kind == "pool":
        return ["-".join(dict.fromkeys(spec.point(spec.point_of(int(s)))[0])) for s in slots]
    return None


def title_of(spec: MapSpec, n: int, relaxed: bool) -> str:
    what = {
        "formula": f"random {spec.label(0)} crystals",
        "grid": f"{'-'.join(spec.compositions[0])} over {len(spec.stoichiometries)} stoichiometries",
        "pool": f"{len(spec.compositions)} compositions x {len(spec.stoichiometries)} stoichiometries",
        "space": "random crystals of the space",
    }[spec.kind]
    return f"{n} {what}, {'relaxed' if relaxed else 'single point'}"


def write_map(
    spec: MapSpec,
    study: optuna.Study | MapPoints,
    out_dir: Path,
    seed: int = 0,
    relaxed: bool = False,
    cif_limit: int = CIF_LIMIT,
) -> tuple[MapSummary, MapPoints, np.ndarray]:
    """UMAP of all stored points -> ``landscape.csv``, ``cifs/``, ``landscape.png``."""
    points = study if isinstance(study, MapPoints) else MapPoints.from_study(study)
    t0 = time.perf_counter()
    xy = umap_2d(points.embedding, seed=seed)
    umap_seconds = time.perf_counter() - t0
    order = np.argsort(points.values)
    with_cif = set(order[:cif_limit].tolist())
    cif_dir = out_dir / "cifs"
    cif_dir.mkdir(parents=True, exist_ok=True)
    groups = groups_of(spec, points.slots)
    csv_path = out_dir / "landscape.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "slot",
                "trial",
                "x",
                "y",
                "E_c_eV_per_atom",
                "cell_formula",
                "spacegroup",
                "spacegroup_number",
                "group",
                "cif",
            ]
        )
        for i, r in enumerate(points.records):
            cif = ""
            if i in with_cif:
                cif = f"cifs/{points.slots[i]:07d}_{r.cell_formula}.cif"
                CifWriter(points.structure(i)).write_file(out_dir / cif)
            writer.writerow(
                [
                    points.slots[i],
                    r.number,
                    f"{xy[i, 0]:.4f}",
                    f"{xy[i, 1]:.4f}",
                    f"{points.values[i]:.4f}",
                    r.cell_formula,
                    r.spacegroup,
                    r.spacegroup_number,
                    groups[i] if groups else spec.label(0),
                    cif,
                ]
            )
    best = int(order[0])
    png = out_dir / "landscape.png"
    plot_landscape(
        xy, points.values, png, points.label(best), title_of(spec, len(points.values), relaxed), groups=groups
    )
    return MapSummary(len(points.values), points.label(best), png, csv_path, umap_seconds), points, xy


def place_run(points: MapPoints, run_study: optuna.Study, potential, out_dir: Path, seed: int = 0) -> Path:
    """Embed the search's crystals with the map's points (one UMAP), draw them coloured by step."""
    from upotbo.landscape.descriptor import crystal_embedding
    from upotbo.storage import completed_records

    records = completed_records(run_study)
    if not records:
        raise InputError("the run has no scored crystals to place on the map yet")
    run_vectors = crystal_embedding(potential, [r.structure for r in records])
    keep = np.all(np.isfinite(run_vectors), axis=1)
    records = [r for r, k in zip(records, keep, strict=True) if k]
    xy = umap_2d(np.vstack([points.embedding, run_vectors[keep]]), seed=seed)
    n = len(points.values)
    steps = np.array([r.number for r in records])
    values = np.array([r.value for r in records])
    best = records[int(np.argmin(values))]
    label = f"{best.cell_formula} {best.spacegroup}, {best.value:.2f} eV/atom (step {best.number})"
    png = out_dir / "run_on_landscape.png"
    plot_run_overlay(
        xy[:n],
        points.values,
        xy[n:],
        steps,
        values,
        png,
        label,
        f"search run ({len(records)} crystals) on the landscape of its space",
    )
    with open(out_dir / "run_points.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "x", "y", "E_c_eV_per_atom", "cell_formula", "spacegroup"])
        for r, (x, y) in zip(records, xy[n:], strict=True):
            writer.writerow(
                [r.number, f"{x:.4f}", f"{y:.4f}", f"{r.value:.4f}", r.cell_formula, r.spacegroup]
            )
    return png


@dataclass(frozen=True)
class DFTComparison:
    n: int
    mae: float
    mae_low: float
    mae_high: float
    parity_png: Path
    csv: Path


def dft_overlay(points: MapPoints, xy: np.ndarray, n: int, seed: int, out_dir: Path) -> DFTComparison:
    """GPAW single points for a seeded subsample: parity plot, MAE overall and per energy half."""
    compute = _dft_single_points(out_dir / "dft_logs")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(points.values), size=min(n, len(points.values)), replace=False))
    dft = np.asarray(compute([points.structure(int(i)) for i in pick]), dtype=float)
    upot = points.values[pick]
    ok = np.isfinite(dft)
    if ok.sum() < 2:
        raise InputError("DFT gave fewer than 2 energies for the subsample; nothing to compare")
    pick, dft, upot = pick[ok], dft[ok], upot[ok]
    err = np.abs(upot - dft)
    low = upot <= np.median(upot)
    comp = DFTComparison(
        int(ok.sum()),
        float(err.mean()),
        float(err[low].mean()),
        float(err[~low].mean()),
        out_dir / "parity_dft.png",
        out_dir / "dft.csv",
    )
    plot_parity(
        upot,
        dft,
        comp.parity_png,
        f"{comp.n} crystals: MAE {comp.mae:.2f} eV/atom (low-E half {comp.mae_low:.2f} eV/atom, "
        f"high-E half {comp.mae_high:.2f} eV/atom)",
    )
    plot_landscape(
        xy[pick],
        dft,
        out_dir / "landscape_dft.png",
        points.label(int(pick[np.argmin(dft)])),
        f"the same map, {comp.n} crystals coloured by DFT E_c",
    )
    with open(comp.csv, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["slot", "x", "y", "upot_E_c_eV_per_atom", "dft_E_c_eV_per_atom"])
        for i, d, u in zip(pick, dft, upot, strict=True):
            writer.writerow(
                [int(points.slots[i]), f"{xy[i, 0]:.4f}", f"{xy[i, 1]:.4f}", f"{u:.4f}", f"{d:.4f}"]
            )
    return comp


def _dft_single_points(log_dir: Path):
    """GPAW E_c per structure through ``upotbo.dft`` (NaN where GPAW fails on a crystal)."""
    from upotbo.dft import DFTSettings, dft_cohesive, require_gpaw
    from upotbo.errors import CandidateFailed

    require_gpaw()  # one line with the install commands when GPAW is missing
    settings = DFTSettings(**MAP_DFT)
    log_dir.mkdir(parents=True, exist_ok=True)

    def compute(structures: list[Structure]) -> list[float]:
        values = []
        for i, structure in enumerate(structures):
            try:
                values.append(dft_cohesive(structure, settings, log_dir, name=f"map_{i:04d}").value)
            except CandidateFailed:
                values.append(float("nan"))
        return values

    return compute
