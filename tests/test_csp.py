"""Crystal structure prediction: ``--formula``, seed crystals, distinct structures, on the real potential."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
from conftest import rocksalt, run_main
from pymatgen.core import Lattice, Structure

from upotbo.crystal.prototypes import first_distinct, prototype_name, prototypes, spacegroup
from upotbo.errors import InputError
from upotbo.properties import get_property
from upotbo.report.polymorphs import polymorphs
from upotbo.search import Search, SearchConfig
from upotbo.space import FormulaSpace, SearchSpace, load_seeds
from upotbo.storage import RunDirectory, completed_records, load_existing, local_url

QUICK = ("--n-init", "16", "--batch-size", "8", "--no-progress")


def _zrb2() -> Structure:
    lattice = Lattice.hexagonal(3.17, 3.53)
    return Structure.from_spacegroup(191, lattice, ["Zr", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]])


def _zrb2_two_units() -> Structure:
    """Two ZrB2 units that no smaller cell repeats (one Zr 0.56 Å off its plane)."""
    return Structure(
        Lattice.hexagonal(3.17, 7.06),
        ["Zr", "Zr", "B", "B", "B", "B"],
        [[0, 0, 0], [0, 0, 0.58], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.25], [1 / 3, 2 / 3, 0.75],
         [2 / 3, 1 / 3, 0.75]],
    )


def _top(out) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "top.csv").open()))


@pytest.mark.slow  # 55 s for the two; .ci/run runs the slow checks
@pytest.mark.parametrize(
    ("formula", "steps", "prototype", "group"),
    [("NaCl", 64, "rock salt (B1)", 225), ("ZrB2", 48, "AlB2 (C32)", 191)],
)
def test_formula_search_finds_the_ground_state_from_scratch(
    chgnet, tmp_path, formula, steps, prototype, group
):
    """Rock-salt NaCl and AlB2-type ZrB2 come out on top of a small structure search with no seed, and
    the top table lists distinct structures (never the same crystal twice), each named and placed
    above the lowest."""
    space = FormulaSpace.create(formula)
    config = SearchConfig(n_init=32, batch_size=16, relax_steps=40, seed=0)
    search = Search(space, chgnet, get_property("cohesive_energy"), tmp_path / "run", config)
    search.run(steps)
    from upotbo.report import write_report

    rows = write_report(tmp_path / "run", top=5)
    best = rows[0].record
    assert (best.properties["prototype"], best.spacegroup_number) == (prototype, group)
    assert best.properties["e_above_best"] == 0.0
    above = [r.record.properties["e_above_best"] for r in rows]
    assert above == sorted(above)
    structures = [r.record.structure for r in rows]
    assert len(first_distinct(structures, lambda s: s, len(structures))) == len(structures)
    assert {r.record.formula for r in rows} == {space.formula}
    assert (tmp_path / "run" / "polymorphs.png").stat().st_size > 10_000


def test_seed_crystals_are_the_first_trials_and_not_scored_again_on_resume(capsys, tmp_path):
    """The seeds are the first crystals asked (in a rolling batch they are stored as they finish, in
    the first batch), each carrying its file name and its own parameters (Z, space group), and a
    resumed run does not score them again."""
    seeds = [tmp_path / "zrb2.cif", tmp_path / "zrb2_sc.cif"]
    _zrb2().to(filename=str(seeds[0]))
    _zrb2_two_units().to(filename=str(seeds[1]))
    out = tmp_path / "run"
    args = ("search", "--formula", "ZrB2", "--out", str(out), "--seed-structures", *map(str, seeds), *QUICK)
    code, stdout, err = run_main(capsys, *args, "--steps", "8")
    assert code == 0, err
    trials = sorted(load_existing(local_url(out)).trials, key=lambda t: t.number)
    by_seed = {t.user_attrs["seed"]: t for t in trials[:8] if t.user_attrs.get("seed")}
    assert set(by_seed) == set(map(str, seeds))
    first, second = by_seed[str(seeds[0])], by_seed[str(seeds[1])]
    assert (first.params["z"], second.params["z"]) == (1, 2)
    assert first.state == optuna.trial.TrialState.COMPLETE and first.value < -7.2  # AlB2 ZrB2: -7.29
    assert first.user_attrs["formula"] == "ZrB2" and "structure" in first.user_attrs
    code, _, err = run_main(capsys, *args, "--steps", "16", "--resume")
    assert code == 0, err
    stored = load_existing(local_url(out)).trials
    seeded = [t.user_attrs["seed"] for t in stored if t.user_attrs.get("seed")]
    assert sorted(seeded) == sorted(map(str, seeds))


def test_a_composition_search_scores_its_seed_first(capsys, tmp_path):
    """Seeding works for the full search too: rock-salt ZrC is in the first batch of a Zr-C-N search, with its
    composition as the trial's parameters, and it leads the table."""
    seed = tmp_path / "zrc.cif"
    rocksalt("Zr", "C", 4.7).to(filename=str(seed))
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "search", "--pool", "Zr,C,N", "--nchem", "4", "--out", str(out),
                            "--steps", "8", "--seed-structures", str(seed), *QUICK)
    assert code == 0, err
    first = next(t for t in load_existing(local_url(out)).trials if t.user_attrs.get("seed"))
    assert first.number < 8 and first.user_attrs["seed"] == str(seed) and first.user_attrs["formula"] == "ZrC"
    assert first.params["natoms"] == 8 and first.params["share0"] == pytest.approx(0.5)
    assert first.value == pytest.approx(-7.88, abs=0.03)
    assert _top(out)[0]["formula"] == "ZrC"


def test_seed_parameters_draw_the_seed_back():
    """A seed's parameters, drawn by the space, give the seed's own cell content and space group (a
    composition search: its elements and counts; a structure search: its Z)."""
    cases = [
        (SearchSpace.create("Zr,B,C,N", ncomp=2, nchem=4), _zrb2(), ("B", "Zr"), (2, 1), 191),
        (SearchSpace.create("Zr,C", ncomp=3, nchem=4), rocksalt("Zr", "C", 4.7), ("C", "Zr"), (4, 4), 225),
        (FormulaSpace.create("ZrC"), rocksalt("Zr", "C", 4.7), ("C", "Zr"), (4, 4), 225),
    ]
    for space, structure, species, counts, group in cases:
        study = optuna.create_study()
        seed = _seed(space, structure)
        study.enqueue_trial(seed.params)
        candidate = space.suggest(study.ask())
        assert (candidate.species, candidate.counts, candidate.space_group) == (species, counts, group)


def _seed(space, structure):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/seed.cif"
        structure.to(filename=path)
        (seed,) = load_seeds(space, [path])
    return seed


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--formula", "Zr(B2"), "--formula 'Zr(B2' is not a chemical formula"),
        (("--formula", "Xy2O"), "Xy is not a chemical element"),
        (("--formula", "Fe0.5O"), "fractional amounts"),
        (("--formula", "OgB2"), "Og not covered by"),
        (("--formula", "ZrB2", "--max-z", "8", "--max-atoms", "20"), "--max-z 8 does not fit"),
        (("--formula", "SrTiO3", "--max-atoms", "4"), "below the 5 atoms of one SrTiO3 formula unit"),
        (("--formula", "ZrB2", "--pool", "Zr,B"), "--formula fixes the composition: drop --pool"),
        (("--max-z", "2",), "--max-z counts formula units of --formula"),
        (("--formula", "ZrB2", "--seed-structures", "SEEDS/garbage.cif"), "no crystal could be read"),
        (("--formula", "ZrB2", "--seed-structures", "SEEDS/missing.cif"), "no such file"),
        (("--formula", "ZrB2", "--seed-structures", "SEEDS/zrc.cif"), "it is ZrC, not ZrB2"),
        (("--formula", "ZrB2", "--max-z", "1", "--seed-structures", "SEEDS/zrb2x2.cif"), "above --max-z 1"),
        (("--pool", "Ti,C", "--seed-structures", "SEEDS/zrc.cif"), "Zr not in the pool"),
        (("--formula", "ZrB2", "--seed-structures", "SEEDS/zrb2.cif", "SEEDS/zrb2.cif"), "given twice"),
    ],
)
def test_bad_structure_search_input_is_one_line_and_leaves_no_trace(capsys, tmp_path, args, needle):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "garbage.cif").write_text("data_nothing\n_cell_length_a oops\n")
    rocksalt("Zr", "C", 4.7).to(filename=str(seeds / "zrc.cif"))
    _zrb2().to(filename=str(seeds / "zrb2.cif"))
    _zrb2_two_units().to(filename=str(seeds / "zrb2x2.cif"))
    out = tmp_path / "run"
    given = [a.replace("SEEDS", str(seeds)) for a in args]
    code, _, err = run_main(capsys, "search", *given, "--out", str(out), "--steps", "4", "--no-progress")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not out.exists()


def test_a_primitive_seed_fits_where_its_conventional_cell_does_not(tmp_path):
    """A conventional CIF above --max-atoms is seeded as its primitive cell."""
    space = FormulaSpace.create("ZrC", max_z=2, max_atoms=4)
    seed = _seed(space, rocksalt("Zr", "C", 4.7))
    assert len(seed.structure) == 2 and seed.params["z"] == 1
    assert _seed(FormulaSpace.create("ZrB2", max_z=1), _zrb2().make_supercell([2, 1, 1])).params["z"] == 1
    with pytest.raises(InputError, match="above --max-z 1"):
        _seed(FormulaSpace.create("ZrB2", max_z=1), _zrb2_two_units())


def test_distinct_structures_merge_cells_of_one_crystal():
    """Primitive and conventional rock salt are one crystal; zincblende is another; the scan stops
    at the (n+1)-th distinct crystal."""
    conventional = rocksalt("Zr", "C", 4.7)
    primitive = conventional.get_primitive_structure()
    zincblende = Structure.from_spacegroup(216, Lattice.cubic(5.0), ["Zr", "C"], [[0, 0, 0], [0.25] * 3])
    groups = first_distinct([primitive, conventional, zincblende, conventional], lambda s: s, 5)
    assert [len(g) for g in groups] == [3, 1]
    assert [len(g) for g in first_distinct([primitive, zincblende, conventional], lambda s: s, 1)] == [1]


def test_prototypes_have_their_space_groups():
    """Every named prototype is built in its own space group (a wrong Wyckoff table would name
    crystals wrongly), and a substituted, rescaled copy is recognised."""
    expected = {"rock salt (B1)": 225, "spinel (H1_1)": 227, "corundum (D5_1)": 167, "cuprite (C3)": 224,
                "pyrite (C2)": 205, "half-Heusler (C1_b)": 216, "alpha-NaFeO2 (LiCoO2)": 166,
                "TiAl3 (D0_22)": 139, "MoSi2 (C11_b)": 139, "CaB6 (D2_1)": 221, "Cu3Au (L1_2)": 221}
    found = {p.name: spacegroup(p.structure, 0.01)[1] for p in prototypes()}
    assert {name: found[name] for name in expected} == expected
    spinel = next(p.structure for p in prototypes() if p.name == "spinel (H1_1)").copy()
    spinel.replace_species({"A": "Mg", "B": "Al", "C": "O"})
    spinel.scale_lattice(spinel.volume * 1.1)
    assert prototype_name(spinel) == "spinel (H1_1)"


def test_polymorphs_rank_by_the_objective_and_skip_infeasible(tmp_path, capsys):
    """The polymorph view of a stored structure search: best first, every row distinct, settings
    carry the formula and Z range (the resume identity)."""
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "search", "--formula", "ZrC", "--out", str(out), "--steps", "16", *QUICK)
    assert code == 0, err
    settings = json.loads((out / "settings.json").read_text())
    assert (settings["formula"], settings["max_z"], settings["max_atoms"]) == ("ZrC", 4, 20)
    run = RunDirectory.open(out)
    found = polymorphs(completed_records(run.study()), run.objective, 10)
    values = [p.best.value for p in found]
    assert values == sorted(values) and len(found) == len(_top(out))
    code, _, err = run_main(capsys, "search", "--formula", "ZrC", "--max-z", "2", "--out", str(out),
                            "--steps", "20", "--resume", *QUICK)
    assert code == 2 and "max_z" in err
    code, _, err = run_main(capsys, "landscape", "--run", str(out))  # a map needs a composition search
    assert code == 2 and "structure search of ZrC" in err and len(err.strip().splitlines()) == 1
