"""The contestants of the yardstick: the model, and the exact samplers one would write instead.

A contestant turns n pairs in their local frames (metres) and σ (n,) into a :class:`Forecast` of
each pair's IoU distribution. The exact samplers displace B by k draws of d ~ N(0, σ²I₂) and
intersect exactly, all pairs in one batch: plain Monte Carlo, or randomised quasi-Monte Carlo
(the first two Sobol' dimensions, scrambled independently per pair by a random linear matrix
and a digital shift, mapped to N(0, σ²I₂) through the inverse normal CDF). NumPy and shapely
only; a new contestant (e.g. a hybrid using overlays as control variates for the network) is a
:class:`Contestant` with its own ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import shapely

from ..datasets.synthetic import _intersection_area, _ratio, translate
from ..pairs import chunk_bounds
from ..scoring import summarise_overlap
from .metrics import model_iou_samples

try:  # SciPy's inverse normal CDF is about 15 times faster than the NumPy one the plugin carries
    from scipy.special import ndtri
except ImportError:  # pragma: no cover - QGIS without SciPy
    from ..mixture import ndtri

#: Overlays per pair of the sampler contestants: 1, 2, 4, ..., 256.
K_VALUES = tuple(2 ** j for j in range(9))
#: IoU threshold of P(IoU ≥ threshold).
THRESHOLD = 0.5
#: Bits of the scrambled Sobol' coordinates (int64 arithmetic, so NumPy 1.x and 2.x agree).
SOBOL_BITS = 31
#: Vertices per GEOS call of :func:`displaced_iou` (bounds the memory of the displaced copies).
OVERLAY_CHUNK_VERTICES = 2_000_000


@dataclass
class Forecast:
    """A contestant's answer for n pairs.

    iou_mean, p_iou : (n,) mean IoU and P(IoU ≥ :data:`THRESHOLD`).
    samples : (n, m) IoU samples of the predictive distribution, or a callable giving them
        (the model's are drawn from its mixture after the timed part).
    """

    iou_mean: np.ndarray
    p_iou: np.ndarray
    samples: object

    def iou_samples(self):
        return self.samples() if callable(self.samples) else self.samples


@dataclass(frozen=True)
class Contestant:
    """name; family ("model", "qmc", "mc": one accuracy-cost frontier per family); overlays: exact
    overlays per pair it may spend (0 for the model); predict(a, b, sigma, rng) -> Forecast."""

    name: str
    family: str
    overlays: int
    predict: Callable


# ==========================================================================
# Displacements.
# ==========================================================================
def _sobol_columns(m):
    """(2, m) int64 generator columns of Sobol' dimensions 1 and 2 (column j: digit j of the index)."""
    shift = SOBOL_BITS - 1 - np.arange(m)
    direction = [1]
    for _ in range(1, m):  # m ≤ 8 digits: dimension 2's recurrence m_i = 2 m_(i-1) XOR m_(i-1)
        direction.append(direction[-1] ^ (direction[-1] << 1))
    return np.stack([np.ones(m, np.int64) << shift, np.asarray(direction, np.int64) << shift])


def _parity(x):
    for shift in (16, 8, 4, 2, 1):
        x = x ^ (x >> shift)
    return x & 1


def sobol_points(n, k, rng, scramble=True):
    """(n, k, 2) points of the 2-D Sobol' sequence in (0, 1)², scrambled independently per row.

    Each row gets its own random lower-triangular binary matrix (unit diagonal) applied to the
    generator matrices and its own digital shift (Matoušek's linear matrix scrambling, as
    ``scipy.stats.qmc.Sobol``), so for k = 2^m every row is a (0, m, 2)-net and uniform on the
    square. ``scramble=False`` gives the plain sequence (every coordinate plus 2^-32, so none is 0).
    """
    m = max(1, int(np.ceil(np.log2(max(int(k), 1)))))
    columns = np.broadcast_to(_sobol_columns(m), (n, 2, m))
    top = np.int64(1) << SOBOL_BITS
    if scramble:
        position = SOBOL_BITS - 1 - np.arange(SOBOL_BITS)  # row r of the matrix acts on bit `position[r]`
        above = (top - 1) ^ ((np.int64(1) << (position + 1)) - 1)  # the more significant bits
        rows = (rng.integers(0, top, (n, 2, SOBOL_BITS)) & above) | (np.int64(1) << position)
        bits = _parity(rows[..., :, None] & columns[..., None, :])  # (n, 2, bits, m)
        columns = np.sum(bits << position[:, None], axis=2)
        shift = rng.integers(0, top, (n, 2))
    else:
        shift = np.zeros((n, 2), np.int64)
    index = np.arange(k) ^ (np.arange(k) >> 1)  # Gray-code order, as scipy's (the same set for k = 2^m)
    digits = (index[:, None] >> np.arange(m)) & 1  # (k, m)
    x = np.bitwise_xor.reduce(np.where(digits.astype(bool), columns[:, :, None, :], 0), axis=-1)
    return np.moveaxis((x ^ shift[..., None]) + 0.5, 1, 2) / float(top)


def qmc_displacements(sigma, k, rng):
    """(n, k, 2) metres: scrambled Sobol' points through the inverse normal CDF, times σ (n,)."""
    sigma = np.asarray(sigma, float)
    return sigma[:, None, None] * ndtri(sobol_points(len(sigma), k, rng))


def mc_displacements(sigma, k, rng):
    """(n, k, 2) metres: independent N(0, σ²I₂) draws."""
    sigma = np.asarray(sigma, float)
    return sigma[:, None, None] * rng.standard_normal((len(sigma), k, 2))


# ==========================================================================
# Exact overlays.
# ==========================================================================
def displaced_iou(a, b, d):
    """(n, k) IoU of a and b + d[:, j], for (n,) valid polygons and (n, k, 2) displacements (metres).

    Batched GEOS calls (cut by vertex count); displacements whose bounding boxes do not meet
    are 0 without an overlay, as :func:`..datasets.synthetic.monte_carlo_overlap` does.
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n, k = d.shape[:2]
    area_a, area_b = np.nan_to_num(shapely.area(a)), np.nan_to_num(shapely.area(b))
    ba, bb = shapely.bounds(a)[:, None, :], shapely.bounds(b)[:, None, :]
    meet = ((bb[..., 0] + d[..., 0] <= ba[..., 2]) & (bb[..., 2] + d[..., 0] >= ba[..., 0])
            & (bb[..., 1] + d[..., 1] <= ba[..., 3]) & (bb[..., 3] + d[..., 1] >= ba[..., 1]))
    meet &= ((area_a > 0) & (area_b > 0))[:, None]
    rows, cols = np.nonzero(meet)
    inter = np.zeros((n, k))
    vertices = shapely.get_num_coordinates(a) + shapely.get_num_coordinates(b)
    for start, stop in chunk_bounds(vertices[rows], OVERLAY_CHUNK_VERTICES):
        r, c = rows[start:stop], cols[start:stop]
        with np.errstate(invalid="ignore"):  # GEOS's NaN warnings for slivers; areas stay finite
            inter[r, c] = _intersection_area(a[r], translate(b[r], d[r, c]))
    inter = np.minimum(inter, np.minimum(area_a, area_b)[:, None])
    return _ratio(inter, area_a[:, None] + area_b[:, None] - inter)


def exact_iou(a, b):
    """(n,) IoU of the undisplaced pairs: one batched exact overlay per pair (the yardstick's cost unit)."""
    area_a, area_b = np.nan_to_num(shapely.area(a)), np.nan_to_num(shapely.area(b))
    with np.errstate(invalid="ignore"):
        inter = _intersection_area(a, b)
    return _ratio(inter, area_a + area_b - inter)


# ==========================================================================
# Contestants.
# ==========================================================================
def sampler_forecast(iou, threshold=THRESHOLD):
    """Forecast of (n, k) IoU samples: their mean, the share at or above ``threshold``, the samples."""
    return Forecast(iou.mean(axis=1), (iou >= threshold).mean(axis=1), iou)


def qmc_contestant(k, threshold=THRESHOLD):
    """Randomised QMC with k exact overlays per pair ("QMC-k")."""
    def predict(a, b, sigma, rng):
        return sampler_forecast(displaced_iou(a, b, qmc_displacements(sigma, k, rng)), threshold)

    return Contestant(f"QMC-{k}", "qmc", int(k), predict)


def mc_contestant(k, threshold=THRESHOLD):
    """Plain Monte Carlo with k exact overlays per pair ("MC-k")."""
    def predict(a, b, sigma, rng):
        return sampler_forecast(displaced_iou(a, b, mc_displacements(sigma, k, rng)), threshold)

    return Contestant(f"MC-{k}", "mc", int(k), predict)


def model_contestant(model, samples=1024, threshold=THRESHOLD):
    """The model as the plugin runs it: ``predict_frames`` then ``summarise_overlap``; its predictive
    samples are ``samples`` QMC points of the mixture (:func:`.metrics.model_iou_samples`), drawn on demand."""
    def predict(a, b, sigma, rng):
        overlap, _ = model.predict_frames(a, b, sigma)
        summary = summarise_overlap(overlap, threshold)
        return Forecast(summary.iou_mean, summary.p_iou, lambda: model_iou_samples(overlap, samples))

    return Contestant("model", "model", 0, predict)


def default_contestants(model, ks=K_VALUES, model_samples=1024, threshold=THRESHOLD):
    """The model, then QMC-k and MC-k for every k in ``ks``."""
    return ([model_contestant(model, model_samples, threshold)] + [qmc_contestant(k, threshold) for k in ks]
            + [mc_contestant(k, threshold) for k in ks])
