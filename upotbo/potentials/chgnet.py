"""CHGNet (the default potential): weights ship inside the ``chgnet`` wheel, never downloaded.

The batched path converts structures to graphs once per call (``chgnet_internals.crystal_graph``,
CHGNet's graphs built with numpy) and runs them through the model in batches:
``predict_graph(task="e")`` for energies only, the fast path; ``chgnet_internals.predict_forces`` when
forces (and stress) are needed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from functools import partial

import numpy as np
from ase import units
from pymatgen.core import Structure

from upotbo.potentials.base import (
    Calculation,
    Potential,
    build_graphs,
    file_model_name,
    first_line,
    predict_in_batches,
    sanitize,
    to_voigt,
)
from upotbo.potentials.chgnet_internals import crystal_graph, predict_forces
from upotbo.potentials.reference import MP2020Corrected

# CHGNet 0.3.0 was trained on MPtrj, which covers elements Z = 1..94.
_COVERED_Z = range(1, 95)
_MODEL_FILES = (".tar", ".pth.tar", ".pt", ".pth")  # a model given as a file, not a version name


class CHGNetPotential(Potential):
    """CHGNet behind the ``Potential`` interface. ``model`` is a version name ("0.3.0") or a local path.

    A version that ships in the wheel is loaded on first use (~3 s): a search whose potential runs in
    processes of their own never loads it in the main process, and a pickled copy sent to them carries
    the name, not the weights. A model file is loaded at once, so a bad path fails before any work.
    """

    energy_reference = MP2020Corrected()
    worker_modules = ("torch", "chgnet.model", __name__)

    def __init__(self, model: str = "0.3.0", batch_size: int = 32, threads: int | None = None) -> None:
        from pymatgen.core.periodic_table import Element

        if threads:
            import torch  # here, not at the top: a rolling search's main process never needs it

            torch.set_num_threads(threads)
        self._source, self._model = model, None
        if model.endswith(_MODEL_FILES):
            self._model = self._load()
        self.name = file_model_name("CHGNet", model) if self._model is not None else f"CHGNet-{model}"
        self.batch_size = batch_size
        self.elements = frozenset(Element.from_Z(z).symbol for z in _COVERED_Z)

    @property
    def model(self):  # noqa: ANN201 - chgnet.model.CHGNet, imported only when loaded
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):  # noqa: ANN202
        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()):
            if self._source.endswith(_MODEL_FILES):
                try:
                    model = CHGNet.from_file(self._source)
                except FileNotFoundError:
                    raise
                except Exception as exc:  # torch's unpickling errors, a state without "model", ...
                    raise ValueError(f"not a CHGNet model file: {first_line(exc)}") from None
            else:
                model = CHGNet.load(model_name=self._source, use_device="cpu")
        model.eval()
        # inference only: autograd then records no weight gradients (forces and stress 1.1-1.4x as
        # fast); fine-tuning turns them back on for the layers it trains
        model.requires_grad_(False)
        return model

    def calculate(
        self, structures: Sequence[Structure], forces: bool = False, stress: bool = False
    ) -> list[Calculation]:
        # CHGNet has no energy+stress task: stress comes with forces ("efs")
        task = "efs" if stress else "ef" if forces else "e"
        build = partial(crystal_graph, self.model.graph_converter)
        results, graphs, index = build_graphs(structures, build, "CHGNet")
        preds = predict_in_batches(graphs, self.batch_size, lambda chunk: self._predict(chunk, task))
        for i, pred in zip(index, preds, strict=True):
            results[i] = self._to_calculation(pred, len(structures[i]))
        return results  # type: ignore[return-value]

    def _predict(self, graphs: list, task: str) -> list[dict]:
        import torch

        if "f" in task:  # one backward pass for forces and stress (see chgnet_internals)
            return predict_forces(self.model, graphs, stress="s" in task)
        with torch.no_grad():
            preds = self.model.predict_graph(graphs, task=task, batch_size=len(graphs))
        return preds if isinstance(preds, list) else [preds]

    @staticmethod
    def _to_calculation(pred: dict | Exception, natoms: int) -> Calculation:
        if isinstance(pred, Exception):
            return Calculation(error=f"CHGNet failed: {first_line(pred)}")
        calc = Calculation(energy=float(pred["e"]) * natoms)
        if "f" in pred:
            calc.forces = np.asarray(pred["f"], dtype=float)
        if "s" in pred:
            calc.stress = to_voigt(np.asarray(pred["s"], dtype=float) * units.GPa)
        return sanitize(calc, natoms)
