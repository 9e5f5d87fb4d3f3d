#!/usr/bin/env bash
# CI, DFT part: install GPAW (the optional `upotbo[dft]` extra) and run the slow GPAW checks.
# Called from .ci/run after the default suite. Measured on 2 cores: apt ~10 s, GPAW build ~40 s,
# tests ~3 min (rock-salt ZrC E_c, DFT overlay of a small Zr1C1 map), plus ~40 s for tests/test_dft.py
# (2-atom Si at 250 eV; 75 s with the cores busy).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONWARNINGS=ignore DEBIAN_FRONTEND=noninteractive

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libxc-dev libopenblas-dev libfftw3-dev gpaw-data >/dev/null
CC=g++ python -m pip install -q -e ".[dft]"        # plain `cc` fails to compile GPAW's C++ parts
export GPAW_SETUP_PATH=/usr/share/gpaw-setups
export OMP_NUM_THREADS=1                           # GPAW runs serial; threads only oversubscribe

python -c "import gpaw; print('GPAW', gpaw.__version__)"
python -m pytest -q -m slow tests/test_dft.py tests/test_validate_dft.py tests/test_landscape_dft.py tests/test_labels.py \
    tests/test_refine.py::test_refine_with_gpaw
