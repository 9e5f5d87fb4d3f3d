#!/usr/bin/env bash
# Regenerates docs/landscape_zr4c4.png: the 400-crystal Zr4C4 map (paper Fig. 2a) made by the
# documented command, with the real CHGNet 0.3.0 potential. ~1 minute on 2 idle CPU cores.
# Usage: bash docs/make_landscape_figure.sh   (from the repository root, after pip install -e '.[landscape]')
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)/landscape-Zr4C4
upotbo landscape --formula Zr4C4 --n 400 --seed 0 --out "$out" --no-progress
# shrink for the README (<300 KB) without changing the picture
python - "$out/landscape.png" docs/landscape_zr4c4.png <<'PY'
import sys

from PIL import Image

Image.open(sys.argv[1]).convert("RGB").quantize(colors=128).save(sys.argv[2], optimize=True)
print(f"wrote {sys.argv[2]}")
PY
head -3 "$out/landscape.csv"
