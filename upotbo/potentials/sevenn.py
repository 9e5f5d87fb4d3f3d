"""SevenNet (the second bundled potential): its ``sevenn`` wheel ships the checkpoints, never downloaded.

Why a second potential: CHGNet's error against DFT (0.07-0.10 eV/atom) is larger than the gaps a
search ranks, and a committee of independently trained models shows where a ranking depends on the
model. SevenNet-0 and SevenNet-l3i5 were trained on MPtrj like CHGNet, so their energies carry the
same MP2020 corrections and share its energy reference.

The batched path builds one graph per structure with sevenn's own graph builder and runs a
torch_geometric batch through the model, as sevenn's ``inference`` script does; the model always
returns energy, forces and stress (forces come from autograd of the energy).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure

from upotbo.potentials.base import (
    Calculation,
    Potential,
    build_graphs,
    file_model_name,
    first_line,
    predict_in_batches,
    sanitize,
)
from upotbo.potentials.reference import MP2020Corrected

# Checkpoints inside the sevenn 0.13 wheel that predict MPtrj (PBE/PBE+U, MP2020-corrected) energies.
# Other names sevenn knows are downloaded on first use (not allowed here) or are multi-fidelity models.
SHIPPED = ("7net-0", "7net-0_22may2024", "7net-l3i5")
DEFAULT_MODEL = "7net-0"


class SevenNetPotential(Potential):
    """SevenNet behind the ``Potential`` interface. ``model`` is a shipped name (``SHIPPED``) or a
    checkpoint file; loaded on first use, like CHGNet, so pickled copies carry the name only."""

    energy_reference = MP2020Corrected()
    worker_modules = ("torch", "sevenn.util", "sevenn.train.dataload", "torch_geometric.data", __name__)

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32) -> None:
        name = model.lower()
        if not os.path.isfile(model) and name not in SHIPPED:
            raise ValueError(
                f"not a SevenNet checkpoint file nor a model shipped in the sevenn wheel "
                f"({', '.join(SHIPPED)})"
            )
        self._source = model if os.path.isfile(model) else name
        self._model, self._cutoff = None, 0.0
        self.batch_size = batch_size
        self._loaded = self._checkpoint()  # a bad file fails here, not in a potential process
        config = self._loaded.config
        import sevenn._keys as KEY

        if config.get(KEY.USE_MODALITY):
            raise ValueError("multi-fidelity SevenNet models need a fidelity, which upotbo does not choose")
        from pymatgen.core.periodic_table import Element

        self.elements = frozenset(Element.from_Z(int(z)).symbol for z in config[KEY.TYPE_MAP])
        self.name = f"SevenNet-{name}" if name in SHIPPED else file_model_name("SevenNet", self._source)

    def _checkpoint(self):  # noqa: ANN202 - sevenn.checkpoint.SevenNetCheckpoint
        from sevenn.util import load_checkpoint, pretrained_name_to_path

        path = self._source if os.path.isfile(self._source) else pretrained_name_to_path(self._source)
        checkpoint = load_checkpoint(path)
        try:
            checkpoint.config  # noqa: B018 - reading it loads and checks the file
        except Exception as exc:
            raise ValueError(f"{path} is not a SevenNet checkpoint ({type(exc).__name__})") from exc
        return checkpoint

    @property
    def model(self):  # noqa: ANN201 - sevenn's AtomGraphSequential, imported only when loaded
        import sevenn._keys as KEY

        if self._model is None:
            checkpoint = self._loaded or self._checkpoint()
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # "no tensor-product accelerator": none exists on CPU
                model = checkpoint.build_model()
            model.set_is_batch_data(True)
            model.eval()
            self._cutoff = float(checkpoint.config[KEY.CUTOFF])
            self._model, self._loaded = model, None  # the built model holds the weights now
        return self._model

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None, "_loaded": None}  # processes read their own copy

    def calculate(
        self, structures: Sequence[Structure], forces: bool = False, stress: bool = False
    ) -> list[Calculation]:
        from pymatgen.io.ase import AseAtomsAdaptor
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        model = self.model

        def build(structure: Structure) -> object:
            if not {site.specie.symbol for site in structure} <= self.elements:
                raise ValueError(f"{self.name} does not cover {structure.composition.reduced_formula}")
            atoms = AseAtomsAdaptor.get_atoms(structure)
            return AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self._cutoff))

        results, graphs, index = build_graphs(structures, build, "SevenNet")
        preds = predict_in_batches(graphs, self.batch_size, lambda chunk: self._predict(model, chunk))
        for i, pred in zip(index, preds, strict=True):
            results[i] = _to_calculation(pred, len(structures[i]), forces, stress)
        return results  # type: ignore[return-value]

    @staticmethod
    def _predict(model, graphs: list) -> list[tuple[float, np.ndarray, np.ndarray]]:  # noqa: ANN001
        import sevenn._keys as KEY
        from torch_geometric.data import Batch

        out = model(Batch.from_data_list(graphs))
        energies = out[KEY.PRED_TOTAL_ENERGY].detach().numpy().reshape(-1)
        forces = out[KEY.PRED_FORCE].detach().numpy()
        # sevenn's stress is the negative of ASE's, in Voigt order xx yy zz xy yz zx (its calculator)
        stresses = -out[KEY.PRED_STRESS].detach().numpy().reshape(len(graphs), 6)[:, [0, 1, 2, 4, 5, 3]]
        bounds = np.cumsum([0] + [int(g[KEY.NUM_ATOMS]) for g in graphs])
        return [
            (float(energies[k]), forces[bounds[k] : bounds[k + 1]], stresses[k]) for k in range(len(graphs))
        ]


def _to_calculation(
    pred: tuple[float, np.ndarray, np.ndarray] | Exception, natoms: int, forces: bool, stress: bool
) -> Calculation:
    if isinstance(pred, Exception):
        return Calculation(error=f"SevenNet failed: {first_line(pred)}")
    energy, f, s = pred
    calc = Calculation(energy=energy)
    if forces:
        calc.forces = np.asarray(f, dtype=float)
    if stress:
        calc.stress = np.asarray(s, dtype=float)
    return sanitize(calc, natoms)
