"""Step 4: harmonic phonons with phonopy, forces from the potential (all displaced supercells in one
batched calls), on a supercell at least ``min_length`` Å across in every direction unless that
would exceed ``max_atoms`` (then the largest supercell under the cap; its width is reported).

Verdict: dynamically stable when the lowest frequency over a Γ-centred q-mesh is above ``-tolerance``
(phonopy reports imaginary modes as negative frequencies). The tolerance absorbs the numerical noise
of an ML potential near Γ; a real instability is larger (bcc Zr: several THz imaginary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.bandstructure import HighSymmKpath

from upotbo.crystal.prototypes import standard_cells
from upotbo.errors import CandidateFailed
from upotbo.potentials import Potential

MIN_LENGTH = 8.0  # Å, smallest perpendicular width of the supercell
MESH = 12  # q-points per reciprocal axis for the lowest frequency and the DOS
TOLERANCE = 0.1  # THz
# Å. Not phonopy's usual 0.01: CHGNet's forces at 0.01 Å gave rock-salt TiC an imaginary Γ optical
# branch (-4 THz) and at 0.03 Å none; ZrC's frequencies agree within 0.2 THz at both.
DISPLACEMENT = 0.03
# CHGNet's memory grows fast with atoms in dense cells (diamond: 64 atoms 3.4 GB, 96 atoms 5 GB,
# 216 atoms > 10 GB here), so the supercell is capped and the force calls are chunked.
MAX_ATOMS = 100
BATCH_ATOMS = 100  # atoms per potential call


@dataclass
class PhononResult:
    min_frequency: float  # THz; negative = imaginary
    stable: bool
    supercell_atoms: int
    tolerance: float
    supercell_length: float  # Å, smallest perpendicular width of the supercell
    plot: str | None = None


def supercell_diagonal(
    lattice: Lattice, min_length: float, natoms: int = 1, max_atoms: int | None = None
) -> tuple[list[int], float]:
    """Repeats per axis so that every perpendicular width of the supercell is ≥ ``min_length``, and
    that smallest width (Å). With ``max_atoms``, repeats are taken back (from the axis that stays
    widest) until the supercell holds at most that many atoms: the width then falls short."""
    m = lattice.matrix
    widths = [lattice.volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)]
    diag = [max(1, math.ceil(min_length / w - 1e-6)) for w in widths]
    while max_atoms is not None and natoms * math.prod(diag) > max_atoms and max(diag) > 1:
        axis = max((i for i in range(3) if diag[i] > 1), key=lambda i: (diag[i] - 1) * widths[i])
        diag[axis] -= 1
    width = min(n * w for n, w in zip(diag, widths, strict=True))
    # repeats that no longer widen the narrowest direction only cost atoms
    diag = [max(1, n - math.floor((n * w - width) / w + 1e-6)) for n, w in zip(diag, widths, strict=True)]
    return diag, width


def phonons(
    potential: Potential,
    structure: Structure,
    plot_path: Path | None = None,
    min_length: float = MIN_LENGTH,
    mesh: int = MESH,
    tolerance: float = TOLERANCE,
    symprec: float = 0.1,
    max_atoms: int | None = MAX_ATOMS,
) -> PhononResult:
    """Lowest frequency and stability verdict; a band structure + DOS plot when ``plot_path`` is given."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    conventional, primitive = standard_cells(structure, symprec)
    unit = PhonopyAtoms(
        symbols=[s.specie.symbol for s in conventional],
        cell=conventional.lattice.matrix,
        scaled_positions=conventional.frac_coords,
    )
    diag, width = supercell_diagonal(conventional.lattice, min_length, len(conventional), max_atoms)
    phonon = Phonopy(unit, supercell_matrix=np.diag(diag), primitive_matrix="auto", symprec=1e-3)
    phonon.generate_displacements(distance=DISPLACEMENT)
    cells = [
        Structure(c.cell, c.symbols, c.scaled_positions)
        for c in (phonon.supercell, *phonon.supercells_with_displacements)
    ]
    per_call = max(1, BATCH_ATOMS // len(cells[0]))  # a few supercells per call bounds the memory
    calcs = [
        calc
        for start in range(0, len(cells), per_call)
        for calc in potential.calculate(cells[start : start + per_call], forces=True)
    ]
    failed = [c.error for c in calcs if not c.ok]
    if failed:
        raise CandidateFailed(f"phonon forces failed: {failed[0]}")
    residual = calcs[0].forces  # forces left in the undisplaced supercell are subtracted
    phonon.forces = np.array([c.forces - residual for c in calcs[1:]])
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()
    phonon.run_mesh([mesh] * 3, is_gamma_center=True)
    lowest = float(np.min(phonon.get_mesh_dict()["frequencies"]))
    plot = None
    if plot_path is not None:
        _plot(phonon, primitive, plot_path)
        plot = str(plot_path)
    return PhononResult(lowest, lowest >= -tolerance, len(phonon.supercell), tolerance, width, plot)


def _plot(phonon, primitive: Structure, path: Path) -> None:
    """Band structure along the Setyawan-Curtarolo path of ``primitive`` plus the total DOS."""
    import matplotlib

    matplotlib.use("Agg")
    from phonopy.phonon.band_structure import get_band_qpoints_and_path_connections

    kpath = HighSymmKpath(primitive, symprec=0.01).kpath
    # Cartesian k is frame-independent here (phonopy's primitive shares the frame): convert the labels'
    # fractional coordinates to those of phonopy's own primitive reciprocal lattice.
    to_cart = primitive.lattice.reciprocal_lattice.matrix
    to_phonopy = np.linalg.inv(Lattice(phonon.primitive.cell).reciprocal_lattice.matrix)
    paths, labels = [], []
    for segment in kpath["path"]:
        paths.append([np.asarray(kpath["kpoints"][k]) @ to_cart @ to_phonopy for k in segment])
        labels.extend("$\\Gamma$" if k == "\\Gamma" else k for k in segment)
    qpoints, connections = get_band_qpoints_and_path_connections(paths, npoints=41)
    phonon.run_band_structure(qpoints, path_connections=connections, labels=labels)
    phonon.run_total_dos()
    plt = phonon.plot_band_structure_and_dos()
    axes = plt.gcf().axes
    axes[0].set_ylabel("Frequency (THz)")
    axes[-1].set_xlabel("DOS (states/THz)")
    plt.savefig(path, dpi=110)
    plt.close("all")
