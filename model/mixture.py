"""Gaussian mixtures: the distributions the network predicts (NumPy inference side).

This module needs NumPy only (no SciPy, no TensorFlow). It holds

* the parametrisation shared with the training head
  (:mod:`.training.mixture_layers` imports its constants from here, so there is
  one source of truth),
* :func:`mixture_from_raw`, the NumPy mirror of the head transform, and
* :class:`GaussianMixture`, a batch of ``n`` mixtures of ``K`` Gaussians in
  ``D = 1`` or ``D = 2`` dimensions with densities, moments, mode, CDF/quantiles
  (1D), orthant and region probabilities (2D), random and quasi-random
  sampling, confidence ellipses and proper scores (CRPS, energy score),
* the special functions these need, written here in vectorised NumPy:
  :func:`erfc`, :func:`ndtr`, :func:`ndtri`, :func:`bivariate_normal_upper`,
  and the quasi-random :func:`scrambled_halton` point set.

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
from typing import Callable, Optional, Tuple, Union

import numpy as np

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
    "erfc",
    "ndtr",
    "ndtri",
    "bivariate_normal_upper",
    "scrambled_halton",
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
_SQRT_2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
# |z| beyond this is clipped in the normal CDFs: Phi(-40) underflows to 0 anyway,
# and finite values keep the quadratures free of inf - inf.
_Z_CLIP = 40.0

RngLike = Union[None, int, np.random.Generator]


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


# --- Special functions, vectorised NumPy --------------------------------------

# erfc: Taylor series of erf below this |x|, continued fraction above. With the
# term counts below both branches agree with a double-precision reference to a
# few 1e-15 relative over the whole line (checked in test/test_mixture.py).
_ERFC_SWITCH = 1.5
_ERF_SERIES_TERMS = 32
_ERFC_FRACTION_DEPTH = 40


def erfc(x) -> np.ndarray:
    """Complementary error function ``1 - erf(x)``, elementwise, float64.

    For ``|x| < 1.5``: ``erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!!``
    (all terms positive, so no cancellation inside the sum).
    For ``|x| >= 1.5``: the even part of Laplace's continued fraction,
    ``sqrt(pi) exp(x^2) erfc(x) = 2x / (2x^2+1 - 1*2/(2x^2+5 - 3*4/(2x^2+9 - ...)))``,
    evaluated bottom-up at fixed depth. Negative arguments use
    ``erfc(-x) = 2 - erfc(x)``. Relative accuracy ~1e-14.
    """
    x = np.asarray(x, dtype=np.float64)
    ax = np.minimum(np.abs(x), 30.0)  # erfc(30) underflows; avoids inf/inf below
    result = np.empty_like(ax)

    small = ax < _ERFC_SWITCH
    xs = ax[small]
    x2 = xs * xs
    term = xs.copy()
    total = xs.copy()
    for n in range(1, _ERF_SERIES_TERMS):
        term = term * (2.0 * x2 / (2 * n + 1))
        total = total + term
    result[small] = 1.0 - (2.0 / _SQRT_PI) * np.exp(-x2) * total

    xl = ax[~small]
    two_x2 = 2.0 * xl * xl
    tail = np.zeros_like(xl)
    for n in range(_ERFC_FRACTION_DEPTH, 0, -1):
        tail = ((2 * n - 1) * (2 * n)) / (two_x2 + 1.0 + 4 * n - tail)
    result[~small] = np.exp(-xl * xl) / _SQRT_PI * (2.0 * xl / (two_x2 + 1.0 - tail))

    result = np.where(x < 0, 2.0 - result, result)
    return np.where(np.isnan(x), np.nan, result)


def ndtr(z) -> np.ndarray:
    """Standard normal CDF ``Phi(z) = erfc(-z / sqrt(2)) / 2``, elementwise."""
    return 0.5 * erfc(-np.asarray(z, dtype=np.float64) / _SQRT_2)


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z - 0.5 * _LOG_2PI)


def ndtri(p) -> np.ndarray:
    """Standard normal quantile ``Phi^{-1}(p)``, elementwise; ``0 -> -inf``, ``1 -> inf``.

    Starts from the Abramowitz & Stegun 26.2.23 rational guess (error < 4.5e-4)
    in the lower tail ``q = min(p, 1 - p)`` and refines it with three Halley steps
    on :func:`ndtr` (cubic convergence: ~1e-15 relative). ``p`` outside [0, 1]
    gives NaN.
    """
    p = np.asarray(p, dtype=np.float64)
    lower = np.minimum(p, 1.0 - p)
    q = np.clip(lower, 1e-300, 0.5)
    t = np.sqrt(-2.0 * np.log(q))
    x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t)
          / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t ** 3))
    for _ in range(3):
        step = (ndtr(x) - q) / _normal_pdf(x)
        x = x - step / (1.0 + 0.5 * x * step)
    x = np.where(p > 0.5, -x, x)
    x = np.where(lower <= 0.0, np.where(p > 0.5, np.inf, -np.inf), x)
    return np.where((p >= 0.0) & (p <= 1.0), x, np.nan)


_GAUSS_LEGENDRE_NODES, _GAUSS_LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(20)
# Below this |rho| the arcsine form is smooth enough for plain Gauss-Legendre
# (the switch point Genz (2004) uses as well).
_BVN_HIGH_CORRELATION = 0.925


def _bvn_upper_moderate(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    # Plackett: dL/drho = phi2(h, k; rho). Integrating from rho = 0 with rho = sin(theta)
    # (Drezner & Wesolowsky 1990):
    # L = Phi(-h) Phi(-k) + 1/(2 pi) int_0^asin(rho) exp(-(h^2 - 2hk sin t + k^2) / (2 cos^2 t)) dt
    theta_max = np.arcsin(rho)
    sin_t = np.sin(theta_max[..., None] * (_GAUSS_LEGENDRE_NODES + 1.0) / 2.0)
    cos2_t = (1.0 - sin_t) * (1.0 + sin_t)
    hh, kk = h[..., None], k[..., None]
    integrand = np.exp(-(hh * hh - 2.0 * hh * kk * sin_t + kk * kk) / (2.0 * cos2_t))
    integral = 0.5 * theta_max * (integrand @ _GAUSS_LEGENDRE_WEIGHTS)
    return ndtr(-h) * ndtr(-k) + integral / (2.0 * math.pi)


def _bvn_upper_high_positive(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    # For rho -> 1 integrate Plackett's identity down from rho = 1, where
    # L(h, k, 1) = Phi(-max(h, k)): L = Phi(-max(h, k)) - int_rho^1 phi2(h, k; r) dr.
    # With r = 1 - s^2 the 1/sqrt(1 - r^2) singularity cancels and
    #   int_rho^1 phi2 dr = int_0^S exp(-c / s^2) G(s^2) ds,   S = sqrt(1 - rho),
    #   c = (h - k)^2 / 4,  G(u) = exp(-(h + k)^2 / (4 (2 - u))) / (pi sqrt(2 - u)).
    # exp(-c/s^2) has a boundary layer of width ~sqrt(c) at s = 0 that quadrature
    # resolves badly, so G is expanded to second order in u and those terms are
    # integrated exactly; only the O(s^6) remainder goes to Gauss-Legendre.
    s_max = np.sqrt(1.0 - rho)
    c = 0.25 * (h - k) ** 2
    alpha = 0.25 * (h + k) ** 2
    v = np.sqrt(c) / s_max
    edge = np.exp(-v * v)
    # I_j = int_0^S exp(-c/s^2) s^(2j) ds, by parts: I_j = (S^(2j+1) e^(-c/S^2) - 2c I_(j-1)) / (2j+1)
    i0 = s_max * edge - np.sqrt(math.pi * c) * erfc(v)
    i1 = (s_max ** 3 * edge - 2.0 * c * i0) / 3.0
    i2 = (s_max ** 5 * edge - 2.0 * c * i1) / 5.0
    # log G(u) = log G0 + p u + q u^2 + O(u^3)
    g0 = np.exp(-0.5 * alpha) / (math.pi * _SQRT_2)
    p = (1.0 - alpha) / 4.0
    q = (1.0 - 2.0 * alpha) / 16.0
    g1 = g0 * p
    g2 = g0 * (q + 0.5 * p * p)
    s = s_max[..., None] * (_GAUSS_LEGENDRE_NODES + 1.0) / 2.0
    u = s * s
    g = np.exp(-alpha[..., None] / (2.0 - u)) / (math.pi * np.sqrt(2.0 - u))
    remainder = np.exp(-c[..., None] / u) * (g - g0[..., None] - g1[..., None] * u - g2[..., None] * u * u)
    integral = g0 * i0 + g1 * i1 + g2 * i2 + 0.5 * s_max * (remainder @ _GAUSS_LEGENDRE_WEIGHTS)
    return ndtr(-np.maximum(h, k)) - integral


def bivariate_normal_upper(h, k, rho) -> np.ndarray:
    """``P(Z1 >= h, Z2 >= k)`` for standard normals with correlation ``rho``, elementwise.

    Arrays broadcast together; ``|rho| < 1``; infinite ``h``/``k`` are allowed.
    Uses Plackett's identity ``dL/drho = phi2(h, k; rho)`` integrated by 20-point
    Gauss-Legendre: from ``rho = 0`` in the arcsine variable for ``|rho| < 0.925``,
    and down from ``rho = +-1`` with the boundary layer integrated analytically
    for higher ``|rho|`` (negative rho via ``L(h, k, rho) = Phi(-h) - L(h, -k, -rho)``).
    Absolute accuracy ~1e-15.
    """
    h, k, rho = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (h, k, rho)))
    h = np.clip(h, -_Z_CLIP, _Z_CLIP)
    k = np.clip(k, -_Z_CLIP, _Z_CLIP)
    result = np.empty(h.shape)
    moderate = np.abs(rho) < _BVN_HIGH_CORRELATION
    result[moderate] = _bvn_upper_moderate(h[moderate], k[moderate], rho[moderate])
    high = ~moderate
    h_high, k_high, rho_high = h[high], k[high], rho[high]
    negative = rho_high < 0
    k_flipped = np.where(negative, -k_high, k_high)
    upper = _bvn_upper_high_positive(h_high, k_flipped, np.abs(rho_high))
    result[high] = np.where(negative, ndtr(-h_high) - upper, upper)
    return np.clip(result, 0.0, 1.0)


_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def scrambled_halton(n_points: int, n_dims: int, seed: RngLike = 0) -> np.ndarray:
    """Randomised Halton points ``(n_points, n_dims)`` in the open unit cube.

    Dimension ``j`` uses the radical inverse in the ``j``-th prime base with every
    digit position passed through its own random permutation of the digits
    (random digit scrambling). Digits beyond those needed to index ``n_points``
    are permuted zeros, i.e. a random offset within the finest cell. The same
    ``seed`` gives the same points. ``n_dims <= 12``.
    """
    if n_points < 1 or not 1 <= n_dims <= len(_PRIMES):
        raise ValueError(f"need n_points >= 1 and 1 <= n_dims <= {len(_PRIMES)}")
    rng = np.random.default_rng(seed)
    index = np.arange(n_points, dtype=np.int64)
    points = np.empty((n_points, n_dims))
    for dim, base in enumerate(_PRIMES[:n_dims]):
        value = np.zeros(n_points)
        scale = 1.0 / base
        remaining = index.copy()
        # Digits until float64 resolution (~2^-60) is exhausted.
        n_digits = int(math.ceil(60 * math.log(2) / math.log(base)))
        for _ in range(n_digits):
            permutation = rng.permutation(base)
            value += permutation[remaining % base] * scale
            remaining //= base
            scale /= base
        points[:, dim] = value
    return np.clip(points, 1e-300, 1.0 - 2.0 ** -53)


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
