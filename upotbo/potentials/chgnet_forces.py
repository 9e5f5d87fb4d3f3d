"""CHGNet's forces and stress in one backward pass: the one place upotbo uses CHGNet's internals.

``CHGNet.predict_graph(task="efs")`` differentiates the energy twice, once for the forces and once for
the stress, each with ``create_graph=True`` (the model's training path, which needs second
derivatives for its force loss). Inference needs neither: one ``torch.autograd.grad`` over positions
and strains together gives both. On the relaxation starts of 181 paper42 crystals (batches of 16, one
torch thread) that is 1.87x CHGNet's own rate, 39.9 -> 74.4 crystals/s (benchmarks/chgnet_forces.py);
energies are identical, forces and stresses agree to float32 rounding (tests/test_chgnet_forces.py
compares the two on every call path).

Uses ``BatchedGraph.from_graphs`` and ``CHGNet._compute`` exactly as ``CHGNet.forward`` does, with
the derivatives left to this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GPA_PER_EV_A3 = 160.21766208  # CHGNet's own conversion of eV/Å^3 to GPa


def predict_forces(model: Any, graphs: list, stress: bool) -> list[dict[str, np.ndarray]]:
    """``predict_graph``'s output for ``task="efs"`` (``"ef"`` without ``stress``) on ``graphs``:
    per crystal ``e`` (eV/atom), ``f`` (eV/Å) and ``s`` (GPa, 3x3)."""
    import torch
    from chgnet.model.model import BatchedGraph

    model.eval()
    with torch.enable_grad():
        composition = 0 if model.composition_model is None else model.composition_model(graphs)
        batched = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
            compute_stress=stress,
        )
        prediction = model._compute(batched)
        energy = prediction["e"]  # per atom when the model is intensive (CHGNet is)
        total = energy * prediction["atoms_per_graph"] if model.is_intensive else energy
        wrt = [*batched.atom_positions, *(batched.strains if stress else [])]
        grads = torch.autograd.grad(total.sum(), wrt)
    energies = (energy + composition).detach().numpy()
    n = len(graphs)
    out = []
    for i in range(n):
        result = {"e": energies[i], "f": -grads[i].detach().numpy()}
        if stress:
            result["s"] = (grads[n + i] * (GPA_PER_EV_A3 / batched.volumes[i])).detach().numpy()
        out.append(result)
    return out
