"""Fine-tuning CHGNet: the energy-scale conversion of labels on its own, the held-out split, and a real
fine-tuning run through the CLI. In the default suite the labels come from SevenNet (a real potential,
GPAW is installed only in CI's DFT step); tests/test_labels.py fine-tunes on GPAW labels (slow)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from tests.conftest import rocksalt, run_main, small_search
from upotbo.crystal.prototypes import among
from upotbo.errors import InputError
from upotbo.finetune import label_sample, replay_pool, split
from upotbo.labels import Label, LabelSet, PotentialLabeller, label_run
from upotbo.potentials import load_potential
from upotbo.potentials.base import to_tensor
from upotbo.properties import CohesiveEnergy, isolated_atom_energies, potential_energy
from upotbo.storage import RunDirectory, completed_records


def test_potential_energy_inverts_the_cohesive_energy(chgnet):
    """A label's E_c carried onto CHGNet's scale gives back CHGNet's own energy for CHGNet's own E_c,
    shifts by N * delta for an E_c shifted by delta, and puts back MP2020's anion correction (-0.344
    eV/atom for a 1:1 oxide, -0.180 for a 1:1 nitride, none for a carbide)."""
    prop, atoms = CohesiveEnergy(), isolated_atom_energies()
    for anion, correction in (("O", -0.344), ("N", -0.180), ("C", 0.0)):
        s = rocksalt("Zr", anion, 4.6)
        energy = chgnet.energies([s])[0]
        ec = prop.value(s, energy, chgnet)
        assert potential_energy(s.composition, ec, chgnet.energy_reference) == pytest.approx(energy, abs=1e-6)
        shifted = potential_energy(s.composition, ec - 0.1, chgnet.energy_reference)
        assert shifted - energy == pytest.approx(-0.1 * len(s), abs=1e-6)
        raw = ec * len(s) + sum(atoms[el.symbol] * n for el, n in s.composition.items())
        assert (energy - raw) / len(s) == pytest.approx(correction, abs=0.002)


def test_gpaw_stress_goes_in_as_vasp_kbar(chgnet, tmp_path):
    """chgnet's StructureData multiplies stress by -0.1 (VASP kbar -> GPa, tensile positive): a label's
    ASE stress of +0.01 eV/Å^3 (1.602 GPa tensile) must go in as -16.02 kbar."""
    cell = rocksalt("Zr", "C", 4.7)
    pick = plan_one(cell)
    stress = to_tensor([0.01, 0.0, 0.0, 0.0, 0.0, 0.0])
    sample = label_sample(Label(pick, -70.0, [[0, 0, 0]] * len(cell), stress, -7.9, 1.0), chgnet)
    assert sample.stress_kbar[0, 0] == pytest.approx(-16.0218, abs=1e-3)
    assert sample.stress_kbar[0, 0] * -0.1 == pytest.approx(1.60218, abs=1e-4)
    assert CohesiveEnergy().value(cell, sample.energy_per_atom * len(cell), chgnet) == pytest.approx(-7.9)


def plan_one(structure):
    from upotbo.labels import Pick

    return Pick("top01_test", "top", 0, structure, {})


def test_split_is_seeded_and_never_empty():
    labels = [Label(plan_one(rocksalt("Zr", "C", 4.7)), ec=-7.0, energy=-1.0) for _ in range(8)]
    train, held = split(labels, 0.25, seed=3)
    assert len(train) == 6 and len(held) == 2 and set(map(id, train)).isdisjoint(map(id, held))
    assert [id(x) for x in split(labels, 0.25, seed=3)[1]] == [id(x) for x in held]
    assert len(split(labels[:2], 0.1, 0)[1]) == 1 and split(labels, 0.0, 0)[1] == []


@pytest.fixture(scope="module")
def sevenn_labels(tmp_path_factory):
    """A small real Zr-C-N run and 6 of its crystals labelled by SevenNet-0 (energies, forces, stress)."""
    pytest.importorskip("sevenn")
    folder = tmp_path_factory.mktemp("ft")
    small_search(folder / "run", "Zr,C,N", "2", 40, 16)
    chgnet, sevennet = load_potential("chgnet"), load_potential("sevenn")
    labels = label_run(
        folder / "run", [chgnet], k=6, top=3, labeller=PotentialLabeller(sevennet), log=lambda m: None
    )
    assert len(labels) == 6 and all(x.ok for x in labels)
    return folder


def test_finetune_moves_chgnet_towards_the_labels(capsys, sevenn_labels, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # chgnet's trainer writes checkpoints to the working folder unless told
    out = sevenn_labels / "model"
    code, stdout, err = run_main(
        capsys, "finetune", str(sevenn_labels / "run" / "labels"), "--out", str(out), "--epochs", "4",
        "--replay", "10", "--holdout", "0.34", "--lr", "0.003",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((out / "finetune.json").read_text())
    mae = report["mae"]
    # it learned the labels it saw (with a stress term of 0.1, 4 epochs on 4 labels moved the
    # energies the other way: 0.138 -> 0.139 eV/atom; by default, energies and forces: -> 0.124)
    assert mae["train after"] < mae["train before"]
    assert report["settings"]["stress_weight"] == 0  # the default
    assert mae["replay drift"] < 0.1  # and did not forget the rest (eV/atom)
    assert len([r for r in report["rows"] if r["split"] == "held out"]) == 2
    assert "E_c fine-tuned (eV/atom)" in stdout and "use: --potential chgnet:" in stdout
    tuned = load_potential(f"chgnet:{out / 'chgnet_finetuned.pth.tar'}")
    assert math.isfinite(tuned.energies([rocksalt("Zr", "C", 4.7)])[0])
    # a model file is named by its contents (caches keyed by the name never mix two models): a moved
    # copy keeps the name
    (sevenn_labels / "elsewhere").mkdir()
    moved = shutil.copy(out / "chgnet_finetuned.pth.tar", sevenn_labels / "elsewhere")
    assert tuned.name.startswith("CHGNet-chgnet_finetuned.pth.tar@")
    assert load_potential(f"chgnet:{moved}").name == tuned.name
    code, _, err = run_main(capsys, "finetune", str(sevenn_labels / "run" / "labels"), "--out", str(out))
    assert code == 2 and "already holds a fine-tuned model" in err
    assert list(tmp_path.iterdir()) == []  # nothing left outside --out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--holdout", "1"), "leaves nothing to train on"),
        (("--epochs", "0"), "--epochs"),
        (("--stress-weight", "-1"), "--stress-weight -1 must be >= 0"),
        (("--force-weight", "nan"), "--force-weight"),
        (("--layers", "most"), "invalid choice: 'most'"),
    ],
)
def test_finetune_bad_settings(capsys, tmp_path, args, words):
    code, _, err = run_main(capsys, "finetune", str(tmp_path), "--out", str(tmp_path / "m"), *args)
    assert code == 2 and words in err and not (tmp_path / "m").exists()


def test_layers_choose_what_trains(sevenn_labels, tmp_path):
    """``layers="last"`` leaves the embeddings and early convolutions as pretrained and trains the last
    atom convolution; ``"all"`` trains the embeddings too; a name it does not know is refused."""
    import torch

    from upotbo.finetune import FineTuneSettings, finetune

    labels = [x for x in LabelSet(sevenn_labels / "run" / "labels").labels() if x.ok]
    base = load_potential("chgnet").model.state_dict()
    changed = {}
    for layers in ("last", "all"):
        settings = FineTuneSettings(epochs=2, learning_rate=0.003, holdout=0.0, layers=layers)
        result = finetune(labels, [], tmp_path / layers, settings, log=lambda m: None)
        state = torch.load(result.model, map_location="cpu", weights_only=False)["model"]["state_dict"]
        trained = (k for k, v in state.items() if v.is_floating_point() and not torch.equal(v, base[k]))
        changed[layers] = set(trained)
    for layers in ("last", "all"):
        assert any(k.startswith("atom_conv_layers.3.") for k in changed[layers])
        assert any(k.startswith("mlp.") for k in changed[layers])
    assert not any(k.startswith(("atom_embedding.", "atom_conv_layers.0.")) for k in changed["last"])
    assert any(k.startswith("atom_embedding.") for k in changed["all"])
    assert any(k.startswith("atom_conv_layers.0.") for k in changed["all"])
    with pytest.raises(ValueError, match="layers 'most'"):
        finetune(labels, [], tmp_path / "most", FineTuneSettings(layers="most"), log=lambda m: None)


def test_finetune_bad_label_folders(capsys, tmp_path):
    code, _, err = run_main(capsys, "finetune", str(tmp_path / "none"), "--out", str(tmp_path / "m"))
    assert code == 2 and "no labels.db" in err
    LabelSet(tmp_path / "empty").start([], {})
    code, _, err = run_main(capsys, "finetune", str(tmp_path / "empty"), "--out", str(tmp_path / "m"))
    assert code == 2 and "no finished labels" in err
    (tmp_path / "labels.db").write_text("garbage")
    code, _, err = run_main(capsys, "finetune", str(tmp_path), "--out", str(tmp_path / "m"))
    assert code == 2 and "not a readable ASE database" in err and not (tmp_path / "m").exists()


def test_replay_holds_no_label_and_spans_the_other_chemical_systems(sevenn_labels):
    """The replay anchor comes from the chemical systems no label covers, one system after another,
    then (too few there) from the labels' systems but never a copy of a label: a replayed twin would
    teach the original model's value of a labelled crystal back."""
    run = sevenn_labels / "run"
    labels = LabelSet(run / "labels").labels()
    covered = {x.pick.structure.composition.chemical_system for x in labels}
    pool = replay_pool(run, labels, 100, seed=0)  # more than the run holds: everything that may go in
    systems = [s.composition.chemical_system for s in pool]
    outside = [c for c in systems if c not in covered]
    assert outside and systems[: len(outside)] == outside  # outside first
    first = systems[: len(set(outside))]
    assert len(set(first)) == len(first)  # one crystal of each system before a second of any
    assert any(c in covered for c in systems)  # filled up from inside
    cells = [x.pick.structure for x in labels]
    assert not any(among(s, cells) for s in pool)
    twins = [r.structure for r in completed_records(RunDirectory.open(run).study())
             if r.number not in {x.pick.trial for x in labels} and among(r.structure, cells)]  # fmt: skip
    assert twins  # the run does store copies of labelled crystals under other trials
    assert replay_pool(run, labels, 2, seed=0) == pool[:8]


def test_model_file_that_is_not_chgnet(tmp_path):
    bogus = tmp_path / "model.pth.tar"
    bogus.write_bytes(b"\x00not a torch file")
    with pytest.raises(InputError, match="not a CHGNet model file"):
        load_potential(f"chgnet:{bogus}")
