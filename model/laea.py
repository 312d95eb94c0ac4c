"""The oblique ellipsoidal Lambert azimuthal equal-area projection (LAEA) on WGS84, vectorised over centres.

Snyder, *Map Projections - A Working Manual*, USGS PP 1395, pp. 182-190, with the ``D`` factor so that
scale is true at the centre in both directions; every point may have its own centre (NumPy only, no
pyproj: pyproj cannot vectorise over a different projection centre per pair). The authalic latitude
is computed without cancellation near the poles and the inverse rotates in 3-D, so both stay accurate
next to the poles. :mod:`.frame` measures every pair in such a frame; :func:`laea_forward` matches
PROJ's ``+proj=laea +lat_0=lat0 +lon_0=lon0 +ellps=WGS84``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "WGS84_A",
    "WGS84_F",
    "AUTHALIC_RADIUS_M",
    "CentreParams",
    "authalic_sin_cos",
    "forward_with_params",
    "inverse_with_params",
    "forward_from_trig",
    "laea_forward",
    "laea_inverse",
]

# --------------------------------------------------------------------------
# WGS84 ellipsoid and the authalic-sphere constants that depend only on it.
# --------------------------------------------------------------------------
WGS84_A = 6378137.0  # semi-major axis, metres
WGS84_F = 1.0 / 298.257223563  # flattening
_E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
_E = np.sqrt(_E2)
# q at the pole (Snyder 3-12 with phi = 90 deg); atanh form of the log term.
_QP = 1.0 + (1.0 - _E2) * np.arctanh(_E) / _E
AUTHALIC_RADIUS_M = WGS84_A * np.sqrt(_QP / 2.0)  # radius of the authalic sphere, metres


# --------------------------------------------------------------------------
# Authalic latitude, computed without cancellation near the poles.
# --------------------------------------------------------------------------
def _authalic_complement(abs_colatitude_rad):
    """``1 - |sin(beta)|`` (beta: authalic latitude) from the geodetic colatitude.

    ``abs_colatitude_rad``: ``pi/2 - |phi|`` in radians, any shape.
    Uses ``q_p - q(s)`` rewritten so that no two nearly equal numbers are
    subtracted (atanh(a) - atanh(b) = atanh((a - b) / (1 - ab))), so the result
    keeps full relative precision right up to the pole.  Returns the same
    shape, in [0, 1].
    """
    sin_phi = np.cos(abs_colatitude_rad)
    one_minus_s = 2.0 * np.sin(0.5 * abs_colatitude_rad) ** 2
    e2s = _E2 * sin_phi
    qp_minus_q = one_minus_s * (1.0 + e2s) / (1.0 - e2s * sin_phi) + (
        (1.0 - _E2) / _E
    ) * np.arctanh(_E * one_minus_s / (1.0 - e2s))
    return qp_minus_q / _QP


def authalic_sin_cos(lat_deg):
    """(sin beta, cos beta) of the authalic latitude for geodetic ``lat_deg`` (degrees)."""
    lat_deg = np.asarray(lat_deg, dtype=np.float64)
    # 90 - |lat| is exact in degrees, so the colatitude keeps its precision at the pole.
    abs_colat = np.deg2rad(90.0 - np.abs(lat_deg))
    complement = _authalic_complement(abs_colat)
    sin_beta = np.copysign(1.0 - complement, lat_deg)
    cos_beta = np.sqrt(np.maximum(complement * (2.0 - complement), 0.0))
    return sin_beta, cos_beta


def _geodetic_lat_from_authalic(sin_beta, cos_beta):
    """Geodetic latitude (degrees) from the authalic latitude given by (sin, cos).

    Newton iterations on the colatitude chi = pi/2 - |phi| solving
    ``complement(chi) = 1 - |sin beta|``; this is well conditioned at the poles
    (where iterating on phi is not).  Starts from the authalic colatitude, which
    is within 0.13 deg; 5 quadratic steps reach machine precision.
    """
    abs_sin_beta = np.abs(sin_beta)
    target = cos_beta**2 / (1.0 + abs_sin_beta)  # = 1 - |sin beta|, stably
    chi = np.arctan2(cos_beta, abs_sin_beta)
    for _ in range(5):
        s = np.cos(chi)
        slope = (2.0 * (1.0 - _E2) / _QP) * np.sin(chi) / (1.0 - _E2 * s * s) ** 2
        residual = _authalic_complement(chi) - target
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope > 0.0, residual / slope, 0.0)
        chi = np.clip(chi - step, 0.0, np.pi / 2.0)
    return np.copysign(90.0 - np.rad2deg(chi), sin_beta)


# --------------------------------------------------------------------------
# Oblique ellipsoidal LAEA (Snyder 24-16 .. 24-31), vectorised over centres.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CentreParams:
    """Per-centre constants of the oblique LAEA; every field has the centres' shape."""

    lon0: np.ndarray  # degrees
    lat0: np.ndarray  # degrees
    sin_b1: np.ndarray  # sin of the centre's authalic latitude
    cos_b1: np.ndarray
    d: np.ndarray  # Snyder's D: x scaled by D, y by 1/D makes scale true at the centre

    @classmethod
    def from_centres(cls, lon0, lat0):
        lon0 = np.asarray(lon0, dtype=np.float64)
        lat0 = np.asarray(lat0, dtype=np.float64)
        sin_b1, cos_b1 = authalic_sin_cos(lat0)
        abs_colat = np.deg2rad(90.0 - np.abs(lat0))
        cos_phi1 = np.sin(abs_colat)
        sin_phi1 = np.cos(abs_colat)
        m1 = cos_phi1 / np.sqrt(1.0 - _E2 * sin_phi1 * sin_phi1)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = WGS84_A * m1 / (AUTHALIC_RADIUS_M * cos_b1)
        # The ratio tends to 1 at the pole, where the ellipsoid is locally round.
        d = np.where(cos_b1 > 0.0, d, 1.0)
        return cls(lon0, lat0, sin_b1, cos_b1, d)

    def take(self, index):
        """Parameters repeated per element of ``index`` (e.g. per vertex)."""
        return CentreParams(
            self.lon0[index], self.lat0[index], self.sin_b1[index],
            self.cos_b1[index], self.d[index],
        )


def _wrapped_delta_lon_rad(lon, lon0):
    """lon - lon0 wrapped to [-180, 180) degrees, in radians."""
    return np.deg2rad(np.remainder(np.asarray(lon, np.float64) - lon0 + 180.0, 360.0) - 180.0)


def forward_with_params(lon, lat, params: CentreParams):
    dlam = _wrapped_delta_lon_rad(lon, params.lon0)
    sin_b, cos_b = authalic_sin_cos(lat)
    cos_dlam = np.cos(dlam)
    with np.errstate(divide="ignore", invalid="ignore"):
        # 1 + cos(angular distance on the authalic sphere); 0 only at the antipode.
        b = AUTHALIC_RADIUS_M * np.sqrt(2.0 / (1.0 + params.sin_b1 * sin_b + params.cos_b1 * cos_b * cos_dlam))
    x = b * params.d * cos_b * np.sin(dlam)
    y = (b / params.d) * (params.cos_b1 * sin_b - params.sin_b1 * cos_b * cos_dlam)
    return x, y


def inverse_with_params(x, y, params: CentreParams):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    # Undo the D scaling: (u, v) are LAEA coordinates on the authalic sphere.
    u = x / params.d
    v = y * params.d
    rho = np.hypot(u, v)
    # Angular distance from the centre on the authalic sphere.
    ang = 2.0 * np.arcsin(np.clip(rho / (2.0 * AUTHALIC_RADIUS_M), 0.0, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        east = np.where(rho > 0.0, u / rho, 0.0)
        north = np.where(rho > 0.0, v / rho, 0.0)
    sin_ang, cos_ang = np.sin(ang), np.cos(ang)
    # Rotate in 3-D around the centre instead of Snyder's asin formula, so the
    # result stays accurate next to the poles.
    lam0 = np.deg2rad(params.lon0)
    sin_l0, cos_l0 = np.sin(lam0), np.cos(lam0)
    sb1, cb1 = params.sin_b1, params.cos_b1
    # p = cos(ang) * centre + sin(ang) * (east * e_hat + north * n_hat)
    px = cos_ang * cb1 * cos_l0 + sin_ang * (-east * sin_l0 - north * sb1 * cos_l0)
    py = cos_ang * cb1 * sin_l0 + sin_ang * (east * cos_l0 - north * sb1 * sin_l0)
    pz = cos_ang * sb1 + sin_ang * north * cb1
    horizontal = np.hypot(px, py)
    norm = np.sqrt(horizontal**2 + pz**2)
    lat = _geodetic_lat_from_authalic(pz / norm, horizontal / norm)
    lon = np.rad2deg(np.arctan2(py, px))
    return lon, lat


def laea_forward(lon, lat, lon0, lat0):
    """Oblique ellipsoidal LAEA (WGS84) forward projection.

    Parameters: ``lon``, ``lat`` point coordinates and ``lon0``, ``lat0``
    projection centres, all in degrees and mutually broadcastable.
    Returns ``(x, y)`` in metres (east, north of the centre), broadcast shape.
    Matches PROJ ``+proj=laea +lat_0=lat0 +lon_0=lon0 +ellps=WGS84``.
    """
    return forward_with_params(lon, lat, CentreParams.from_centres(lon0, lat0))


def laea_inverse(x, y, lon0, lat0):
    """Inverse of :func:`laea_forward`.

    ``x``, ``y`` in metres, ``lon0``, ``lat0`` in degrees, broadcastable.
    Returns ``(lon, lat)`` in degrees, lon in [-180, 180].
    """
    return inverse_with_params(x, y, CentreParams.from_centres(lon0, lat0))


def forward_from_trig(sin_lam, cos_lam, sin_b, cos_b, params: CentreParams):
    """As :func:`forward_with_params`, from each point's sin/cos of longitude and authalic latitude."""
    lam0 = np.deg2rad(params.lon0)
    sin_lam0, cos_lam0 = np.sin(lam0), np.cos(lam0)
    sin_dlam = sin_lam * cos_lam0 - cos_lam * sin_lam0
    cos_dlam = cos_lam * cos_lam0 + sin_lam * sin_lam0
    with np.errstate(divide="ignore", invalid="ignore"):
        b = AUTHALIC_RADIUS_M * np.sqrt(2.0 / (1.0 + params.sin_b1 * sin_b + params.cos_b1 * cos_b * cos_dlam))
    x = b * params.d * cos_b * sin_dlam
    y = (b / params.d) * (params.cos_b1 * sin_b - params.sin_b1 * cos_b * cos_dlam)
    return x, y
