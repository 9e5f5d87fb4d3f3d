"""Mechanical properties of relaxed crystals from the same potential that scored them, in batches.

Two routes, both batched over *all* crystals (one potential call per relaxation step, never per crystal):

- ``bulk_moduli``: Birch–Murnaghan E(V) fit (pymatgen's ``EOS("birch_murnaghan")``) over isotropically
  scaled copies of each cell.
- ``elastic_tensors``: the 6x6 stiffness C_ij from central finite differences of the stress under
  ±strain along each Voigt component, ions relaxed at fixed (strained) cell.

From C follow the Born stability test, the Voigt–Reuss–Hill moduli and Chen's Vickers hardness;
``mechanics`` chains them. Inputs must already be relaxed (cell and ions) with the same potential:
the finite differences give the moduli at whatever pressure the input cell is under.

A crystal that cannot be computed (the potential refuses or fails on a strained copy, the fit is
meaningless) gets a one-line string reason in its slot instead of a number, never an exception, so
one bad crystal does not cost the batch, as everywhere else in upotbo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import units
from pymatgen.analysis.eos import EOS
from pymatgen.core import Lattice, Structure

from upotbo.potentials.base import Potential
from upotbo.potentials.relax import relax_batch

_EV_PER_A3_TO_GPA = 1.0 / units.GPa  # ase.units.GPa is 1 GPa in eV/Å^3

# Voigt index -> the (i, j) strain-matrix element(s) it sets: xx yy zz yz xz xy.
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


# ----------------------------------------------------------------------------------------------- EOS


def bulk_moduli(
    potential: Potential,
    structures: Sequence[Structure],
    strains: Sequence[float] = (-0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06),
    relax_steps: int = 20,
    fmax: float = 0.02,
) -> list[float | str]:
    """Bulk modulus (GPa) of each crystal from a Birch–Murnaghan fit (pymatgen ``EOS``) to E(V).

    ``strains`` are *volumetric*: each cell is scaled isotropically (shape and fractional coordinates
    kept) to V = V0 (1 + s). ±6 % in volume (±2 % in length) stays in the regime the 4-parameter fit
    describes, yet spans enough energy (~5-30 meV/atom at the ends) to average over the roughness of
    an ML potential's energy surface: diamond with CHGNet gives 374, 426, 427 and 432 GPa over ±2, ±4,
    ±6 and ±9 % in volume.

    The ions of every scaled cell are relaxed at fixed cell (``relax_batch``, all cells of all crystals
    in one batch, one force call per step), for ``relax_steps`` FIRE steps. That is what a bulk modulus
    is (the solid's response with its atoms free), and it is nearly free where it is not needed: for
    atoms on fixed Wyckoff positions (rock salt, diamond, fcc, ...) the forces vanish by symmetry and
    the relaxation stops after its first call. Where internal coordinates are free, the clamped-ion
    energy is too stiff: rutile TiO2 with CHGNet gives 234 GPa clamped and 217 GPa relaxed (experiment
    ~210), converged within 10-20 steps. ``relax_steps=0`` is the clamped-ion, energy-only variant
    (one batched call, ~5x cheaper). Either way the cell *shape* is held, so for non-cubic crystals this
    is the fixed-shape modulus (close to the Voigt bound); ``vrh_moduli`` of the elastic tensor is the
    better number there.

    Reasons instead of a value: a volume the potential fails on, a failed fit, a non-positive or
    non-finite B, or a minimum outside the sampled volumes (the input was not relaxed).
    """
    scales = [1.0 + float(s) for s in strains]
    if len(scales) < 5 or min(scales) <= 0:
        raise ValueError(f"need >= 5 volumetric strains > -1 for a 4-parameter EOS fit, got {strains}")
    scaled = [_scaled(s, f) for s in structures for f in scales]
    if relax_steps > 0:
        relaxed = relax_batch(potential, scaled, steps=relax_steps, fmax=fmax, relax_cell=False)
        energies = [(r.energy, r.error) for r in relaxed]
    else:
        energies = [(c.energy, c.error) for c in potential.calculate(scaled)]
    out: list[float | str] = []
    n = len(scales)
    for k, structure in enumerate(structures):
        chunk = energies[k * n : (k + 1) * n]
        failed = [(s, err) for s, (_, err) in zip(strains, chunk, strict=True) if err is not None]
        if failed:
            s, err = failed[0]
            out.append(f"EOS point at volume strain {s:+.3f} failed: {err}")
            continue
        volumes = [structure.volume * f for f in scales]
        out.append(_fit_bulk_modulus(volumes, [e for e, _ in chunk]))
    return out


def _scaled(structure: Structure, volume_factor: float) -> Structure:
    lattice = Lattice(structure.lattice.matrix * volume_factor ** (1 / 3))
    return Structure(
        lattice, structure.species, structure.frac_coords, site_properties=structure.site_properties
    )


def _fit_bulk_modulus(volumes: list[float], energies: list[float]) -> float | str:
    try:
        fit = EOS("birch_murnaghan").fit(volumes, energies)
        b0, v0 = float(fit.b0_GPa), float(fit.v0)
    except Exception as exc:  # pymatgen's EOSError, scipy's leastsq, or a degenerate E(V)
        return f"Birch-Murnaghan fit failed: {type(exc).__name__}: {str(exc).strip()[:120]}"
    if not (math.isfinite(b0) and b0 > 0):
        return f"Birch-Murnaghan fit gave a non-positive bulk modulus ({b0:.3g} GPa)"
    if not min(volumes) <= v0 <= max(volumes):
        return (
            f"EOS minimum at {v0:.2f} Å^3 lies outside the sampled volumes "
            f"{min(volumes):.2f}-{max(volumes):.2f} Å^3: relax the crystal first"
        )
    return b0


# ------------------------------------------------------------------------------------ elastic tensor


def elastic_tensors(
    potential: Potential,
    structures: Sequence[Structure],
    strain: float = 0.02,
    relax_steps: int = 25,
    fmax: float = 0.02,
) -> list[np.ndarray | str]:
    """6x6 stiffness C_ij (GPa, Voigt order xx yy zz yz xz xy) of each crystal by finite strains.

    For each Voigt component j, ``±strain`` is applied (engineering shear for j = 4-6: the symmetric
    strain matrix gets γ/2 off the diagonal) as the deformation F = 1 + ε with fractional coordinates
    carried along; the ions are then relaxed at that fixed cell, since internal relaxation lowers the
    shear constants (with CHGNet: C44 of diamond by 9 %, of Si by 21 %, of wurtzite ZnO by 21 %).
    C_ij = [σ_i(+) − σ_i(−)] / (2 strain), with σ the stress exactly as the potential reports it (ASE
    sign, positive = tensile, so a stretched cell gives σ > 0 and C > 0); central differences cancel any
    residual stress of the input to first order. C is symmetrized, (C + Cᵀ)/2.

    Why 2 % and not the 0.5-1 % usual with DFT: an ML potential's energy surface is rough on the scale
    of a fraction of a percent of strain, and the difference quotient amplifies that roughness. With
    CHGNet-0.3.0 diamond's C12 reads 203, 192, 238 and 318 GPa at 0.25, 1, 1.5 and 2 % and Al's C44 1 to
    11 GPa; only from ~2 % on does (C11 + 2 C12)/3 agree with the Birch–Murnaghan bulk modulus (426 vs
    427 GPa for diamond; 315 at 1 %). The truncation error of a 2 % central difference (a fourth-order
    constant times ε²/6 ≈ 7e-5) is a few GPa at most for real solids, far below that.

    All 12 strained copies of all crystals are relaxed in one ``relax_batch`` (one force call per
    step); their stresses then come from one more batched call. ``relax_steps=0`` gives clamped-ion
    constants from that single call. A relaxation that has not met ``fmax`` after ``relax_steps`` is
    used as it is. At 2 % strain the ions move little (≤ 0.013 Å in diamond, Si, wurtzite ZnO, rutile
    TiO2) and converge within 17 steps; 25 and 100 steps give the same C to 0.01 GPa.
    """
    strained = [_strained(s, j, sign * strain) for s in structures for j in range(6) for sign in (1, -1)]
    errors: list[str | None] = [None] * len(strained)
    if relax_steps > 0:
        relaxed = relax_batch(potential, strained, steps=relax_steps, fmax=fmax, relax_cell=False)
        strained = [r.structure for r in relaxed]
        errors = [r.error for r in relaxed]
    todo = [i for i, err in enumerate(errors) if err is None]
    stresses: list[np.ndarray | None] = [None] * len(strained)
    # forces too: the Potential contract allows stress alone, but CHGNet has no "es" task.
    calcs = potential.calculate([strained[i] for i in todo], forces=True, stress=True)
    for i, calc in zip(todo, calcs, strict=True):
        if calc.ok and calc.stress is not None:
            stresses[i] = np.asarray(calc.stress, dtype=float)
        else:
            errors[i] = calc.error or "potential returned no stress"
    out: list[np.ndarray | str] = []
    for k in range(len(structures)):
        base = 12 * k
        bad = next((i for i in range(base, base + 12) if errors[i] is not None), None)
        if bad is not None:
            j, sign = divmod(bad - base, 2)
            out.append(f"strain {'+-'[sign]}{strain:g} on Voigt component {j + 1} failed: {errors[bad]}")
            continue
        c = np.empty((6, 6))
        for j in range(6):
            plus, minus = stresses[base + 2 * j], stresses[base + 2 * j + 1]
            c[:, j] = (plus - minus) / (2 * strain) * _EV_PER_A3_TO_GPA  # type: ignore[operator]
        out.append((c + c.T) / 2)
    return out


def _strained(structure: Structure, component: int, value: float) -> Structure:
    """``structure`` deformed by Voigt strain ``value`` in ``component`` (0-5, engineering shear)."""
    eps = np.zeros((3, 3))
    i, j = _VOIGT[component]
    if i == j:
        eps[i, i] = value
    else:
        eps[i, j] = eps[j, i] = value / 2
    # Lattice vectors are the matrix rows: a' = F a  ->  rows @ F^T (F symmetric here).
    lattice = Lattice(structure.lattice.matrix @ (np.eye(3) + eps).T)
    return Structure(
        lattice, structure.species, structure.frac_coords, site_properties=structure.site_properties
    )


# ---------------------------------------------------------------------------------- derived numbers


def born_stable(c: np.ndarray) -> bool:
    """Whether C satisfies the Born criteria: all eigenvalues of the symmetric 6x6 C are positive.

    The necessary and sufficient condition for any crystal system (F. Mouhat & F.-X. Coudert,
    Phys. Rev. B 90, 224104 (2014)); the per-system inequalities in that paper are special cases, so
    this one test needs no symmetry detection.
    """
    return bool(_smallest_eigenvalue(c) > 0)


def _smallest_eigenvalue(c: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(_symmetric(c)).min())


def vrh_moduli(c: np.ndarray) -> tuple[float, float]:
    """Voigt–Reuss–Hill (bulk, shear) moduli in GPa from a 6x6 C in GPa (Hill = mean of the bounds).

    Voigt (uniform strain) from C, Reuss (uniform stress) from S = C⁻¹; for a single crystal they bound
    the polycrystal's isotropic moduli from above and below, and Hill's mean is the usual estimate.
    Meaningful only for a Born-stable C (check ``born_stable`` first).
    """
    c = _symmetric(c)
    s = np.linalg.inv(c)
    diag_c, off_c, shear_c = np.trace(c[:3, :3]), c[0, 1] + c[1, 2] + c[0, 2], np.trace(c[3:, 3:])
    diag_s, off_s, shear_s = np.trace(s[:3, :3]), s[0, 1] + s[1, 2] + s[0, 2], np.trace(s[3:, 3:])
    bulk_v = (diag_c + 2 * off_c) / 9
    shear_v = (diag_c - off_c + 3 * shear_c) / 15
    bulk_r = 1 / (diag_s + 2 * off_s)
    shear_r = 15 / (4 * diag_s - 4 * off_s + 3 * shear_s)
    return float((bulk_v + bulk_r) / 2), float((shear_v + shear_r) / 2)


def vickers_hardness(bulk: float, shear: float) -> float:
    """Vickers hardness (GPa) from Chen's model, Hv = 2 (k² G)^0.585 − 3 with Pugh's ratio k = G/B.

    X.-Q. Chen, H. Niu, D. Li, Y. Li, Intermetallics 19, 1275 (2011); moduli in GPa. The −3 offset
    makes it negative for soft, ductile crystals (small G and k, e.g. most metals); it is returned
    as is, not clipped at 0, so that it still ranks such crystals (a search maximizing hardness keeps a
    gradient there) — read a negative value as "soft", not as a hardness.
    """
    if not (bulk > 0 and shear > 0):
        raise ValueError(f"Chen's hardness needs positive moduli, got B = {bulk} GPa, G = {shear} GPa")
    k = shear / bulk
    return float(2 * (k * k * shear) ** 0.585 - 3)


def _symmetric(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    if c.shape != (6, 6):
        raise ValueError(f"expected a 6x6 Voigt stiffness matrix, got shape {c.shape}")
    return (c + c.T) / 2


# ------------------------------------------------------------------------------------- all in one


@dataclass
class Mechanics:
    """Elastic tensor and the moduli derived from it; all in GPa."""

    elastic_tensor: np.ndarray
    bulk_vrh: float
    shear_vrh: float
    hardness: float  # Chen's Vickers hardness, negative for soft crystals (see ``vickers_hardness``)


def mechanics(
    potential: Potential,
    structures: Sequence[Structure],
    strain: float = 0.02,
    relax_steps: int = 25,
    fmax: float = 0.02,
) -> list[Mechanics | str]:
    """C, VRH moduli and Vickers hardness for each crystal (one batched ``elastic_tensors`` run).

    A Born-unstable C gives a reason instead: its VRH moduli and hardness would be meaningless, and the
    crystal would deform spontaneously under the potential.
    """
    out: list[Mechanics | str] = []
    for c in elastic_tensors(potential, structures, strain=strain, relax_steps=relax_steps, fmax=fmax):
        if isinstance(c, str):
            out.append(c)
            continue
        if not born_stable(c):
            smallest = _smallest_eigenvalue(c)
            out.append(
                f"mechanically unstable (Born criteria): smallest eigenvalue of C is {smallest:.1f} GPa"
            )
            continue
        bulk, shear = vrh_moduli(c)
        out.append(Mechanics(c, bulk, shear, vickers_hardness(bulk, shear)))
    return out
