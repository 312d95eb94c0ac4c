"""Special functions the exact overlap tools need, in NumPy only (no SciPy: not every QGIS has it).

The normal CDF builds on :func:`.mixture.erfc`; Owen's T is a Gauss-Legendre rule on its defining
integral for |a| ≤ 1 and the classical reflection for |a| > 1. Checked against SciPy in
test/model/test_special.py.
"""

import math

import numpy as np

from .mixture import erfc

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: Gauss-Legendre nodes of Owen's T on [0, a], |a| ≤ 1: the integrand is analytic there, with poles at ±i.
OWENS_T_NODES = 48
#: Above this h, T(h, a) < exp(-h²/2) / 4 < 1e-60: taken as 0.
OWENS_T_ZERO_H = 16.6
_GL_X, _GL_W = np.polynomial.legendre.leggauss(OWENS_T_NODES)


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
