"""Descriptors -> 2-D map with UMAP (umap-learn), seeded so the same map comes out every time."""

from __future__ import annotations

import os
import warnings

import numpy as np

from upotbo.errors import InputError

MIN_POINTS = 20  # UMAP needs a neighbourhood (15 by default) plus a few points to lay out
N_NEIGHBORS = 15


def umap_2d(features: np.ndarray, seed: int = 0, n_neighbors: int = N_NEIGHBORS) -> np.ndarray:
    """(n, 2) coordinates. Columns are standardised first so no single feature sets the distances.

    A fixed ``random_state`` makes umap-learn single-threaded and reproducible, which is what a
    figure in a paper needs; at 10^5-10^6 points it costs minutes, small next to the potential.
    """
    features = np.asarray(features, dtype=float)
    if len(features) < MIN_POINTS:
        raise InputError(
            f"only {len(features)} crystals to map: UMAP needs at least {MIN_POINTS} (use --n or "
            f"--per-point to draw more)"
        )
    scale = features.std(axis=0)
    scaled = (features - features.mean(axis=0)) / np.where(scale > 1e-12, scale, 1.0)
    os.environ.setdefault("NUMBA_DISABLE_PERFORMANCE_WARNINGS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(n_neighbors, len(features) - 1),
            min_dist=0.1,
            random_state=seed,
            init="spectral" if len(features) > n_neighbors + 5 else "random",
        )
        return np.asarray(reducer.fit_transform(scaled), dtype=float)
