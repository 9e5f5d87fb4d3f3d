"""The one place upotbo uses CHGNet's internals: forces and stress in one backward pass, and its
crystal graphs built with numpy.

**Forces.** ``CHGNet.predict_graph(task="efs")`` differentiates the energy twice, once for the forces
and once for the stress, each with ``create_graph=True`` (the model's training path, which needs second
derivatives for its force loss). Inference needs neither: one ``torch.autograd.grad`` over positions
and strains together gives both. On the relaxation starts of 181 paper42 crystals (batches of 16, one
torch thread) that is 1.87x CHGNet's own rate, 39.9 -> 74.4 crystals/s (benchmarks/chgnet_internals.py);
energies are identical, forces and stresses agree to float32 rounding. ``BatchedGraph.from_graphs`` and
``CHGNet._compute`` are used exactly as ``CHGNet.forward`` does, with the derivatives left to us.

**Graphs.** ``CrystalGraphConverter`` turns pymatgen's neighbour list into Python objects (a node, a
directed and an undirected edge object per bond, in C) and then walks them in Python for the line
graph of bond pairs: about 4 ms per 2-16-atom crystal, a tenth of a relaxing search's CPU time.
``crystal_graph`` computes the same index arrays with numpy, in the same order (directed edges in the
neighbour list's order; undirected edges numbered as they first appear; angles by undirected edge, then
by the edge's two ends, then by each centre's neighbours in order of first appearance), so the model
sees identical inputs. tests/test_chgnet_internals.py compares both functions with CHGNet's own.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from pymatgen.core import Structure

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


def crystal_graph(converter: Any, structure: Structure) -> Any:
    """What ``converter(structure)`` returns (a ``chgnet.graph.CrystalGraph``), built with numpy."""
    import torch
    from chgnet.graph.crystalgraph import CrystalGraph

    dtype = torch.float32  # CHGNet's TORCH_DTYPE
    n_atoms = len(structure)
    center, neighbor, image, distance = structure.get_neighbor_list(
        r=converter.atom_graph_cutoff, sites=structure.sites, numerical_tol=1e-8
    )
    center, neighbor = center.astype(np.int64), neighbor.astype(np.int64)
    undirected, first, partner = _undirected_edges(n_atoms, center, neighbor, image)
    bonds = _bond_pairs(center, neighbor, distance, undirected, first, partner, converter.bond_graph_cutoff)
    isolated = n_atoms - len(np.unique(center))
    if isolated and converter.on_isolated_atoms != "ignore":
        message = (
            f"Structure graph_id=None has {isolated} isolated atom(s) with "
            f"atom_graph_cutoff={converter.atom_graph_cutoff}. CHGNet calculation will likely go wrong"
        )
        if converter.on_isolated_atoms == "error":
            raise ValueError(message)
        print(message, file=sys.stderr)
    return CrystalGraph(
        atomic_number=torch.tensor(structure.atomic_numbers, dtype=torch.int32),
        atom_frac_coord=torch.tensor(structure.frac_coords, dtype=dtype, requires_grad=True),
        atom_graph=_index_tensor(np.stack([center, neighbor], axis=1)),
        neighbor_image=torch.tensor(image, dtype=dtype),
        directed2undirected=_index_tensor(undirected),
        undirected2directed=_index_tensor(np.flatnonzero(first)),
        bond_graph=_index_tensor(bonds),
        lattice=torch.tensor(structure.lattice.matrix, dtype=dtype, requires_grad=True),
        composition=structure.composition.formula,
        atom_graph_cutoff=converter.atom_graph_cutoff,
        bond_graph_cutoff=converter.bond_graph_cutoff,
    )


def _undirected_edges(
    n_atoms: int, center: np.ndarray, neighbor: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair each directed edge i->j (image n) with its reverse j->i (image -n): (the undirected index of
    every directed edge, whether it is the first of its pair, its partner's index)."""
    images = np.rint(image).astype(np.int64)
    span = 2 * int(np.abs(images).max(initial=0)) + 1

    def code(a: np.ndarray, b: np.ndarray, img: np.ndarray) -> np.ndarray:
        shifted = img + span // 2
        return ((a * n_atoms + b) * span + shifted[:, 0]) * span**2 + shifted[:, 1] * span + shifted[:, 2]

    forward, backward = code(center, neighbor, images), code(neighbor, center, -images)
    order = np.argsort(forward, kind="stable")
    found = np.searchsorted(forward, backward, sorter=order).clip(max=len(order) - 1)
    partner = order[found] if len(order) else found
    if len(order) and not np.array_equal(forward[partner], backward):
        raise RuntimeError("Failed creating bond graph: a directed edge has no reverse in the neighbour list")
    first = partner > np.arange(len(center))
    undirected = np.cumsum(first) - 1
    undirected = np.where(first, undirected, undirected[partner])
    return undirected, first, partner


def _bond_pairs(
    center: np.ndarray,
    neighbor: np.ndarray,
    distance: np.ndarray,
    undirected: np.ndarray,
    first: np.ndarray,
    partner: np.ndarray,
    cutoff: float,
) -> np.ndarray:
    """The line graph: rows (centre atom, undirected bond, its directed edge from the centre, the other
    bond's undirected and directed index) for every pair of bonds shorter than ``cutoff`` at an atom."""
    bonds = np.flatnonzero(first & (distance <= cutoff))  # as CHGNet: ">" skips, "<" admits
    directed = np.stack([bonds, partner[bonds]], axis=1).ravel()
    owner = undirected[directed]
    at = center[directed]
    # each centre's neighbours in order of first appearance (over all its edges), then by edge index
    pair = center * (int(neighbor.max(initial=0)) + 1) + neighbor
    _, first_seen, which = np.unique(pair, return_index=True, return_inverse=True)
    short = np.flatnonzero(distance < cutoff)
    short = short[np.lexsort((short, first_seen[which[short]], center[short]))]
    starts = np.searchsorted(center[short], at)
    counts = np.searchsorted(center[short], at, side="right") - starts
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    other = short[np.repeat(starts, counts) + offsets]
    repeated = [np.repeat(column, counts) for column in (at, owner, directed)]
    rows = np.stack([*repeated, undirected[other], other], axis=1)
    return rows[other != rows[:, 2]]


def _index_tensor(values: np.ndarray) -> Any:
    """An int32 tensor, shaped ``(0,)`` when empty as CHGNet's (built from an empty list) is."""
    import torch

    return torch.tensor(values if len(values) else [], dtype=torch.int32)
