"""A fitted Parzen estimator's log density, with everything that depends only on the fit computed once.

TPE scores every candidate by l(x)/g(x), two mixtures of truncated normals (one kernel per trial of the
window, ~300 for g). optuna's ``_MixtureOfProductDistribution.log_pdf`` recomputes, for every
(candidate, kernel, parameter), the kernel's truncation mass and an ``np.select`` over the bounds:
about 1 ms per ask at a window of 300, half the sampler's time. Here the per-kernel constants (log
weight, log sigma, truncation mass) are summed at the fit, and the Gaussian exponent of the continuous
parameters is one small matrix product over the candidates, so the same density costs a tenth of that.
Equal to optuna's to ~1e-12 (tested against it); what TPE proposes does not change beyond rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.samplers._tpe import _truncnorm
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.probability_distributions import _BatchedCategoricalDistributions

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
TABLE = 4096  # discrete parameters with at most this many values get a (value, kernel) mass table


class FastDensity:
    """``estimator``'s log density at many points of its internal representation, fast."""

    def __init__(self, estimator: _ParzenEstimator) -> None:
        mixture = estimator._mixture_distribution
        self._const = np.log(mixture.weights)  # per kernel: all terms that do not depend on x
        self._categorical: list[tuple[int, np.ndarray]] = []  # column, log weights (choice, kernel)
        self._discrete: list[tuple[int, Any, np.ndarray | None]] = []  # column, distribution, table
        continuous: list[tuple[int, object]] = []
        for column, d in enumerate(mixture.distributions):
            if isinstance(d, _BatchedCategoricalDistributions):
                with np.errstate(divide="ignore"):
                    self._categorical.append((column, np.log(d.weights).T.copy()))
                continue
            a, b = (d.adapted_low - d.mu) / d.sigma, (d.adapted_high - d.mu) / d.sigma
            self._const = self._const - _truncnorm._log_gauss_mass(a, b)  # the kernel's truncation
            if d.step == 0.0:
                continuous.append((column, d))
                self._const = self._const - np.log(d.sigma) - _LOG_SQRT_2PI
            else:  # each value's mass under each kernel, tabulated once if the range is short
                n_values = round((d.high - d.low) / d.step) + 1
                table = _interval_mass(d, d.low + d.step * np.arange(n_values)) if n_values <= TABLE else None
                self._discrete.append((column, d, table))
        self._columns = [c for c, _ in continuous]
        self._log = np.array([d.is_log for _, d in continuous], dtype=bool)
        # In units of each parameter's range from its low end, so the expanded square stays exact.
        self._low = np.array([d.adapted_low for _, d in continuous])
        self._span = np.array([d.adapted_high - d.adapted_low for _, d in continuous])
        self._bounds = (self._low, self._low + self._span)
        if continuous:
            mu = (np.array([d.mu for _, d in continuous]) - self._low[:, None]) / self._span[:, None]
            inv_var = (self._span[:, None] / np.array([d.sigma for _, d in continuous])) ** 2
            self._weights = np.vstack([-0.5 * inv_var, mu * inv_var])  # ([z^2, z], kernel)
            self._const = self._const - 0.5 * (mu * mu * inv_var).sum(axis=0)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log density at the rows of ``x`` (candidates x parameters, optuna's internal representation
        as ``_MixtureOfProductDistribution.sample`` returns it: log-scaled parameters not yet logged)."""
        outside = None
        if self._columns:  # the Gaussian exponent, expanded: -(z - mu)^2 / 2 sigma^2 = two products
            z = x[:, self._columns]
            z = np.where(self._log, np.log(np.where(self._log, z, 1.0)), z)
            outside = ((z < self._bounds[0]) | (z > self._bounds[1])).any(axis=1)
            z = (z - self._low) / self._span
            out = np.hstack([z * z, z]) @ self._weights  # one small product: no BLAS threads woken twice
            out += self._const
        else:
            out = np.tile(self._const, (len(x), 1))
        for column, log_weights in self._categorical:
            out += log_weights[x[:, column].astype(np.int64)]
        for column, d, table in self._discrete:
            if table is not None:
                index = np.rint((x[:, column] - d.low) / d.step).astype(np.int64)
                out += table[np.clip(index, 0, len(table) - 1)]
            else:
                values, inverse = np.unique(x[:, column], return_inverse=True)
                out += _interval_mass(d, values)[inverse.ravel()]
        if outside is not None:
            out[outside] = -np.inf
        top = out.max(axis=1)
        top[np.isneginf(top)] = 0.0
        out -= top[:, None]
        np.exp(out, out=out)
        with np.errstate(divide="ignore"):
            return np.log(out.sum(axis=1)) + top


def _interval_mass(d: Any, values: np.ndarray) -> np.ndarray:
    """log mass of [v - step/2, v + step/2] under each kernel of a discrete parameter (value, kernel)."""
    left, right = values - d.step / 2, values + d.step / 2
    if d.is_log:
        left, right = np.log(left), np.log(right)
    return _truncnorm._log_gauss_mass((left[:, None] - d.mu) / d.sigma, (right[:, None] - d.mu) / d.sigma)
