"""Gaussian mixtures: the distributions the network predicts (NumPy inference side).

This module needs NumPy only (no SciPy, no TensorFlow). It holds

* the parametrisation shared with the training head
  (:mod:`.training.mixture_layers` imports its constants from here, so there is
  one source of truth),
* :func:`mixture_from_raw`, the NumPy mirror of the head transform, and
* :class:`GaussianMixture`, a batch of ``n`` mixtures of ``K`` Gaussians in
  ``D = 1`` or ``D = 2`` dimensions with densities, moments, mode, CDF/quantiles
  (1D), orthant and region probabilities (2D), random and quasi-random
  sampling, confidence ellipses and proper scores (CRPS, energy score).

The special functions these need live in :mod:`.special` (:func:`.special.erfc`, :func:`.special.ndtr`,
:func:`.special.ndtri`, :func:`.special.bivariate_normal_upper`) and the quasi-random point set in
:mod:`.quasirandom` (:func:`.quasirandom.scrambled_halton`).

Raw head layout
---------------
The network's last Dense layer emits ``P = raw_size(K, D)`` values per sample::

    [ logits (K) | means (K*D) | sigma_raw (K*D) | rho_raw (K, only if D == 2) ]

with means and sigmas component-major (value ``d`` of component ``k`` sits at
offset ``k*D + d`` inside its block). ``P = K*(1 + 2*D) + (K if D == 2 else 0)``.

* weights: ``log_softmax(logits)`` (computed in log space throughout);
* means: the raw values, in target units;
* sigmas (target units), a soft-clipped exponential::

      sigma = (SIGMA_FLOOR + exp(r)) / (1 + exp(r) / SIGMA_CAP)

  i.e. ``log sigma = logaddexp(log floor, r) - softplus(r - log cap)``. Between
  about ``10*floor`` and ``cap/10`` this is ``sigma = exp(r)`` with
  ``d log(sigma) / dr = 1``, so the gradient does not vanish over the useful
  range; towards the bounds it saturates smoothly (the derivative
  ``sigmoid(r - log floor) - sigmoid(r - log cap)`` decays exponentially but
  never becomes NaN). ``sigma`` stays within ``[SIGMA_FLOOR, SIGMA_CAP]``.
  ``r = 0`` gives ``sigma = 1`` exactly (``floor * cap = 1``), matching
  standardised targets.
* correlation (2D only): ``rho = RHO_MAX * tanh(rho_raw)``, so ``|rho| <= RHO_MAX``
  and ``1 - rho**2 >= 1 - RHO_MAX**2 ~= 0.01``, which keeps the log-determinant
  and the quadratic form finite.

NLL
---
"NLL" is the negative log of the mixture's probability *density* at the target,
``-log p(y) = -logsumexp_k(log w_k + log N(y; mu_k, Sigma_k))`` in nats per
sample, with ``log N`` in closed form (1D: ``-0.5 log(2 pi) - log sigma - z**2/2``;
2D: ``-log(2 pi) - log sx - log sy - 0.5 log(1 - rho**2) - Q/2``). A density can
exceed 1, so the NLL can be negative: it is only defined up to the units of the
target (rescaling the target by ``c`` shifts the NLL by ``D * log c``).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional, Tuple

import numpy as np

from .quasirandom import RngLike, scrambled_halton
from .special import _normal_pdf, bivariate_normal_upper, ndtr, ndtri

__all__ = [
    "SIGMA_FLOOR",
    "SIGMA_CAP",
    "RHO_MAX",
    "LOG_SIGMA_FLOOR",
    "LOG_SIGMA_CAP",
    "SUPPORTED_DIMS",
    "raw_size",
    "log_sigma_from_raw",
    "sigma_from_raw",
    "sigma_to_raw",
    "rho_from_raw",
    "rho_to_raw",
    "split_raw",
    "raw_from_parameters",
    "mixture_from_raw",
    "GaussianMixture",
]

# --- Parametrisation constants shared with the TensorFlow head -----------------
#: Smallest standard deviation of a component, in target units.
SIGMA_FLOOR = 1e-3
#: Largest standard deviation of a component, in target units.
SIGMA_CAP = 1e3
#: Bound on |rho| for 2D components (keeps 1 - rho**2 >= ~0.01).
RHO_MAX = 0.995
LOG_SIGMA_FLOOR = math.log(SIGMA_FLOOR)
LOG_SIGMA_CAP = math.log(SIGMA_CAP)
#: Dimensions of the target a mixture may have.
SUPPORTED_DIMS = (1, 2)

_LOG_2PI = math.log(2.0 * math.pi)


def _check_components_dims(n_components: int, n_dims: int) -> None:
    if int(n_components) != n_components or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    if n_dims not in SUPPORTED_DIMS:
        raise ValueError(f"n_dims must be one of {SUPPORTED_DIMS}, got {n_dims!r}")


def raw_size(n_components: int, n_dims: int) -> int:
    """Number ``P`` of raw head outputs for ``K = n_components`` components in ``D = n_dims``.

    ``P = K*(1 + 2*D) + (K if D == 2 else 0)``: logits, means, sigma_raw, rho_raw.
    """
    _check_components_dims(n_components, n_dims)
    n_components = int(n_components)
    return n_components * (1 + 2 * n_dims) + (n_components if n_dims == 2 else 0)


# --- Elementwise transforms (NumPy mirror of the head) ------------------------

def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def log_sigma_from_raw(sigma_raw) -> np.ndarray:
    """Natural log of the standard deviation for raw head values (any shape).

    ``log sigma = logaddexp(log floor, r) - softplus(r - log cap)``, evaluated in
    whichever of two algebraically equal forms avoids cancellation, so the result
    lies in ``[LOG_SIGMA_FLOOR, LOG_SIGMA_CAP]``.
    """
    r = np.asarray(sigma_raw, dtype=np.float64)
    near_floor = LOG_SIGMA_FLOOR + _softplus(r - LOG_SIGMA_FLOOR) - _softplus(r - LOG_SIGMA_CAP)
    near_cap = LOG_SIGMA_CAP + _softplus(LOG_SIGMA_FLOOR - r) - _softplus(LOG_SIGMA_CAP - r)
    midpoint = 0.5 * (LOG_SIGMA_FLOOR + LOG_SIGMA_CAP)
    return np.where(r < midpoint, near_floor, near_cap)


def sigma_from_raw(sigma_raw) -> np.ndarray:
    """Standard deviation (target units) for raw head values; see the module docstring."""
    return np.exp(log_sigma_from_raw(sigma_raw))


def sigma_to_raw(sigma) -> np.ndarray:
    """Inverse of :func:`sigma_from_raw`: ``r = log(sigma - floor) - log(1 - sigma / cap)``.

    ``sigma`` must lie strictly between ``SIGMA_FLOOR`` and ``SIGMA_CAP``.
    Useful to initialise a head's bias so that it starts at chosen sigmas.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    if np.any(~(sigma > SIGMA_FLOOR)) or np.any(~(sigma < SIGMA_CAP)):
        raise ValueError(f"sigma must lie strictly within ({SIGMA_FLOOR}, {SIGMA_CAP})")
    return np.log(sigma - SIGMA_FLOOR) - np.log1p(-sigma / SIGMA_CAP)


def rho_from_raw(rho_raw) -> np.ndarray:
    """Correlation ``RHO_MAX * tanh(rho_raw)`` (any shape)."""
    return RHO_MAX * np.tanh(np.asarray(rho_raw, dtype=np.float64))


def rho_to_raw(rho) -> np.ndarray:
    """Inverse of :func:`rho_from_raw`; ``|rho|`` must be below ``RHO_MAX``."""
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(~(np.abs(rho) < RHO_MAX)):
        raise ValueError(f"|rho| must be below RHO_MAX = {RHO_MAX}")
    return np.arctanh(rho / RHO_MAX)


def _log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    return logits - _logsumexp(logits, axis=axis, keepdims=True)


def _logsumexp(a: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(a))) along ``axis``; all ``-inf`` gives ``-inf`` without warnings."""
    a = np.asarray(a, dtype=np.float64)
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


def split_raw(raw, n_components: int, n_dims: int):
    """Map raw head values to mixture parameters, mirroring the TensorFlow head.

    Args:
        raw: array ``(..., P)`` with ``P = raw_size(n_components, n_dims)``.
    Returns:
        ``(log_weights, means, sigmas, rho)``: normalised log weights ``(..., K)``,
        means ``(..., K, D)`` and sigmas ``(..., K, D)`` in target units, and
        ``rho`` ``(..., K)`` for ``D == 2`` or ``None`` for ``D == 1``.
    """
    size = raw_size(n_components, n_dims)
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim < 1 or raw.shape[-1] != size:
        raise ValueError(
            f"raw must have shape (..., {size}) for {n_components} components in {n_dims}D, "
            f"got {raw.shape}"
        )
    k, d = int(n_components), n_dims
    lead = raw.shape[:-1]
    log_weights = _log_softmax(raw[..., :k])
    means = raw[..., k:k + k * d].reshape(lead + (k, d))
    sigmas = sigma_from_raw(raw[..., k + k * d:k + 2 * k * d]).reshape(lead + (k, d))
    rho = rho_from_raw(raw[..., k + 2 * k * d:]) if d == 2 else None
    return log_weights, means, sigmas, rho


def raw_from_parameters(weights, means, sigmas, rho=None) -> np.ndarray:
    """Inverse of :func:`split_raw`: raw values ``(..., P)`` giving these parameters.

    Args:
        weights: ``(..., K)`` positive mixture weights (normalised or not).
        means: ``(..., K, D)``; sigmas: ``(..., K, D)`` within the floor/cap;
        rho: ``(..., K)`` with ``|rho| < RHO_MAX`` for ``D == 2`` (``None`` means 0).
    Useful for tests and to initialise the head's bias (``raw_from_parameters(...)``
    as a constant bias makes an untrained head start at that mixture).
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if means.ndim < 2 or means.shape != sigmas.shape or means.shape[:-1] != weights.shape:
        raise ValueError(
            "expected weights (..., K), means (..., K, D) and sigmas (..., K, D); got "
            f"{weights.shape}, {means.shape}, {sigmas.shape}"
        )
    if np.any(~(weights > 0)):
        raise ValueError("weights must be positive")
    n_dims = means.shape[-1]
    _check_components_dims(means.shape[-2], n_dims)
    lead = weights.shape[:-1]
    parts = [
        np.log(weights),
        means.reshape(lead + (-1,)),
        sigma_to_raw(sigmas).reshape(lead + (-1,)),
    ]
    if n_dims == 2:
        rho = np.zeros(weights.shape) if rho is None else np.broadcast_to(rho, weights.shape)
        parts.append(rho_to_raw(rho))
    return np.concatenate(parts, axis=-1)


def mixture_from_raw(raw, n_components: int, n_dims: int) -> "GaussianMixture":
    """Build a :class:`GaussianMixture` from raw head outputs ``(n, P)`` (or ``(P,)``, n = 1).

    Exactly the transform of the TensorFlow head (same sigma floor/cap and rho
    squash, see the module docstring), evaluated in float64.
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 1:
        raw = raw[None, :]
    if raw.ndim != 2:
        raise ValueError(f"raw must have shape (n, P) or (P,), got {raw.shape}")
    log_weights, means, sigmas, rho = split_raw(raw, n_components, n_dims)
    return GaussianMixture.from_components(log_weights, means, sigmas, rho)


@functools.lru_cache(maxsize=16)
def _cached_quasi_set(n_points: int, n_dims: int, seed: int):
    """A scrambled Halton set and the normal scores of its last ``n_dims - 1`` coordinates.

    Scoring draws the same set for every chunk of pairs, so it is built once. The
    arrays are read-only, as they are shared.
    """
    uniforms = scrambled_halton(n_points, n_dims, seed)
    scores = ndtri(uniforms[:, 1:])
    uniforms.flags.writeable = False
    scores.flags.writeable = False
    return uniforms, scores


def _as_generator(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# --- The mixture ---------------------------------------------------------------

def _gaussian_log_density(x: np.ndarray, means: np.ndarray, sigmas: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Log densities ``(..., K)`` of components ``means, sigmas (..., K, D)``, ``rho (..., K)`` at ``x (..., D)``."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (x[..., None, :] - means) / sigmas
        log_sigma = np.log(sigmas)
        if means.shape[-1] == 1:
            z = z[..., 0]
            return -0.5 * z * z - log_sigma[..., 0] - 0.5 * _LOG_2PI
        one_minus_rho2 = (1.0 - rho) * (1.0 + rho)
        zx, zy = z[..., 0], z[..., 1]
        # Sum-of-squares form of the quadratic: no cancellation when rho -> 1 and zx ~ zy.
        quadratic = (zx - rho * zy) ** 2 / one_minus_rho2 + zy * zy
        return (-0.5 * quadratic - log_sigma[..., 0] - log_sigma[..., 1]
                - 0.5 * (np.log1p(-rho) + np.log1p(rho)) - _LOG_2PI)


class GaussianMixture:
    """A batch of ``n`` Gaussian mixtures with ``K`` components each in ``D = 1`` or ``2``.

    All methods are vectorised over the batch ("rows"). Units are those of the
    target: means and standard deviations in target units, densities per target
    unit**D, log densities in nats.

    Args:
        weights: ``(n, K)`` non-negative mixture weights, each row summing to 1
            (to 1e-6; they are renormalised exactly).
        means: ``(n, K, D)`` component means.
        covariances: ``(n, K, D, D)`` symmetric positive definite component covariances.

    Use :meth:`from_components` (log weights, sigmas, rho) or
    :func:`mixture_from_raw` (network output) for the other parametrisations.
    """

    def __init__(self, weights, means, covariances):
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        covariances = np.asarray(covariances, dtype=np.float64)
        if weights.ndim != 2:
            raise ValueError(f"weights must have shape (n, K), got {weights.shape}")
        n_rows, n_components = weights.shape
        if means.ndim != 3 or means.shape[:2] != (n_rows, n_components):
            raise ValueError(
                f"means must have shape (n, K, D) = ({n_rows}, {n_components}, D), got {means.shape}"
            )
        n_dims = means.shape[2]
        if n_dims not in SUPPORTED_DIMS:
            raise ValueError(f"D must be one of {SUPPORTED_DIMS}, got means of shape {means.shape}")
        if covariances.shape != (n_rows, n_components, n_dims, n_dims):
            raise ValueError(
                f"covariances must have shape (n, K, D, D) = ({n_rows}, {n_components}, "
                f"{n_dims}, {n_dims}), got {covariances.shape}"
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("weights must be finite and non-negative")
        totals = weights.sum(axis=1)
        if np.any(np.abs(totals - 1.0) > 1e-6):
            raise ValueError(f"each row of weights must sum to 1, got sums in [{totals.min()}, {totals.max()}]")
        if not np.all(np.isfinite(covariances)):
            raise ValueError("covariances must be finite")
        variances = np.diagonal(covariances, axis1=-2, axis2=-1)
        if np.any(variances <= 0):
            raise ValueError("covariances must have positive variances on the diagonal")
        sigmas = np.sqrt(variances)
        rho = None
        if n_dims == 2:
            off_diagonal = covariances[..., 0, 1]
            if not np.allclose(off_diagonal, covariances[..., 1, 0], rtol=1e-9, atol=0.0):
                raise ValueError("covariances must be symmetric")
            rho = off_diagonal / (sigmas[..., 0] * sigmas[..., 1])
            if np.any(np.abs(rho) >= 1.0):
                raise ValueError("covariances must be positive definite (|correlation| < 1)")
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights / totals[:, None])
        self._initialise(log_weights, means, sigmas, rho)

    @classmethod
    def from_components(cls, log_weights, means, sigmas, rho=None) -> "GaussianMixture":
        """Mixture from per-component scales instead of covariance matrices.

        Args:
            log_weights: ``(n, K)`` log weights, normalised here (log-softmax),
                so unnormalised logits are fine; ``-inf`` switches a component off.
            means: ``(n, K, D)``.
            sigmas: ``(n, K, D)`` positive standard deviations (target units).
            rho: ``(n, K)`` correlations in (-1, 1) for ``D == 2``; ``None`` means 0.
        """
        log_weights = np.asarray(log_weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        sigmas = np.asarray(sigmas, dtype=np.float64)
        if log_weights.ndim != 2:
            raise ValueError(f"log_weights must have shape (n, K), got {log_weights.shape}")
        if means.ndim != 3 or means.shape[:2] != log_weights.shape or means.shape[2] not in SUPPORTED_DIMS:
            raise ValueError(f"means must have shape (n, K, D) with D in {SUPPORTED_DIMS}, got {means.shape}")
        if sigmas.shape != means.shape:
            raise ValueError(f"sigmas must have the shape of means {means.shape}, got {sigmas.shape}")
        if np.any(~(sigmas > 0)) or not np.all(np.isfinite(sigmas)):
            raise ValueError("sigmas must be positive and finite")
        if np.any(np.isnan(log_weights)) or np.any(log_weights == np.inf):
            raise ValueError("log_weights must not be NaN or +inf")
        if np.any(np.all(log_weights == -np.inf, axis=1)):
            raise ValueError("each row needs at least one component with finite log weight")
        if means.shape[2] == 2:
            rho = np.zeros(log_weights.shape) if rho is None else np.asarray(rho, dtype=np.float64)
            if rho.shape != log_weights.shape:
                raise ValueError(f"rho must have shape (n, K) = {log_weights.shape}, got {rho.shape}")
            if np.any(~(np.abs(rho) < 1.0)):
                raise ValueError("rho must lie in (-1, 1)")
        elif rho is not None:
            raise ValueError("rho is only used for D == 2")
        mixture = cls.__new__(cls)
        mixture._initialise(_log_softmax(log_weights), means, sigmas, rho)
        return mixture

    def _initialise(self, log_weights, means, sigmas, rho) -> None:
        self._log_weights = log_weights
        self._means = means
        self._sigmas = sigmas
        n_rows, n_components, n_dims = means.shape
        self._rho = np.zeros((n_rows, n_components)) if rho is None else rho
        if n_dims == 1:
            self._covariances = (sigmas * sigmas)[..., None]
        else:
            sx, sy, r = sigmas[..., 0], sigmas[..., 1], self._rho
            cov = np.empty((n_rows, n_components, 2, 2))
            cov[..., 0, 0] = sx * sx
            cov[..., 1, 1] = sy * sy
            cov[..., 0, 1] = cov[..., 1, 0] = r * sx * sy
            self._covariances = cov

    # -- basic attributes ---------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Batch size ``n``."""
        return self._means.shape[0]

    @property
    def n_components(self) -> int:
        """Components per mixture ``K``."""
        return self._means.shape[1]

    @property
    def n_dims(self) -> int:
        """Dimension ``D`` of the target (1 or 2)."""
        return self._means.shape[2]

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows) -> "GaussianMixture":
        """Rows of the batch (an int keeps a batch of one)."""
        if isinstance(rows, (int, np.integer)):
            rows = slice(rows, rows + 1 if rows != -1 else None)
        mixture = GaussianMixture.__new__(GaussianMixture)
        rho = self._rho[rows] if self.n_dims == 2 else None
        mixture._initialise(self._log_weights[rows], self._means[rows], self._sigmas[rows], rho)
        return mixture

    def __repr__(self) -> str:
        return f"GaussianMixture(n={self.n_rows}, K={self.n_components}, D={self.n_dims})"

    @property
    def log_weights(self) -> np.ndarray:
        """``(n, K)`` normalised log weights."""
        return self._log_weights

    @property
    def weights(self) -> np.ndarray:
        """``(n, K)`` mixture weights."""
        return np.exp(self._log_weights)

    @property
    def means(self) -> np.ndarray:
        """``(n, K, D)`` component means."""
        return self._means

    @property
    def sigmas(self) -> np.ndarray:
        """``(n, K, D)`` component standard deviations."""
        return self._sigmas

    @property
    def rho(self) -> np.ndarray:
        """``(n, K)`` component correlations (zeros for ``D == 1``)."""
        return self._rho

    @property
    def covariances(self) -> np.ndarray:
        """``(n, K, D, D)`` component covariance matrices."""
        return self._covariances

    # -- input handling -----------------------------------------------------
    def _points(self, x) -> Tuple[np.ndarray, Tuple[int, ...]]:
        """Bring points to shape ``(..., n, D)``; returns them and the leading shape."""
        x = np.asarray(x, dtype=np.float64)
        n, d = self.n_rows, self.n_dims
        if d == 1:
            if x.ndim == 0:
                x = x.reshape(1, 1)
            elif x.ndim >= 2 and x.shape[-2:] == (n, 1):
                pass  # already (..., n, 1)
            elif x.shape[-1] in (n, 1):
                x = x[..., None]
            else:
                raise ValueError(f"1D points must have shape (..., n) or (..., n, 1) with n = {n}, got {x.shape}")
        else:
            if x.ndim < 2 or x.shape[-1] != 2 or x.shape[-2] not in (n, 1):
                raise ValueError(f"2D points must have shape (..., n, 2) with n = {n}, got {x.shape}")
        x = np.broadcast_to(x, x.shape[:-2] + (n, d))
        return x, x.shape[:-2]

    def _require_dims(self, n_dims: int, method: str) -> None:
        if self.n_dims != n_dims:
            raise ValueError(f"{method} needs a {n_dims}D mixture, this one is {self.n_dims}D")

    # -- densities ----------------------------------------------------------
    def component_log_prob(self, x) -> np.ndarray:
        """Log density of each component (not weighted): ``(..., n, K)``; ``x`` as in :meth:`log_prob`."""
        return self._component_log_prob(self._points(x)[0])

    def _component_log_prob(self, x: np.ndarray) -> np.ndarray:
        """Component log densities ``(..., n, K)`` at points already shaped ``(..., n, D)``."""
        return _gaussian_log_density(x, self._means, self._sigmas, self._rho)

    def log_prob(self, x) -> np.ndarray:
        """Log density (nats) at ``x``.

        Args:
            x: ``(n, D)`` one point per row, ``(m, n, D)`` m points per row; for
                ``D == 1`` also ``(n,)`` / ``(m, n)``. A row axis of length 1
                broadcasts to all rows.
        Returns:
            ``(n,)`` or ``(m, n)``.
        """
        return self._log_prob(self._points(x)[0])

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        return _logsumexp(self._component_log_prob(x) + self._log_weights, axis=-1)

    def prob(self, x) -> np.ndarray:
        """Density ``exp(log_prob(x))`` per target unit**D; shapes as :meth:`log_prob`."""
        return np.exp(self.log_prob(x))

    # -- moments and mode -----------------------------------------------------
    def mean(self) -> np.ndarray:
        """``(n, D)`` mixture mean ``sum_k w_k mu_k``."""
        return np.einsum("nk,nkd->nd", self.weights, self._means)

    def covariance(self) -> np.ndarray:
        """``(n, D, D)`` mixture covariance by the law of total variance.

        ``sum_k w_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T)`` with ``mu`` the mixture mean.
        """
        spread = self._means - self.mean()[:, None, :]
        outer = spread[..., :, None] * spread[..., None, :]
        return np.einsum("nk,nkij->nij", self.weights, self._covariances + outer)

    def mode(self, max_iterations: int = 200, tolerance: float = 1e-10) -> np.ndarray:
        """``(n, D)`` global mode (highest density point) of each mixture.

        Hill-climbs from every component mean at once (vectorised over all
        ``K * n`` starts) and keeps the end point with the highest density. Each
        step takes the better (by density) of
        * the fixed point step for stationary points of a Gaussian mixture
          (Carreira-Perpinan 2000), ``x <- (sum_k r_k P_k)^{-1} sum_k r_k P_k mu_k``
          with ``P_k`` the component precisions and ``r_k(x)`` the
          responsibilities, which is robust but slow near flat modes, and
        * a Newton step on ``log p`` where its Hessian is negative definite
          (quadratic convergence near a mode).
        A start stops once it moves less than ``tolerance`` times the smallest
        component sigma of its row.
        """
        n_rows, n_components, n_dims = self._means.shape
        precisions = np.linalg.inv(self._covariances)  # (n, K, D, D)
        scale = self._sigmas.min(axis=(1, 2))  # (n,)
        rows = np.tile(np.arange(n_rows), n_components)  # start p climbs in row rows[p]
        x = np.swapaxes(self._means, 0, 1).reshape(-1, n_dims).copy()  # (K * n, D)
        active = np.ones(x.shape[0], dtype=bool)
        for _ in range(max_iterations):
            climbing = np.flatnonzero(active)
            if climbing.size == 0:
                break
            row = rows[climbing]
            x_now = x[climbing]
            x_next = self._mode_step(x_now, row, precisions)
            moved = np.max(np.abs(x_next - x_now), axis=-1) / scale[row]
            x[climbing] = x_next
            active[climbing[moved <= tolerance]] = False
        candidates = x.reshape(n_components, n_rows, n_dims)
        best = np.argmax(self._log_prob(candidates), axis=0)  # (n,)
        return candidates[best, np.arange(n_rows)]

    def _mode_step(self, x: np.ndarray, row: np.ndarray, precisions: np.ndarray) -> np.ndarray:
        """One hill-climbing step for points ``x (A, D)`` in rows ``row (A,)``; see :meth:`mode`."""
        means, sigmas, rho = self._means[row], self._sigmas[row], self._rho[row]
        log_weights, precision = self._log_weights[row], precisions[row]  # (A, K), (A, K, D, D)

        def log_density(points):
            return _logsumexp(_gaussian_log_density(points, means, sigmas, rho) + log_weights, axis=-1)

        log_joint = _gaussian_log_density(x, means, sigmas, rho) + log_weights
        resp = np.exp(log_joint - _logsumexp(log_joint, axis=-1, keepdims=True))  # (A, K)
        pull = np.einsum("akij,akj->aki", precision, means - x[:, None, :])  # P_k (mu_k - x)
        gradient = np.einsum("ak,aki->ai", resp, pull)  # d log p / dx
        curvature = np.einsum("ak,akij->aij", resp, precision)  # sum_k r_k P_k, positive definite
        fixed_point = x + np.linalg.solve(curvature, gradient[..., None])[..., 0]
        hessian = (np.einsum("ak,aki,akj->aij", resp, pull, pull) - curvature
                   - gradient[:, :, None] * gradient[:, None, :])
        if x.shape[-1] == 1:
            concave = hessian[:, 0, 0] < 0
        else:
            concave = (hessian[:, 0, 0] < 0) & (np.linalg.det(hessian) > 0)
        safe_hessian = np.where(concave[:, None, None], hessian, -np.eye(x.shape[-1]))
        newton = x - np.linalg.solve(safe_hessian, gradient[..., None])[..., 0]
        use_newton = concave & np.all(np.isfinite(newton), axis=-1)
        use_newton &= log_density(newton) >= log_density(fixed_point)
        step = np.where(use_newton[:, None], newton, fixed_point)
        return np.where(np.isfinite(step), step, x)

    # -- 1D: CDF and quantiles ---------------------------------------------
    def cdf(self, x) -> np.ndarray:
        """1D only: ``P(X <= x)``. ``x`` as in :meth:`log_prob` (``(n,)`` or ``(m, n)``)."""
        self._require_dims(1, "cdf")
        x, _ = self._points(x)
        z = (x - self._means[..., 0]) / self._sigmas[..., 0]  # (..., n, K) by broadcasting (n,1)-(n,K)
        return np.clip(np.sum(self.weights * ndtr(z), axis=-1), 0.0, 1.0)

    def quantile(self, q, max_iterations: int = 200) -> np.ndarray:
        """1D only: ``x`` with ``cdf(x) = q``.

        Args:
            q: probabilities in [0, 1], broadcast against ``(n,)``: a scalar gives
                ``(n,)``, an array ``(m, 1)`` gives ``(m, n)`` (m levels per row).
        Returns:
            The quantiles, ``-inf`` for ``q = 0`` and ``inf`` for ``q = 1``.

        Safeguarded Newton iteration inside the bracket
        ``[min_k Q_k(q), max_k Q_k(q)]`` of the component quantiles (which always
        contains the mixture quantile); steps leaving the bracket are replaced by
        bisection. Converges to ``1e-10`` times the row's smallest sigma (plus a
        few ulp of ``x``).
        """
        self._require_dims(1, "quantile")
        q = np.asarray(q, dtype=np.float64)
        if np.any(~((q >= 0) & (q <= 1))):
            raise ValueError("q must lie in [0, 1]")
        q = np.broadcast_to(q, np.broadcast_shapes(q.shape, (self.n_rows,)))
        means, sigmas = self._means[..., 0], self._sigmas[..., 0]
        weights = self.weights
        inside = np.clip(q, 1e-300, 1.0 - 2.0 ** -53)
        component_quantiles = means + sigmas * ndtri(inside)[..., None]  # (..., n, K)
        active = weights > 0
        lo = np.min(np.where(active, component_quantiles, np.inf), axis=-1)
        hi = np.max(np.where(active, component_quantiles, -np.inf), axis=-1)
        x = np.sum(weights * component_quantiles, axis=-1)
        tolerance = 1e-10 * np.min(np.where(active, sigmas, np.inf), axis=-1)
        for _ in range(max_iterations):
            z = (x[..., None] - means) / sigmas
            excess = np.sum(weights * ndtr(z), axis=-1) - inside
            density = np.sum(weights * _normal_pdf(z) / sigmas, axis=-1)
            lo = np.where(excess < 0, x, lo)
            hi = np.where(excess > 0, x, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - excess / density
            x_next = np.where(np.isfinite(newton) & (newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
            x_next = np.where(excess == 0, x, x_next)
            step = np.abs(x_next - x)
            x = x_next
            if np.all((step <= tolerance + 4 * np.finfo(float).eps * np.abs(x)) | (hi - lo <= tolerance)):
                break
        x = np.where(q <= 0, -np.inf, x)
        return np.where(q >= 1, np.inf, x)

    # -- 2D: probabilities of regions -------------------------------------
    def prob_upper_orthant(self, a, b) -> np.ndarray:
        """2D only: ``P(X >= a, Y >= b)``, exact per component (bivariate normal CDF).

        ``a`` and ``b`` broadcast against ``(n,)`` (scalars, ``(n,)`` or ``(m, n)``);
        ``-inf`` is allowed. Returns the broadcast shape, e.g. ``(n,)``.
        """
        self._require_dims(2, "prob_upper_orthant")
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        shape = np.broadcast_shapes(a.shape, (self.n_rows,))
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
        with np.errstate(invalid="ignore"):
            h = (a[..., None] - self._means[..., 0]) / self._sigmas[..., 0]
            k = (b[..., None] - self._means[..., 1]) / self._sigmas[..., 1]
        per_component = bivariate_normal_upper(h, k, self._rho)
        return np.clip(np.sum(self.weights * per_component, axis=-1), 0.0, 1.0)

    def _normal_scores_to_points(self, u_component, z, log_weights) -> np.ndarray:
        """Map uniforms ``(m, n)`` and standard normal scores ``(m, n, D)`` to points ``(m, n, D)``.

        The uniform picks the component by inverting the cumulative weights
        (``exp(log_weights)``, ``(n, K)``); the scores go through that component's
        mean and Cholesky factor.
        """
        n_rows, n_components, n_dims = self._means.shape
        cumulative = np.cumsum(np.exp(log_weights), axis=-1)
        cumulative = cumulative / cumulative[:, -1:]
        component = np.zeros(np.broadcast_shapes(u_component.shape, (n_rows,)), dtype=np.int8)
        for boundary in range(n_components - 1):
            component += u_component >= cumulative[:, boundary]
        rho = np.broadcast_to(self._rho, (n_rows, n_components))
        points = np.empty(component.shape + (n_dims,))
        # Each component's transform over every point, kept where that component was picked:
        # element-wise work that NumPy streams, instead of gathering per-point parameters.
        for k in range(n_components):
            picked = component == k
            if not picked.any():
                continue
            mean, sigma = self._means[:, k, :], self._sigmas[:, k, :]
            x = mean[:, 0] + sigma[:, 0] * z[..., 0]
            np.copyto(points[..., 0], x, where=picked)
            if n_dims == 2:
                r = rho[:, k]
                y = mean[:, 1] + sigma[:, 1] * (r * z[..., 0] + np.sqrt((1.0 - r) * (1.0 + r)) * z[..., 1])
                np.copyto(points[..., 1], y, where=picked)
        return points

    def quasi_samples(self, m: int = 4096, seed: RngLike = 0) -> np.ndarray:
        """Randomised quasi-Monte-Carlo points ``(m, n, D)`` distributed as each row's mixture.

        A scrambled Halton set in ``1 + D`` dimensions (the same for every row):
        the first coordinate picks the component by inverting the cumulative
        weights, the others become standard normal scores via :func:`ndtri` and
        go through the component's mean and Cholesky factor. Averages over the
        points estimate expectations with error close to ``O(1/m)`` for smooth
        integrands (``O(1/sqrt(m))`` for plain sampling). Deterministic for a
        given ``seed``.
        """
        if m < 1:
            raise ValueError("m must be positive")
        if isinstance(seed, (int, np.integer)):
            uniforms, scores = _cached_quasi_set(int(m), 1 + self.n_dims, int(seed))
        else:
            uniforms = scrambled_halton(int(m), 1 + self.n_dims, seed)
            scores = ndtri(uniforms[:, 1:])
        return self._quasi_points(uniforms, scores)

    def _quasi_points(self, uniforms: np.ndarray, scores: Optional[np.ndarray] = None) -> np.ndarray:
        """Points ``(m, n, D)`` from uniforms ``(m, 1 + D)``; see :meth:`quasi_samples`.

        ``scores`` are ``ndtri(uniforms[:, 1:])`` when the caller has them already.
        """
        count = uniforms.shape[0]
        if scores is None:
            scores = ndtri(uniforms[:, 1:])
        u_component = np.broadcast_to(uniforms[:, :1], (count, self.n_rows))
        z = np.broadcast_to(scores[:, None, :], (count, self.n_rows, self.n_dims))
        return self._normal_scores_to_points(u_component, z, self._log_weights)

    def prob_region(self, g: Callable[[np.ndarray, np.ndarray], np.ndarray], t=0.0,
                    m: int = 4096, seed: RngLike = 0) -> np.ndarray:
        """2D only: ``P(g(X, Y) >= t)`` by randomised quasi-Monte-Carlo, per row.

        Args:
            g: vectorised function of the coordinates; it is called as ``g(x, y)``
                with ``x`` and ``y`` of shape ``(m_chunk, n)`` (column ``i`` belongs
                to row ``i`` of the batch) and must return values of that shape.
            t: threshold, scalar or ``(n,)``.
            m: number of quasi-random points per row.
            seed: seed of the digit scrambling; the same seed gives the same answer.
        Returns:
            ``(n,)`` probabilities: the share of the :meth:`quasi_samples` points
            with ``g >= t``. A 0/1 integrand, so the error lies between ``O(1/m)``
            and ``O(1/sqrt(m))`` depending on the region's boundary.
        """
        self._require_dims(2, "prob_region")
        if m < 1:
            raise ValueError("m must be positive")
        uniforms = scrambled_halton(int(m), 3, seed)
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n_rows,))
        hits = np.zeros(self.n_rows)
        chunk = max(1, (1 << 20) // max(1, self.n_rows * self.n_components))  # bounds memory
        for start in range(0, int(m), chunk):
            points = self._quasi_points(uniforms[start:start + chunk])
            values = np.asarray(g(points[..., 0], points[..., 1]))
            hits += np.sum(values >= t[None, :], axis=0)
        return hits / m

    # -- sampling -----------------------------------------------------------
    def _tempered_log_weights(self, temperature: float) -> np.ndarray:
        return _log_softmax(self._log_weights / temperature)

    def sample(self, m: int, rng: RngLike = None, temperature: float = 1.0) -> np.ndarray:
        """Draw ``m`` samples per row: ``(m, n, D)``.

        Temperature ``tau`` (``>= 0``) acts on both stages of the draw:
        component weights become ``w_k^(1/tau)`` (renormalised) and each
        component's covariance is scaled by ``tau`` (standard deviations by
        ``sqrt(tau)``). ``tau = 1`` samples the mixture exactly; ``tau < 1``
        concentrates on the likelier components and their centres; ``tau = 0``
        returns the mean (= mode) of the most likely component of each row,
        repeated. ``rng`` is a ``numpy.random.Generator``, a seed or ``None``.
        """
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError("temperature must be finite and >= 0")
        m = int(m)
        if temperature == 0:
            best = np.argmax(self._log_weights, axis=1)
            chosen = self._means[np.arange(self.n_rows), best]
            return np.broadcast_to(chosen, (m,) + chosen.shape).copy()
        generator = _as_generator(rng)
        u_component = generator.random((m, self.n_rows))
        z = generator.standard_normal((m, self.n_rows, self.n_dims)) * math.sqrt(temperature)
        return self._normal_scores_to_points(u_component, z, self._tempered_log_weights(temperature))

    # -- confidence ellipses (2D) -------------------------------------------
    @staticmethod
    def _chi2_2_radius(level: float) -> float:
        if not 0.0 < level < 1.0:
            raise ValueError("level must lie strictly between 0 and 1")
        # chi-square with 2 degrees of freedom: quantile = -2 ln(1 - level)
        return math.sqrt(-2.0 * math.log1p(-level))

    def ellipse_axes(self, level: float = 0.9) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """2D only: ``(semi_major, semi_minor, angle)``, each ``(n, K)``, of the
        components' ``level`` confidence ellipses.

        Semi-axes are in target units; ``angle`` is the direction of the major
        axis in radians, counter-clockwise from the +x axis, in (-pi/2, pi/2].
        The ellipse holds the share ``level`` of its component's mass
        (squared radius = chi-square(2) quantile = ``-2 ln(1 - level)``).
        """
        self._require_dims(2, "ellipse_axes")
        radius = self._chi2_2_radius(level)
        cov = self._covariances
        var_x, var_y, cov_xy = cov[..., 0, 0], cov[..., 1, 1], cov[..., 0, 1]
        half_trace = 0.5 * (var_x + var_y)
        half_gap = np.hypot(0.5 * (var_x - var_y), cov_xy)
        major = half_trace + half_gap
        # product of eigenvalues = determinant: avoids cancellation for thin ellipses
        minor = (var_x * var_y * (1.0 - self._rho) * (1.0 + self._rho)) / major
        angle = 0.5 * np.arctan2(2.0 * cov_xy, var_x - var_y)
        return radius * np.sqrt(major), radius * np.sqrt(minor), angle

    def ellipses(self, level: float = 0.9, n_vertices: int = 64) -> np.ndarray:
        """2D only: vertices ``(n, K, n_vertices, 2)`` of each component's ``level`` ellipse.

        Vertices go counter-clockwise, starting at the end of the major axis; the
        ring is open (the first vertex is not repeated). Target units.
        """
        semi_major, semi_minor, angle = self.ellipse_axes(level)
        if n_vertices < 3:
            raise ValueError("n_vertices must be at least 3")
        t = np.linspace(0.0, 2.0 * math.pi, int(n_vertices), endpoint=False)
        along = semi_major[..., None] * np.cos(t)  # (n, K, V)
        across = semi_minor[..., None] * np.sin(t)
        cos_a, sin_a = np.cos(angle)[..., None], np.sin(angle)[..., None]
        x = self._means[..., 0, None] + cos_a * along - sin_a * across
        y = self._means[..., 1, None] + sin_a * along + cos_a * across
        return np.stack([x, y], axis=-1)

    # -- proper scores -------------------------------------------------------
    def crps(self, y) -> np.ndarray:
        """1D only: continuous ranked probability score of the forecast at observation ``y``.

        Closed form for Gaussian mixtures (Grimit et al. 2006):
        ``CRPS = sum_k w_k A(y - mu_k, s_k^2) - 1/2 sum_kl w_k w_l A(mu_k - mu_l, s_k^2 + s_l^2)``
        with ``A(mu, var) = mu (2 Phi(mu/s) - 1) + 2 s phi(mu/s)``, ``s = sqrt(var)``.
        ``y`` as in :meth:`log_prob`; result ``(n,)`` or ``(m, n)``, in target units
        (lower is better).
        """
        self._require_dims(1, "crps")
        y, _ = self._points(y)
        weights = self.weights
        means, sigmas = self._means[..., 0], self._sigmas[..., 0]

        def expected_abs(mu, scale):
            # E|N(mu, scale^2)|
            z = mu / scale
            return mu * (2.0 * ndtr(z) - 1.0) + 2.0 * scale * _normal_pdf(z)

        to_observation = np.sum(weights * expected_abs(y - means, sigmas), axis=-1)
        pair_mu = means[:, :, None] - means[:, None, :]
        pair_scale = np.sqrt(sigmas[:, :, None] ** 2 + sigmas[:, None, :] ** 2)
        spread = np.einsum("nk,nl,nkl->n", weights, weights, expected_abs(pair_mu, pair_scale))
        return to_observation - 0.5 * spread

    def energy_score(self, y, m: int = 2000, rng: RngLike = None) -> np.ndarray:
        """2D only: energy score ``E||X - y|| - 1/2 E||X - X'||`` at observations ``y`` ``(n, 2)``.

        Monte-Carlo estimate from two independent sample sets ``X, X'`` of ``m``
        draws per row: ``mean_i (||X_i - y|| + ||X'_i - y||) / 2 - mean_i ||X_i - X'_i|| / 2``,
        which is unbiased with standard error ~``O(scale / sqrt(m))``. Result ``(n,)``
        in target units (lower is better); reproducible for a fixed ``rng`` seed.
        """
        self._require_dims(2, "energy_score")
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (self.n_rows, 2):
            raise ValueError(f"y must have shape (n, 2) = ({self.n_rows}, 2), got {y.shape}")
        generator = _as_generator(rng)
        first = self.sample(m, generator)
        second = self.sample(m, generator)
        to_observation = 0.5 * (np.linalg.norm(first - y, axis=-1) + np.linalg.norm(second - y, axis=-1))
        between = np.linalg.norm(first - second, axis=-1)
        return np.mean(to_observation, axis=0) - 0.5 * np.mean(between, axis=0)
