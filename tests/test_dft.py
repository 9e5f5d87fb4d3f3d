"""The DFT part, ``upotbo.dft``: settings and cache keys that existing caches and validation states rely
on, the install check, and (slow, real GPAW at a low cutoff on 2-atom Si cells) single-point labels,
cohesive energy and the symmetry-kept relaxation."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from upotbo.cache import lookup, store
from upotbo.cells import standard_cells
from upotbo.dft import (
    ATOM_CACHE,
    DFTSettings,
    atom_energy,
    calculator,
    cohesive_energy,
    dft_cohesive,
    gpaw_failures,
    relax,
    require_gpaw,
    single_point,
)
from upotbo.errors import CandidateFailed, InputError

LOW = DFTSettings(ecut=250.0, kdensity=2.0)  # coarse: these tests check plumbing and physics, not accuracy


def silicon(a: float = 5.47) -> Structure:
    """Diamond Si, 2-atom primitive cell."""
    h = a / 2
    return Structure(
        Lattice([[0, h, h], [h, 0, h], [h, h, 0]]), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


@pytest.fixture(autouse=True)
def session_cache(tmp_path_factory, monkeypatch):
    """Isolated atoms computed once per test session, never taken from a stale ~/.cache."""
    monkeypatch.setenv("UPOTBO_CACHE", str(tmp_path_factory.getbasetemp() / "upotbo_cache"))


def test_import_needs_no_gpaw():
    """Every module of the part imports with GPAW absent (GPAW is imported inside the functions)."""
    code = (
        "import sys; sys.modules['gpaw'] = None\n"
        "import upotbo.dft\n"
        "print(*sorted(m for m in sys.modules if m.startswith('upotbo.dft.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules = ["cohesive", "isolated", "relaxation", "settings", "singlepoint"]
    assert done.stdout.split() == [f"upotbo.dft.{m}" for m in modules]


def test_require_gpaw_without_gpaw_is_one_input_error_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # as if GPAW were not installed
    with pytest.raises(InputError) as info:
        require_gpaw()
    message = str(info.value)
    assert "\n" not in message and message.startswith("GPAW is not installed")
    assert "CC=g++ pip install 'upotbo[dft]'" in message


def test_settings_and_atom_cache_keys_are_unchanged():
    """Validation states compare ``asdict(DFTSettings)`` and the atom cache is keyed by ``atom_key``:
    a change here would redo finished DFT steps and recompute every cached atom."""
    assert asdict(DFTSettings()) == {
        "ecut": 500.0,
        "kdensity": 4.0,
        "smearing": 0.05,
        "box": 10.0,
        "relax": False,
        "fmax": 0.05,
        "relax_steps": 20,
    }
    assert ATOM_CACHE == "gpaw_atom_energies.json"
    assert DFTSettings().atom_key("Zr", "26.7.0") == "Zr|PBE|PW500|box10|gpaw26.7.0"
    assert DFTSettings(ecut=400.0, box=12.5).atom_key("C", "24.1.0") == "C|PBE|PW400|box12.5|gpaw24.1.0"
    crystal_only = DFTSettings(kdensity=2.5, smearing=0.1, relax=True, fmax=0.01, relax_steps=5)
    assert crystal_only.atom_key("C", "1") == DFTSettings().atom_key("C", "1")  # atoms shared across these


def test_cache_round_trip_and_unreadable_file(tmp_path, monkeypatch):
    monkeypatch.setenv("UPOTBO_CACHE", str(tmp_path / "c"))
    assert lookup("x.json", "k") is None
    store("x.json", "k", -1.5)
    store("x.json", "j", {"a": 1})
    assert lookup("x.json", "k") == -1.5 and lookup("x.json", "j") == {"a": 1}
    (tmp_path / "c" / "x.json").write_text("{not json")
    assert lookup("x.json", "k") is None
    store("x.json", "k", 2.0)  # a broken file is replaced, not a crash
    assert lookup("x.json", "k") == 2.0


def test_gpaw_errors_become_one_line_candidate_failures():
    with pytest.raises(CandidateFailed, match=r"^GPAW failed: RuntimeError: first line$"):
        with gpaw_failures():
            raise RuntimeError("first line\nsecond line")
    with pytest.raises(InputError):  # the user's fault stays the user's fault
        with gpaw_failures():
            raise InputError("bad")


@pytest.mark.slow
def test_single_point_labels_of_a_distorted_cell():
    """Energy, forces, stress on a strained, sheared Si cell with a displaced atom; the force matches a
    central finite difference of the energy (sign and eV/Å)."""
    pytest.importorskip("gpaw")
    require_gpaw()
    s = silicon()
    s = Structure(s.lattice.matrix + [[0, 0.05, 0], [0, 0, -0.04], [0.03, 0, 0]], s.species, s.frac_coords)
    s.translate_sites([1], [0.08, -0.05, 0.06], frac_coords=False)
    point = single_point(s, LOW)
    assert point.forces.shape == (2, 3) and point.stress.shape == (3, 3)
    assert (
        np.isfinite(point.energy) and np.all(np.isfinite(point.forces)) and np.all(np.isfinite(point.stress))
    )
    assert np.abs(point.forces).max() > 0.2  # the displacement is felt
    assert np.allclose(point.forces.sum(axis=0), 0.0, atol=0.01)  # no net force on a periodic cell
    assert np.allclose(point.stress, point.stress.T, atol=1e-6)
    assert np.abs(point.stress - np.diag(np.diag(point.stress))).max() > 1e-4  # the shear is felt
    h = 0.01  # Å, atom 1 along x
    energies = []
    for sign in (1, -1):
        moved = s.copy()
        moved.translate_sites([1], [sign * h, 0, 0], frac_coords=False)
        energies.append(single_point(moved, LOW).energy)
    assert -(energies[0] - energies[1]) / (2 * h) == pytest.approx(point.forces[1, 0], abs=0.01)


@pytest.mark.slow
def test_cohesive_energy_from_a_single_point(tmp_path):
    """E_c from a single point on the standard cell is what ``dft_cohesive`` gives, near PBE's Si value
    (about -4.55 eV/atom converged; this low cutoff gives a little less binding), and the atom is cached."""
    pytest.importorskip("gpaw")
    import gpaw

    _, primitive = standard_cells(silicon())
    from_point = cohesive_energy(single_point(primitive, LOW).energy, primitive, LOW, tmp_path)
    result = dft_cohesive(silicon(), LOW, tmp_path, "Si")
    assert result.value == pytest.approx(from_point, abs=1e-6)
    assert result.value == pytest.approx(-4.5, abs=0.3) and result.value_relaxed is None
    assert lookup(ATOM_CACHE, LOW.atom_key("Si", gpaw.__version__)) == atom_energy("Si", LOW)
    assert (tmp_path / "Si.txt").exists() and (tmp_path / "atom_Si.txt").exists()


@pytest.mark.slow
def test_relax_keeps_symmetry_and_lowers_energy():
    """A compressed diamond Si cell relaxes outwards: energy and pressure drop, Fd-3m stays."""
    pytest.importorskip("gpaw")
    require_gpaw()
    atoms = AseAtomsAdaptor.get_atoms(silicon(5.25))
    atoms.calc = calculator(LOW, None)
    start_energy, start_stress = atoms.get_potential_energy(), np.abs(atoms.get_stress()).max()
    energy = relax(atoms, DFTSettings(ecut=LOW.ecut, kdensity=LOW.kdensity, relax_steps=4))
    assert energy < start_energy and np.abs(atoms.get_stress()).max() < start_stress
    assert atoms.get_volume() > silicon(5.25).volume
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_spacegroup(cell, symprec=1e-3) == "Fd-3m (227)"
