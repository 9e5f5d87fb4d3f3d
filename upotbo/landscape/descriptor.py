"""The map's descriptor: the potential's own learned crystal embedding, averaged over atoms.

Why this one: the energy we colour by comes from CHGNet, and CHGNet's last-layer atom features are
what its energy readout sees, so crystals the potential treats alike sit together on the map
(paper Fig. 2 embeds the potential's view of the crystals in the same spirit). It needs no extra
dependency and covers every element the potential covers, so one 64-number vector serves fixed
formulas, stoichiometry grids and 42-element pools alike (pair-resolved histograms would need 903
pair channels for paper42).

Invariance, by construction: each atom's features are built from its neighbour graph (interatomic
distances within 5 Å and bond angles within 3 Å), which is unchanged by rotation, translation, atom
order and the choice of unit cell; the per-atom *mean* (CHGNet 0.3.0 sums, so we divide by the atom
count) is then also unchanged by a supercell. Rock salt and zincblende ZrC, with 6 vs 4 neighbours,
differ. ``tests/test_landscape_descriptor.py`` checks all of this numerically.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from pymatgen.core import Structure

from upotbo.errors import InputError
from upotbo.potentials.base import Potential, build_graphs
from upotbo.potentials.chgnet_internals import crystal_graph

EMBED_BATCH = 100  # graphs per model call; energy-only calls at this size run ~300 structures/s here


def crystal_embedding(potential: Potential, structures: Sequence[Structure]) -> np.ndarray:
    """(n, d) per-atom-mean embeddings; a row of NaN where the model cannot take a structure."""
    model = getattr(potential, "model", None)
    if model is None or not hasattr(model, "graph_converter"):
        raise InputError(
            f"the landscape descriptor is the crystal embedding of a CHGNet model; {potential.name} has "
            f"none: use --potential chgnet (or a CHGNet model file)"
        )
    dim = int(model.mlp.layers[0].in_features) if hasattr(model, "mlp") else 64
    out = np.full((len(structures), dim), np.nan)
    # a structure refused or without a graph (no neighbours in cutoff etc.) gets no embedding
    _, graphs, index = build_graphs(structures, partial(crystal_graph, model.graph_converter), "CHGNet")
    with torch.no_grad():
        for start in range(0, len(graphs), EMBED_BATCH):
            chunk = graphs[start : start + EMBED_BATCH]
            preds = model.predict_graph(chunk, task="e", return_crystal_feas=True, batch_size=len(chunk))
            preds = preds if isinstance(preds, list) else [preds]
            for i, pred in zip(index[start : start + EMBED_BATCH], preds, strict=True):
                fea = np.asarray(pred["crystal_fea"], dtype=float)
                out[i, : fea.size] = fea / (len(structures[i]) if model.mlp_first else 1.0)
    return out
