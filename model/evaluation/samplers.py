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

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import shapely

from ..overlap import intersection_area, ratio, translate
from ..parallel import chunk_bounds
from ..quasirandom import sobol_points
from ..scoring import summarise_overlap
from .metrics import model_iou_samples

try:  # SciPy's inverse normal CDF is about 15 times faster than the NumPy one the plugin carries
    from scipy.special import ndtri
except ImportError:  # pragma: no cover - QGIS without SciPy
    from ..special import ndtri

#: Overlays per pair of the sampler contestants: 1, 2, 4, ..., 256.
K_VALUES = tuple(2 ** j for j in range(9))
#: Shifts per pair of the exact-kernel contestants (:mod:`..shift_overlap`, no GEOS per shift): 8, 16, ..., 1024.
EXACT_K_VALUES = tuple(2 ** j for j in range(3, 11))
#: IoU threshold of P(IoU ≥ threshold).
THRESHOLD = 0.5
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
    are 0 without an overlay, as :func:`..overlap.monte_carlo_overlap` does.
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
            inter[r, c] = intersection_area(a[r], translate(b[r], d[r, c]))
    inter = np.minimum(inter, np.minimum(area_a, area_b)[:, None])
    return ratio(inter, area_a[:, None] + area_b[:, None] - inter)


def exact_iou(a, b):
    """(n,) IoU of the undisplaced pairs: one batched exact overlay per pair (the yardstick's cost unit)."""
    area_a, area_b = np.nan_to_num(shapely.area(a)), np.nan_to_num(shapely.area(b))
    with np.errstate(invalid="ignore"):
        inter = intersection_area(a, b)
    return ratio(inter, area_a + area_b - inter)


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
    """The model as the plugin scores and matches: ``predict_frames`` without the centroid (which only the overlap
    location reads), then ``summarise_overlap``; its predictive samples are ``samples`` QMC points of the mixture
    (:func:`.metrics.model_iou_samples`), drawn on demand."""
    def predict(a, b, sigma, rng):
        overlap, _ = model.predict_frames(a, b, sigma, centroid=False)
        summary = summarise_overlap(overlap, threshold)
        return Forecast(summary.iou_mean, summary.p_iou, lambda: model_iou_samples(overlap, samples))

    return Contestant("model", "model", 0, predict)


def network_contestant(model, samples=1024, threshold=THRESHOLD):
    """The network's own overlap head at σ > 0 (``sigma_path="network"``: the model file's mixture, which the
    plugin no longer runs), as the ablation: what the network adds over the best method without it."""
    def predict(a, b, sigma, rng):
        network = copy.copy(model)  # shares the loaded network; only the σ > 0 path differs
        network.sigma_path = "network"
        return model_contestant(network, samples, threshold).predict(a, b, sigma, rng)

    return Contestant("network", "network", 0, predict)


def sweep_contestant(points=256, controls=0, threshold=THRESHOLD):
    """The boundary-sweep surrogate alone (:mod:`..sweep`) at ``points`` QMC displacements ("sweep"), or with
    ``controls`` exact overlays at the first of those points as control variates ("sweep+CV-k").

    Without controls it spends no overlay beyond A ∩ B at d = 0 (inside the sweep). With k controls, the mean
    IoU and P(IoU ≥ threshold) are the surrogate's plus the mean residual (exact − surrogate) at the k points;
    the predictive samples stay the surrogate's (shifting them by the residual narrowed the intervals on the
    validation pairs). Simplification to model geometries is included, as for the model.
    """
    from ..preparation import model_geometry
    from ..sweep import build_sweep

    def predict(a, b, sigma, rng):
        a, b = model_geometry(a), model_geometry(b)
        d = qmc_displacements(sigma, points, rng)
        iou = build_sweep(a, b, sigma).covers(d)[2]
        mean, p = iou.mean(axis=1), (iou >= threshold).mean(axis=1)
        if controls:
            exact = displaced_iou(a, b, d[:, :controls])
            residual = (exact - iou[:, :controls]).mean(axis=1)
            mean = np.clip(mean + residual, 0.0, 1.0)
            hits = (exact >= threshold).mean(axis=1) - (iou[:, :controls] >= threshold).mean(axis=1)
            p = np.clip(p + hits, 0.0, 1.0)
        return Forecast(mean, p, iou)

    name = "sweep" if not controls else f"sweep+CV-{controls}"
    return Contestant(name, "sweep", int(controls), predict)


def exact_kernel_contestant(k, control=False, threshold=THRESHOLD):
    """Randomised QMC at k shifts with the exact overlap kernel of :mod:`..shift_overlap` ("exact-QMC-k"), and
    with the exact expected overlap as a control variate ("exact-QMC-k+CV").

    The shifts are those of QMC-k (scrambled Sobol' through the inverse normal CDF); the overlap at each is
    exact, without GEOS. With the control, the mean IoU and P(IoU ≥ threshold) are corrected by
    β (E|A ∩ (B + d)| − mean overlap of the k shifts), β each pair's least-squares slope of the IoU (or of
    the indicator) on the overlap over its k shifts; the predictive samples stay the k exact IoUs.
    """
    from ..shift_overlap import expected_overlap, overlap_at_shifts, polygon_areas

    def predict(a, b, sigma, rng):
        inter = overlap_at_shifts(a, b, qmc_displacements(sigma, k, rng))
        area_a, area_b = polygon_areas(a)[:, None], polygon_areas(b)[:, None]
        iou = ratio(inter, area_a + area_b - inter)
        mean, hit = iou.mean(axis=1), (iou >= threshold)
        p = hit.mean(axis=1)
        if control:
            centred = inter - inter.mean(axis=1, keepdims=True)
            spread = np.mean(centred * centred, axis=1)
            gap = expected_overlap(a, b, sigma) - inter.mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(spread > 0.0, gap / np.where(spread > 0.0, spread, 1.0), 0.0)
            mean = np.clip(mean + scale * np.mean((iou - mean[:, None]) * centred, axis=1), 0.0, 1.0)
            p = np.clip(p + scale * np.mean((hit - p[:, None]) * centred, axis=1), 0.0, 1.0)
        return Forecast(mean, p, iou)

    name = f"exact-QMC-{k}" + ("+CV" if control else "")
    return Contestant(name, "exact_cv" if control else "exact", int(k), predict)


def default_contestants(model, ks=K_VALUES, model_samples=1024, threshold=THRESHOLD, sweep_controls=(0, 2, 4),
                        exact_ks=EXACT_K_VALUES):
    """The model (the plugin's σ > 0 path) and its network's own overlap head, then QMC-k and MC-k for every k in
    ``ks``, then the sweep surrogate with 0, 2 and 4 controls,
    then the exact-kernel QMC-k for every k in ``exact_ks``, without and with the exact mean as a control."""
    return ([model_contestant(model, model_samples, threshold), network_contestant(model, model_samples, threshold)]
            + [qmc_contestant(k, threshold) for k in ks]
            + [mc_contestant(k, threshold) for k in ks]
            + [sweep_contestant(controls=k, threshold=threshold) for k in sweep_controls]
            + [exact_kernel_contestant(k, False, threshold) for k in exact_ks]
            + [exact_kernel_contestant(k, True, threshold) for k in exact_ks])
