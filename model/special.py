"""Special functions of the normal distribution, in vectorised NumPy only (no SciPy: not every QGIS has it).

:func:`erfc` (series and continued fraction), the normal CDF, density and quantile (:func:`ndtr`,
:func:`ndtri`, :func:`normal_cdf`, :func:`normal_sf`, :func:`normal_pdf`), the bivariate normal upper
orthant (:func:`bivariate_normal_upper`) and Owen's T (a Gauss-Legendre rule on its defining integral for
|a| ≤ 1 and the classical reflection for |a| > 1). The mixtures (:mod:`.mixture`) and the exact overlap
tools (:mod:`.shift_overlap`) build on them. Checked against SciPy in test/model/test_mixture.py and
test/model/test_special.py.
"""

import math

import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)
_SQRT_2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
# |z| beyond this is clipped in the normal CDFs: Phi(-40) underflows to 0 anyway,
# and finite values keep the quadratures free of inf - inf.
_Z_CLIP = 40.0
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: Gauss-Legendre nodes of Owen's T on [0, a], |a| ≤ 1: the integrand is analytic there, with poles at ±i.
OWENS_T_NODES = 48
#: Above this h, T(h, a) < exp(-h²/2) / 4 < 1e-60: taken as 0.
OWENS_T_ZERO_H = 16.6
_GL_X, _GL_W = np.polynomial.legendre.leggauss(OWENS_T_NODES)

# erfc: Taylor series of erf below this |x|, continued fraction above. With the
# term counts below both branches agree with a double-precision reference to a
# few 1e-15 relative over the whole line (checked in test/model/test_mixture.py).
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


def normal_cdf(z):
    """Φ(z), elementwise (relative accuracy ~1e-14 in both tails)."""
    return 0.5 * erfc(-np.asarray(z, dtype=float) / _SQRT_2)


def normal_sf(z):
    """1 − Φ(z) = Φ(−z), elementwise, without cancellation for large z."""
    return 0.5 * erfc(np.asarray(z, dtype=float) / _SQRT_2)


def normal_pdf(z):
    """φ(z), elementwise."""
    z = np.asarray(z, dtype=float)
    return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def _owens_t_small_a(h, a):
    """T(h, a) for |a| ≤ 1 (a may be negative: T is odd in a), by Gauss-Legendre on [0, a]."""
    x = 0.5 * a[..., None] * (_GL_X + 1.0)
    one_plus = 1.0 + x * x
    values = np.exp(-0.5 * (h * h)[..., None] * one_plus) / one_plus
    return 0.5 * a * (values @ _GL_W) / (2.0 * math.pi)


def owens_t(h, a):
    """Owen's T function T(h, a) = (1/2π) ∫₀ᵃ exp(−h²(1 + x²)/2) / (1 + x²) dx, elementwise.

    h, a : broadcastable arrays; a may be ±inf (T(h, ±∞) = ±(1 − Φ(|h|))/2). Absolute accuracy
    about 1e-16 (T ≤ 1/4). Even in h, odd in a. For |a| > 1 the reflection
    T(h, a) = [Φ(h)(1 − Φ(ah)) + Φ(ah)(1 − Φ(h))]/2 − T(ah, 1/a) (h, a ≥ 0) keeps the rule on |a| ≤ 1.
    """
    h, a = np.broadcast_arrays(np.abs(np.asarray(h, dtype=float)), np.asarray(a, dtype=float))
    sign = np.sign(a)
    a = np.abs(a)
    out = np.zeros(h.shape)
    small = (a <= 1.0) & (h < OWENS_T_ZERO_H)
    out[small] = _owens_t_small_a(h[small], a[small])
    large = (a > 1.0) & (h < OWENS_T_ZERO_H)
    if large.any():
        hl, al = h[large], a[large]
        with np.errstate(invalid="ignore", over="ignore"):
            ah = np.where(np.isinf(al), np.inf, al * hl)
            ah = np.where(hl == 0.0, 0.0, ah)
        inv = np.where(np.isinf(al), 0.0, 1.0 / al)
        reflect = np.zeros(hl.shape)
        keep = ah < OWENS_T_ZERO_H
        reflect[keep] = _owens_t_small_a(ah[keep], inv[keep])
        value = 0.5 * (normal_cdf(hl) * normal_sf(ah) + normal_cdf(ah) * normal_sf(hl)) - reflect
        # h = 0: T(0, a) = atan(a)/2π exactly (the reflection gives the same, less precisely).
        out[large] = np.where(hl == 0.0, np.arctan(al) / (2.0 * math.pi), value)
    return sign * out
