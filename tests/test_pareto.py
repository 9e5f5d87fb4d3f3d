"""Two or three objectives at once, on the real potential: the Pareto front as the answer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import run_main
from pymatgen.core import Lattice, Structure

from upotbo.properties import get_property
from upotbo.report.pareto import hypervolume_history
from upotbo.search.evaluate import Evaluator
from upotbo.storage import RunDirectory, completed_records, load_existing, local_url
from upotbo.validate.inputs import from_run

ARGS = ("--pool", "Ti,C,N", "--ncomp", "2", "--nchem", "2", "--property", "cohesive_energy,density:min",
        "--n-init", "16", "--batch-size", "8", "--relax-steps", "5", "--seed", "3", "--no-progress")


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def test_pareto_search_from_the_cli_front_plots_and_resume(capsys, tmp_path):
    """Strong cohesion vs low density: the top table is the front (no row beats another on both, every
    scored crystal is matched or beaten by a row), with pareto.png and the hypervolume convergence;
    resuming keeps the objectives, and changing them is refused."""
    out = tmp_path / "run"
    code, stdout, err = run_main(capsys, "search", "--out", str(out), "--steps", "24", *ARGS)
    assert code == 0, err
    assert "Pareto front of E_c (eV/atom), rho (g/cm^3):" in stdout
    assert (out / "pareto.png").stat().st_size > 10_000 and (out / "convergence.png").exists()
    settings = json.loads((out / "settings.json").read_text())  # the first objective, then the others
    assert (settings["property"], settings["direction"]) == ("cohesive_energy", "minimize")
    assert [(o["name"], o["direction"]) for o in settings["objectives"]] == [("density", "minimize")]
    rows = list(csv.DictReader((out / "top.csv").open()))
    assert rows and "density" in rows[0]
    front = np.array([[float(r["value_eV_per_atom"]), float(r["density"])] for r in rows])
    for i, a in enumerate(front):
        assert not any(_dominates(b, a) for j, b in enumerate(front) if j != i)
    records = completed_records(load_existing(local_url(out)))
    run = RunDirectory.open(out)
    for r in records:
        point = np.array(r.values(run.objectives))
        if r.feasible and np.all(np.isfinite(point)):
            assert any(_dominates(f, point) or np.allclose(f, point, atol=1e-3) for f in front)
    crystals, _, _ = from_run(out, top=3)  # validate checks the front, in the table's order
    assert [c.value_found for c in crystals] == pytest.approx(list(front[:3, 0]), abs=1e-3)
    history = hypervolume_history(records, run.objectives)
    volumes = [v for _, v in history]
    assert volumes and volumes == sorted(volumes) and 0 < volumes[-1] <= 1
    code, stdout, err = run_main(capsys, "search", "--out", str(out), "--steps", "32", "--resume", *ARGS)
    assert code == 0, err
    assert len(completed_records(load_existing(local_url(out)))) > len(records)
    changed = [a if a != "cohesive_energy,density:min" else "cohesive_energy,density" for a in ARGS]
    code, _, err = run_main(capsys, "search", "--out", str(out), "--steps", "40", "--resume", *changed)
    assert code == 2 and "objectives" in err and len(err.strip().splitlines()) == 1


def test_moduli_are_taken_at_a_relaxed_minimum_not_where_the_search_left_the_crystal(chgnet):
    """Diamond stretched 4 % and not relaxed by the search (0 steps): the bulk modulus property first
    relaxes it fully, so B is diamond's (~427 GPa under CHGNet; 443 measured), not a stretched cell's."""
    stretched = Structure.from_spacegroup(227, Lattice.cubic(3.567 * 1.04), ["C"], [[0, 0, 0]])
    evaluator = Evaluator(chgnet, get_property("bulk_modulus"), relax_steps=0, perturb=False)
    (scored,) = evaluator.score([stretched])
    assert scored.error is None and scored.value == pytest.approx(443, rel=0.10)
    assert scored.relax_steps > 0 and scored.structure.lattice.a == pytest.approx(3.57, abs=0.03)


def test_validate_table_names_the_objective_a_run_found():
    """A run that optimised another property shows it, with its unit, before E_c in validate's table."""
    from upotbo.validate.table import markdown

    rows = [{"name": "01_C2", "objective_found": 21.3, "objective_header": "H_V as found (GPa)"}]
    header = markdown(rows).splitlines()[0]
    assert "H_V as found (GPa)" in header and header.index("H_V as found") < header.index("E_c UPot as found")
