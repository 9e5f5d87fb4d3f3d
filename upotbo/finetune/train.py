"""Fine-tune CHGNet on GPAW labels with chgnet's own ``Trainer``, on CPU in minutes.

How, and why each choice:
- Labels go in on the model's energy scale: a GPAW label is carried over as its cohesive energy
  (``potential_energy``), since GPAW's total energies are relative to its own atomic references and
  the model learned VASP's (MP2020-corrected) scale. Forces and stress are scale-free.
- Early layers are frozen (embeddings, basis expansions, bond and angle layers, all but the last atom
  convolution), as chgnet's fine-tuning example does: a few labels can only move the last layers.
- A replay sample of the run's crystals outside the labels' chemical systems, labelled by the
  original model, is trained on with the labels, so the model does not forget the rest of the table
  (chgnet's maintainers warn that a model fine-tuned on a few structures does; issues #165, #205,
  #220 upstream).
- A held-out share of the labels is never trained on: the error before and after on those is the
  honest measure; the replay crystals' drift measures the forgetting.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import units
from pymatgen.core import Structure

from upotbo.crystal.prototypes import among
from upotbo.finetune.settings import FineTuneSettings
from upotbo.labels import Label
from upotbo.potentials import Potential
from upotbo.potentials.base import to_tensor
from upotbo.properties import CohesiveEnergy, cohesive_energies, potential_energy

MODEL_FILE = "chgnet_finetuned.pth.tar"
REPORT_FILE = "finetune.json"
KBAR_PER_EV_PER_A3 = 10.0 / units.GPa  # 1 eV/Å^3 = 1602.18 kbar


@dataclass(frozen=True)
class Sample:
    """One training structure on the model's scale: eV/atom, eV/Å, stress in VASP's kbar convention
    (positive = compressive), which chgnet's ``StructureData`` expects."""

    structure: Structure
    energy_per_atom: float
    forces: np.ndarray
    stress_kbar: np.ndarray


@dataclass
class FineTuneResult:
    model: Path
    rows: list[dict]  # per label: name, split, E_c GPAW / base / fine-tuned (eV/atom)
    mae: dict[str, float]  # eV/atom: held-out and train, before and after; replay drift
    counts: dict[str, int]  # structures: train labels, held-out labels, replay crystals
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def save(self) -> Path:
        """``finetune.json`` beside the model: written last, so its presence means the model is done."""
        path = self.model.parent / REPORT_FILE
        path.write_text(json.dumps(asdict(self), indent=1, default=str) + "\n")
        return path


def split(labels: Sequence[Label], holdout: float, seed: int) -> tuple[list[Label], list[Label]]:
    """(train, held out): a seeded ``holdout`` share of the good labels, at least one when asked for
    and two or more labels exist."""
    good = [label for label in labels if label.ok]
    order = list(range(len(good)))
    random.Random(seed).shuffle(order)
    n_out = round(holdout * len(good))
    if holdout > 0 and len(good) >= 2:
        n_out = max(1, min(n_out, len(good) - 1))
    out = set(order[:n_out])
    return [x for i, x in enumerate(good) if i not in out], [x for i, x in enumerate(good) if i in out]


def label_sample(label: Label, base: Potential) -> Sample:
    """A GPAW label on ``base``'s energy scale (through its E_c) with GPAW's forces and stress."""
    structure = label.pick.structure
    energy = potential_energy(structure.composition, label.ec, base.energy_reference)
    return Sample(structure, energy / len(structure), label.forces, -label.stress * KBAR_PER_EV_PER_A3)


def replay_pool(run_dir: str | Path, labels: Sequence[Label], n: int, seed: int) -> list[Structure]:
    """Candidates for ``n`` replay crystals, four times as many as wanted (``replay_samples`` drops the
    unbound ones), in a seeded order: the run's crystals whose chemical system no label covers, one
    system after another, so the anchor spans the rest of the table and never contradicts a label
    (inside the labels' systems the original model's values are what the labels correct, and a search
    stores copies of its best crystals under many trials: a replayed twin is a label with the old
    answer). A run with too few crystals outside (one chemical system) fills up with inside ones that
    are no copy of a label."""
    from upotbo.storage import RunDirectory, completed_records

    records = completed_records(RunDirectory.open(run_dir).study())
    labelled = {x.pick.trial for x in labels}
    others = [r.structure for r in records if r.number not in labelled]
    random.Random(seed).shuffle(others)
    covered = {x.pick.structure.composition.chemical_system for x in labels}
    systems: dict[str, list[Structure]] = {}
    inside = []
    for s in others:
        system = s.composition.chemical_system
        if system in covered:
            inside.append(s)
        else:
            systems.setdefault(system, []).append(s)
    pool = [s for batch in itertools.zip_longest(*systems.values()) for s in batch if s is not None]
    twins = [x.pick.structure for x in labels]
    fill = (s for s in inside if not among(s, twins))
    return pool[: 4 * n] + list(itertools.islice(fill, max(0, 4 * n - len(pool))))


def replay_samples(structures: Sequence[Structure], base: Potential) -> list[Sample]:
    """``structures`` labelled by the original model itself (what fine-tuning must not forget);
    unbound ones (E_c >= 0, cells no search keeps) are left out."""
    out = []
    for s, calc in zip(structures, base.calculate(structures, forces=True, stress=True), strict=True):
        if calc.ok and CohesiveEnergy().value(s, calc.energy, base) < 0:
            stress = -to_tensor(calc.stress) * KBAR_PER_EV_PER_A3
            out.append(Sample(s, calc.energy / len(s), calc.forces, stress))
    return out


def finetune(
    labels: Sequence[Label],
    replay: Sequence[Structure],
    out: Path,
    settings: FineTuneSettings | None = None,
    log: Callable[[str], None] = print,
) -> FineTuneResult:
    """Fine-tune on ``labels`` (a held-out share kept apart) plus the first ``settings.replay`` bound
    crystals of ``replay``; save ``out/MODEL_FILE``."""
    import torch
    from chgnet.data.dataset import StructureData, get_loader
    from chgnet.trainer import Trainer

    from upotbo.potentials.chgnet import CHGNetPotential

    settings = settings or FineTuneSettings()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    base = CHGNetPotential(model=settings.base)
    train, held = split(labels, settings.holdout, settings.seed)
    replayed = replay_samples(list(replay), base)[: settings.replay]
    samples = [label_sample(x, base) for x in train] + replayed
    seconds["prepare"] = time.perf_counter() - t0
    log(
        f"fine-tuning {base.name} on {len(train)} label(s) + {len(replayed)} replay crystal(s) "
        f"({len(held)} label(s) held out), {settings.epochs} epochs, lr {settings.learning_rate:g}"
    )
    t0 = time.perf_counter()
    model = base.model
    model.requires_grad_(True)  # a loaded potential is inference-only; train all but the frozen layers
    for layer in frozen_layers(model, settings.layers):
        for param in layer.parameters():
            param.requires_grad = False
    random.seed(settings.seed)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "w") as fh, contextlib.redirect_stdout(fh), torch.enable_grad():
        data = StructureData(
            structures=[s.structure for s in samples],
            energies=[s.energy_per_atom for s in samples],
            forces=[np.asarray(s.forces).tolist() for s in samples],
            stresses=[s.stress_kbar.tolist() for s in samples],
            shuffle=True,
        )
        loader = get_loader(data, batch_size=settings.batch_size, pin_memory=False)
        trainer = Trainer(
            model=model,
            targets="efs" if settings.stress_weight > 0 else "ef",
            energy_loss_ratio=1,
            force_loss_ratio=settings.force_weight,
            stress_loss_ratio=settings.stress_weight,
            optimizer="Adam",
            scheduler="CosLR",
            epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            use_device="cpu",
            torch_seed=settings.seed,
            data_seed=settings.seed,
            print_freq=10_000,
        )
        with tempfile.TemporaryDirectory() as checkpoints:  # chgnet writes checkpoints (to CWD without one)
            trainer.train(loader, loader, save_dir=checkpoints)
        trainer.save(str(out / MODEL_FILE))
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tuned = CHGNetPotential(model=str(out / MODEL_FILE))
    original = CHGNetPotential(model=settings.base)
    rows = []
    for split_name, group in (("train", train), ("held out", held)):
        cells = [x.pick.structure for x in group]
        before, after = cohesive_energies(original, cells), cohesive_energies(tuned, cells)
        for x, b, a in zip(group, before, after, strict=True):
            rows.append({"name": x.pick.name, "split": split_name, "gpaw": x.ec, "base": b, "tuned": a})
    replay_cells = [s.structure for s in replayed]
    before = np.array(cohesive_energies(original, replay_cells))
    drift = _mean_abs(before - cohesive_energies(tuned, replay_cells))
    mae = {"replay drift": drift}
    for split_name in ("held out", "train"):
        mine = [r for r in rows if r["split"] == split_name]
        if mine:
            mae[f"{split_name} before"] = _mean_abs([r["base"] - r["gpaw"] for r in mine])
            mae[f"{split_name} after"] = _mean_abs([r["tuned"] - r["gpaw"] for r in mine])
    seconds["evaluate"] = time.perf_counter() - t0
    counts = {"train": len(train), "held out": len(held), "replay": len(replayed)}
    return FineTuneResult(out / MODEL_FILE, rows, mae, counts, seconds, asdict(settings))


def frozen_layers(model, layers: str) -> list:  # noqa: ANN001 - chgnet.model.CHGNet
    """CHGNet's modules kept as pretrained: ``"last"`` trains the last atom convolution and the
    readout (chgnet's fine-tuning example); ``"convolutions"`` every message-passing layer too;
    ``"all"`` trains everything."""
    embeddings = [
        model.atom_embedding,
        model.bond_embedding,
        model.angle_embedding,
        model.bond_basis_expansion,
        model.angle_basis_expansion,
    ]
    frozen = {
        "last": [*embeddings, model.atom_conv_layers[:-1], model.bond_conv_layers, model.angle_layers],
        "convolutions": embeddings,
        "all": [],
    }
    return frozen[layers]  # one of settings.LAYERS, checked when the recipe was made


def _mean_abs(values) -> float:  # noqa: ANN001
    finite = [abs(v) for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
