"""Scoring pairs with the model: the Python API and the summaries the algorithms write.

``load_model(path=None)`` gives an :class:`OverlapModel`; its ``predict`` takes aligned
arrays of polygons in any CRS and returns a :class:`Prediction` with the overlap
distribution of every pair.

Positional uncertainty σ is the standard deviation, per axis and in metres, of a
rigid translation of B relative to A (d ~ N(0, σ²I₂)). The predicted distributions
are those of the overlap after such a displacement; σ = 0 means the positions are
taken as exact.

IoU is a function of the two coverage fractions, IoU = ca·cb / (ca + cb − ca·cb), so
its mean, standard deviation and exceedance probabilities are integrals over the
predicted (cover_a, cover_b) mixture. They are computed by randomised quasi-Monte-
Carlo with a fixed scrambled Halton set (:data:`QMC_POINTS` points), so the same
input always gives the same numbers.
"""

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np
import shapely

from .encoding import (CERTAIN_GAP_SIGMAS, DESCRIPTOR_NAMES, N_DESCRIPTORS, TOUCH_TOLERANCE, box_gap,
                       pair_descriptors, pair_scale_and_centre)
from .frame import PairFrames, layer_to_lonlat, project_pairs
from .mixture import GaussianMixture, mixture_from_raw
from .overlap_head import UnitMixture, area_scales, baseline_logit, unit_of_covers
from .network import BUNDLED_MODEL, MixtureNetwork, ModelFileError, check_network_layout, load_model_file
from .pairs import DEFAULT_CHUNK_VERTICES, _detail_error, full_detail, pair_chunk, plan_pair_chunks
from .parallel import ordered_map
from .preparation import model_geometry, prepare_layer
from .quasirandom import sobol_points
from .shift_overlap import centroids_at_shifts, overlap_at_shifts, polygon_areas
from .special import ndtri

QMC_POINTS = 256
#: Scale of the point mass of pairs that cannot overlap (:func:`zero_where`), in cover units.
ZERO_MASS_SD = 1e-4
#: SD of the point mass at the exact covers of a pair at σ = 0.
EXACT_MASS_SD = 1e-9
QMC_SEED = 20261122
# Rows per QMC batch: QMC_POINTS × rows values per array, small enough to stay in cache
# (4096 rows ran at half the speed on a 2-core EPYC).
_QMC_ROWS = 1024
#: The product's overlap distribution at σ > 0 (issue 29: whatever wins the frontier at its budget):
#: "exact", the exact overlap (:func:`.shift_overlap.overlap_at_shifts`, no GEOS) at :data:`EXACT_SHIFTS`
#: fixed scrambled Sobol' shifts of N(0, σ²I₂) summarised as a :class:`.overlap_head.UnitMixture`, and the
#: intersection centroid from the exact first moments at the same shifts (:func:`centroid_from_shifts`), so
#: neither the descriptors nor the network are computed for pairs at σ > 0; or "network", the model file's
#: overlap and centroid heads. At σ = 0 the overlap is exact on both paths and the centroid comes from the network.
SIGMA_PATH = "exact"
EXACT_SHIFTS = 32
EXACT_SHIFT_SEED = 20261206
# Pairs per chunk in predict(): bounds memory for any n.
PREDICT_CHUNK_PAIRS = 20_000


def iou_from_covers(cover_a, cover_b):
    """IoU from the two coverage fractions (arrays of one shape), both clipped to [0, 1]."""
    ca = np.clip(cover_a, 0.0, 1.0)
    cb = np.clip(cover_b, 0.0, 1.0)
    denominator = ca + cb - ca * cb
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, ca * cb / np.where(denominator > 0, denominator, 1.0), 0.0)


@dataclass
class OverlapSummary:
    """Per-pair summaries of a predicted overlap distribution, each (n,)."""

    iou_mean: np.ndarray
    iou_sd: np.ndarray
    cover_a_mean: np.ndarray
    cover_b_mean: np.ndarray
    p_iou: np.ndarray  # P(IoU >= threshold)


def summarise_overlap(overlap: GaussianMixture, threshold=0.5, m=QMC_POINTS, seed=QMC_SEED):
    """IoU mean and SD, mean coverages and P(IoU >= threshold) of (n,) overlap mixtures.

    threshold : scalar or (n,). A :class:`.overlap_head.UnitMixture` (the u-head) is summarised exactly,
    without sampling.
    """
    if isinstance(overlap, UnitMixture):
        return OverlapSummary(*overlap.summary(threshold))
    n = len(overlap)
    threshold = np.broadcast_to(np.asarray(threshold, dtype=float), (n,))
    out = {key: np.zeros(n) for key in ("iou", "iou2", "ca", "cb", "p")}
    for start in range(0, n, _QMC_ROWS):
        rows = slice(start, min(n, start + _QMC_ROWS))
        points = overlap[rows].quasi_samples(m, seed)  # (m, rows, 2)
        ca = np.clip(points[..., 0], 0.0, 1.0)
        cb = np.clip(points[..., 1], 0.0, 1.0)
        # As iou_from_covers, for covers already clipped: the union share is 0 only where both are.
        product = ca * cb
        iou = product / np.maximum(ca + cb - product, np.finfo(float).tiny)
        out["iou"][rows] = iou.mean(axis=0)
        out["iou2"][rows] = (iou**2).mean(axis=0)
        out["ca"][rows] = ca.mean(axis=0)
        out["cb"][rows] = cb.mean(axis=0)
        out["p"][rows] = (iou >= threshold[rows][None, :]).mean(axis=0)
    sd = np.sqrt(np.maximum(out["iou2"] - out["iou"] ** 2, 0.0))
    return OverlapSummary(out["iou"], sd, out["ca"], out["cb"], out["p"])


#: Quasi-random points of the mixture behind :func:`iou_quantiles` (fixed, so answers are deterministic).
QUANTILE_POINTS = 4096


def _levels(levels):
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or np.any(~((levels >= 0) & (levels <= 1))):
        raise ValueError("levels must be a 1-D array of probabilities in [0, 1]")
    return levels


def cover_quantiles(overlap: GaussianMixture, levels, axis):
    """(n, m) quantiles of cover_a (axis 0) or cover_b (axis 1) of (n,) overlap mixtures at (m,) levels.

    Exact: the cover's marginal is a 1-D Gaussian mixture, and clipping to [0, 1] is monotone, so its
    quantile is the clipped quantile of that mixture.
    """
    levels = _levels(levels)
    if isinstance(overlap, UnitMixture):
        return overlap.cover_quantile(levels, axis)
    marginal = GaussianMixture.from_components(overlap.log_weights, overlap.means[..., axis:axis + 1],
                                               overlap.sigmas[..., axis:axis + 1])
    return np.clip(marginal.quantile(levels[:, None]), 0.0, 1.0).T


def iou_quantiles(overlap: GaussianMixture, levels, m=QUANTILE_POINTS, seed=QMC_SEED):
    """(n, m_levels) quantiles of the IoU of (n,) overlap mixtures at (m_levels,) levels in [0, 1].

    The IoU is a function of both covers, so its quantiles come from ``m`` fixed quasi-random points of
    each mixture (as :func:`summarise_overlap`), through :func:`iou_from_covers`; linear interpolation
    between order statistics. Monotone in the level.
    """
    levels = _levels(levels)
    if isinstance(overlap, UnitMixture):  # the IoU is monotone in u: exact quantiles
        return overlap.iou_quantile(levels)
    n = len(overlap)
    out = np.zeros((n, levels.size))
    for start in range(0, n, _QMC_ROWS // 4):  # (m, rows) samples per block
        rows = slice(start, min(n, start + _QMC_ROWS // 4))
        points = overlap[rows].quasi_samples(m, seed)
        iou = iou_from_covers(points[..., 0], points[..., 1])
        out[rows] = np.quantile(iou, levels, axis=0).T
    return out


@dataclass
class Prediction:
    """The model's answer for n pairs.

    iou_mean, iou_sd, cover_a_mean, cover_b_mean : (n,) summaries of the overlap
        distribution (cover_a = |A∩B|/|A|, cover_b = |A∩B|/|B|).
    overlap : the overlap distribution, one row per pair: a :class:`.overlap_head.UnitMixture` over
        u = |A∩B| / min(|A|, |B|) with atoms at 0 and 1, from which the covers and the IoU follow exactly
        (the product's exact path, :data:`SIGMA_PATH`, and the u-head), or with ``sigma_path="network"`` and
        a 2-D-head model file a GaussianMixture over (cover_a, cover_b).
    centroid : GaussianMixture over the intersection centroid in each pair's local
        frame (metres), given that the pair overlaps; meaningful where the pair can overlap. At σ > 0 on the
        exact path one Gaussian with the moments of the exact centroids at the fixed shifts
        (:func:`centroid_from_shifts`); otherwise the network's centroid head.
    frames : the pairs' local frames; ``frames.to_lonlat(x, y, pair_index)`` and
        :meth:`centroid_to_crs` lead back to geographic or layer coordinates.
    crs : the CRS the input geometries came in (or None when frames were given).
    """

    iou_mean: np.ndarray
    iou_sd: np.ndarray
    cover_a_mean: np.ndarray
    cover_b_mean: np.ndarray
    overlap: GaussianMixture
    centroid: GaussianMixture
    frames: Optional[PairFrames] = None
    crs: object = None

    def __len__(self):
        return len(self.iou_mean)

    def p_iou_at_least(self, threshold):
        """P(IoU >= threshold) per pair; threshold is a scalar or (n,)."""
        return summarise_overlap(self.overlap, threshold).p_iou

    def iou_quantile(self, levels):
        """(n, m) quantiles of each pair's IoU at (m,) levels in [0, 1] (see :func:`iou_quantiles`)."""
        return iou_quantiles(self.overlap, levels)

    def cover_a_quantile(self, levels):
        """(n, m) quantiles of each pair's cover_a = |A∩B|/|A| at (m,) levels (exact, :func:`cover_quantiles`)."""
        return cover_quantiles(self.overlap, levels, 0)

    def cover_b_quantile(self, levels):
        """(n, m) quantiles of each pair's cover_b = |A∩B|/|B| at (m,) levels (exact, :func:`cover_quantiles`)."""
        return cover_quantiles(self.overlap, levels, 1)

    def centroid_to_crs(self, x, y, pair_index, crs=None):
        """Frame metres of pairs ``pair_index`` -> coordinates in ``crs`` (default: the input CRS)."""
        from pyproj import Transformer

        lon, lat = self.frames.to_lonlat(x, y, pair_index)
        target = crs if crs is not None else self.crs
        if target is None:
            return lon, lat
        transformer = Transformer.from_crs("EPSG:4326", target, always_xy=True)
        return transformer.transform(lon, lat)


class OverlapModel:
    """A loaded model file, ready to predict."""

    def __init__(self, config, weights, path=None, sigma_path=None):
        self.config = config
        self.path = path
        self.network = _usable_network(config, weights, path)
        #: "exact" or "network": where the overlap at σ > 0 comes from (:data:`SIGMA_PATH`).
        self.sigma_path = sigma_path or SIGMA_PATH
        if self.sigma_path not in ("exact", "network"):
            raise ValueError(f"sigma_path must be 'exact' or 'network', not {self.sigma_path!r}")

    @classmethod
    def load(cls, path=None, sigma_path=None):
        path = BUNDLED_MODEL if path is None else path
        config, weights = load_model_file(path)
        return cls(config, weights, path, sigma_path)

    def predict_frames(self, a, b, sigma, model_geometries=False, areas=(None, None), centroid=True):
        """Distributions for pairs already in their local frames (metres).

        a, b : (n,) valid polygons in each pair's frame; sigma : scalar or (n,) metres.
        model_geometries : True when a and b already are model geometries (from
            :func:`.preparation.prepare_layer`), so they need no simplification here. On the exact path the
            pairs at σ > 0 are never simplified: their overlap is measured on a and b as given.
        areas : (area_a, area_b), the whole areas of spread features (:meth:`.frame.PairFrames.whole_areas`).
        centroid : False when the caller does not read the centroid (scores and matches need only the overlap):
            on the exact path the σ > 0 pairs then skip the first moments and the σ = 0 pairs the network, and
            the centroid returned is None. The overlap is the same either way, to the bit.
        Returns (overlap mixture, centroid mixture in frame metres, or None).
        """
        if self.sigma_path == "exact":
            sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (len(a),))
            if np.any(sigma > 0):  # the pairs at σ > 0 need neither the descriptors nor the network
                return self._exact_path(a, b, sigma, areas, model_geometries, centroid)
        if not model_geometries:
            a, b = model_geometry(a), model_geometry(b)
        descriptors, context = pair_descriptors(a, b, sigma, *areas)
        # σ = 0: nothing moves, so the overlap is the exact one of the model geometries: a point mass there,
        # not the network's estimate of it.
        still = (np.broadcast_to(np.asarray(sigma, dtype=float), (len(a),)) == 0) & ~context["cannot_overlap"]
        exact = context["overlap0"]
        if self.sigma_path == "exact":
            overlap = self._exact_shift_mixture(a, b, sigma, exact, still, context["cannot_overlap"])
            if not centroid:  # σ = 0 only here: the overlap is exact, no network needed
                return overlap, None
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite outputs are refused just below
            raw = self.network.raw(descriptors)
        broken = _non_finite_rows(raw)
        if broken.any():
            raise ModelFileError(
                f"The model {self.path or '(in memory)'} gives non-finite outputs for {int(broken.sum())} of "
                f"{len(broken)} pairs, so it cannot be used. Use the bundled model, or retrain.")
        if self.sigma_path != "exact" and self.network.overlap_head_kind == "unit_atoms":
            overlap = self._unit_mixture(raw.overlap, descriptors, exact, still, context["cannot_overlap"])
        elif self.sigma_path != "exact":
            overlap = mixture_from_raw(raw.overlap, self.network.overlap_components, 2)
            overlap = point_mass_where(overlap, still, np.column_stack([exact.cover_a, exact.cover_b]),
                                       EXACT_MASS_SD)
            overlap = zero_where(overlap, context["cannot_overlap"])
        if not centroid:
            return overlap, None
        centroid = mixture_from_raw(raw.centroid, self.network.centroid_components, 2)
        scale = context["scale"]
        centroid = GaussianMixture.from_components(
            centroid.log_weights,
            centroid.means * scale[:, None, None] + context["reference"][:, None, :],
            centroid.sigmas * scale[:, None, None],
            centroid.rho,
        )
        return overlap, centroid

    def _exact_path(self, a, b, sigma, areas, model_geometries=True, centroid=True):
        """:meth:`predict_frames` on the exact path for a batch holding pairs at σ > 0: those from
        :meth:`_shifted` on the geometries as given (the exact kernel needs no simplification, and a simplified
        outline would move the overlap it measures), the others (σ = 0) as before; the rows in their order."""
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        moving = sigma > 0
        rows, rest = np.flatnonzero(moving), np.flatnonzero(~moving)
        whole = [None if area is None else np.asarray(area, dtype=float) for area in areas]
        overlap, shifted_centroid = self._shifted(a[rows], b[rows], sigma[rows],
                                                  *(None if area is None else area[rows] for area in whole),
                                                  centroid=centroid)
        if not rest.size:
            return overlap, shifted_centroid
        still_overlap, still_centroid = self.predict_frames(
            a[rest], b[rest], sigma[rest], model_geometries=model_geometries,
            areas=tuple(None if area is None else area[rest] for area in whole), centroid=centroid)
        order = np.argsort(np.concatenate([rows, rest]), kind="stable")
        return (UnitMixture.concatenate([overlap, still_overlap])[order],
                _concat_mixtures([shifted_centroid, still_centroid])[order] if centroid else None)

    def _shifted(self, a, b, sigma, area_a=None, area_b=None, centroid=True):
        """(overlap, centroid) of pairs at σ > 0, from the exact overlap and its first moments at
        :data:`EXACT_SHIFTS` fixed shifts (:func:`.shift_overlap.centroids_at_shifts`); no descriptors, no network.

        A pair with a missing geometry, or whose bounding boxes lie more than :data:`.encoding.CERTAIN_GAP_SIGMAS`
        σ apart (so the polygons do too), cannot overlap: u = 0 for certain. Every other pair is evaluated, and
        one whose polygons are far apart gets u = 0 at every shift, the same answer. The centroid has
        :attr:`MixtureNetwork.centroid_components` components like the network's, all but the first switched off;
        ``centroid=False``: no first moments, no centroid (None).
        """
        n = len(a)
        frame_a, frame_b = polygon_areas(a), polygon_areas(b)
        whole_a, whole_b = frame_a.copy(), frame_b.copy()
        for whole, given in ((whole_a, area_a), (whole_b, area_b)):  # spread features: their whole areas
            if given is not None:
                known = np.isfinite(given)
                whole[known] = given[known]
        scale_a, scale_b = area_scales(whole_a, whole_b)
        present = (frame_a > 0) & (frame_b > 0)
        with np.errstate(invalid="ignore"):  # NaN where a geometry is missing: not present either
            near = box_gap(shapely.bounds(a), shapely.bounds(b)) <= CERTAIN_GAP_SIGMAS * sigma
        rows = np.flatnonzero(present & near)
        k = EXACT_SHIFTS
        overlap = UnitMixture.point(np.zeros(n), scale_a, scale_b, k)
        mean, covariance = np.zeros((n, 2)), np.zeros((n, 2, 2))
        seen = np.zeros(n, dtype=bool)
        if rows.size:
            d = sigma[rows, None, None] * _standard_shifts(k)[None]
            if centroid:
                inter, centres, overlaps = centroids_at_shifts(a[rows], b[rows], d, min_share=TOUCH_TOLERANCE)
            else:  # the same areas (the moments' terms are computed beside them, not into them)
                inter = overlap_at_shifts(a[rows], b[rows], d)
            smaller = np.minimum(whole_a, whole_b)[rows, None]
            shifted = UnitMixture.from_samples(np.clip(inter / smaller, 0.0, 1.0), scale_a[rows], scale_b[rows])
            for name in UnitMixture._FIELDS:
                getattr(overlap, name)[rows] = getattr(shifted, name)
            if centroid:
                mean[rows], covariance[rows], seen[rows] = centroid_from_shifts(centres, overlaps, sigma[rows])
        if not centroid:
            return overlap, None
        # No shift overlaps (or none can): where the overlap would begin, the middle of the shortest line between
        # the two (the box centre without both), spread by σ. Such pairs' overlap is 0 or nearly so.
        unseen = np.flatnonzero(~seen)
        if unseen.size:
            _, reference = pair_scale_and_centre(a[unseen], b[unseen])
            near = np.flatnonzero(present[unseen])
            lines = shortest_lines(a[unseen[near]], b[unseen[near]])
            reference[near] = shapely.get_coordinates(lines).reshape(-1, 2, 2).mean(axis=1)
            mean[unseen] = reference
            covariance[unseen] = np.eye(2) * (sigma[unseen] ** 2)[:, None, None]
        sd = np.sqrt(np.stack([covariance[:, 0, 0], covariance[:, 1, 1]], axis=1))
        rho = np.clip(covariance[:, 0, 1] / (sd[:, 0] * sd[:, 1]), -1.0 + 1e-9, 1.0 - 1e-9)
        components = self.network.centroid_components
        log_weights = np.full((n, components), -np.inf)
        log_weights[:, 0] = 0.0
        centroid = GaussianMixture.from_components(
            log_weights, np.repeat(mean[:, None, :], components, axis=1), np.repeat(sd[:, None, :], components, axis=1),
            np.repeat(rho[:, None], components, axis=1))
        return overlap, centroid

    def _exact_shift_mixture(self, a, b, sigma, exact, still, cannot_overlap):
        """The overlap from the exact overlap at :data:`EXACT_SHIFTS` fixed shifts where σ > 0 and the pair can
        overlap; the exact overlap at σ = 0, and 0 where it cannot overlap (a :class:`.overlap_head.UnitMixture`)."""
        moving = np.flatnonzero(~still & ~cannot_overlap)
        k = EXACT_SHIFTS if moving.size else 1  # a chunk of point masses only needs one component
        scale_a, scale_b = area_scales(exact.area_a, exact.area_b)
        u = np.where(cannot_overlap, 0.0, unit_of_covers(exact.cover_a, exact.cover_b))
        overlap = UnitMixture.point(u, scale_a, scale_b, k)
        if moving.size:
            sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (len(u),))
            units = exact_shift_units(np.asarray(a, dtype=object)[moving], np.asarray(b, dtype=object)[moving],
                                      sigma[moving], exact.area_a[moving], exact.area_b[moving], k)
            shifted = UnitMixture.from_samples(units, scale_a[moving], scale_b[moving])
            for name in UnitMixture._FIELDS:
                getattr(overlap, name)[moving] = getattr(shifted, name)
        return overlap

    def _unit_mixture(self, raw, descriptors, exact, still, cannot_overlap):
        """The u-head's :class:`.overlap_head.UnitMixture`, exact at σ = 0 and 0 where no overlap can be."""
        k = self.network.overlap_components
        scale_a, scale_b = area_scales(exact.area_a, exact.area_b)
        ia, ib = self.network.residual_index
        descriptors = np.asarray(descriptors, dtype=np.float64)
        overlap = UnitMixture.from_raw(raw, k, baseline_logit(descriptors[:, ia], descriptors[:, ib]),
                                       scale_a, scale_b)
        overlap = overlap.where(still, UnitMixture.point(unit_of_covers(exact.cover_a, exact.cover_b),
                                                         scale_a, scale_b, k))
        return overlap.where(cannot_overlap, UnitMixture.point(np.zeros(len(scale_a)), scale_a, scale_b, k))

    def predict(self, geoms_a, geoms_b, crs, sigma=0.0, crs_b=None):
        """Predict the overlap distribution of aligned pairs (geoms_a[i], geoms_b[i]).

        Parameters
        ----------
        geoms_a, geoms_b : (n,) arrays of shapely polygons in ``crs`` (B in ``crs_b``
            when given). Invalid geometries are repaired; None/empty give zero overlap.
        crs : anything pyproj accepts (EPSG code, WKT, pyproj.CRS).
        sigma : scalar or (n,) positional uncertainty, metres.

        Works in chunks of PREDICT_CHUNK_PAIRS pairs, so memory stays bounded.
        """
        geoms_a = np.asarray(geoms_a, dtype=object)
        geoms_b = np.asarray(geoms_b, dtype=object)
        if geoms_a.shape != geoms_b.shape or geoms_a.ndim != 1:
            raise ValueError("geoms_a and geoms_b must be aligned 1-D arrays")
        n = len(geoms_a)
        sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
        if np.any(~np.isfinite(sigma)) or np.any(sigma < 0):
            raise ValueError("sigma must be finite and >= 0 (metres)")
        lonlat_a = prepare_layer(layer_to_lonlat(geoms_a, crs)).model
        lonlat_b = prepare_layer(layer_to_lonlat(geoms_b, crs if crs_b is None else crs_b)).model
        index = np.arange(n)
        parts = []
        for start in range(0, max(n, 1), PREDICT_CHUNK_PAIRS):
            chunk = index[start:start + PREDICT_CHUNK_PAIRS]
            frames = _full_detail_where_measured(project_pairs(lonlat_a, lonlat_b, chunk, chunk, repair=False),
                                                 lonlat_a, lonlat_b, sigma, exact_path=self.sigma_path == "exact")
            overlap, centroid = self.predict_frames(frames.a, frames.b, sigma[chunk], model_geometries=True,
                                                    areas=frames.whole_areas())
            parts.append((frames, overlap, centroid, summarise_overlap(overlap)))
        frames = _concat_frames([p[0] for p in parts])
        overlap = _concat_mixtures([p[1] for p in parts])
        centroid = _concat_mixtures([p[2] for p in parts])
        summary = [p[3] for p in parts]
        return Prediction(
            iou_mean=np.concatenate([s.iou_mean for s in summary]),
            iou_sd=np.concatenate([s.iou_sd for s in summary]),
            cover_a_mean=np.concatenate([s.cover_a_mean for s in summary]),
            cover_b_mean=np.concatenate([s.cover_b_mean for s in summary]),
            overlap=overlap,
            centroid=centroid,
            frames=frames,
            crs=crs,
        )


@functools.lru_cache(maxsize=8)
def _standard_shifts(k):
    """(k, 2) fixed standard-normal shifts: scrambled Sobol' points (seed :data:`EXACT_SHIFT_SEED`) through
    the inverse normal CDF; the same for every pair, so a pair's numbers do not depend on its chunk."""
    points = ndtri(sobol_points(1, k, np.random.default_rng(EXACT_SHIFT_SEED)))[0]
    points.setflags(write=False)
    return points


def exact_shift_units(a, b, sigma, area_a, area_b, k=EXACT_SHIFTS):
    """(n, k) u = |A ∩ (B + d)| / min(|A|, |B|) at the k fixed shifts d = σ · :func:`_standard_shifts`,
    exact (:func:`.shift_overlap.overlap_at_shifts`); area_a, area_b the (whole) areas."""
    sigma = np.asarray(sigma, dtype=float)
    inter = overlap_at_shifts(a, b, sigma[:, None, None] * _standard_shifts(int(k))[None])
    smaller = np.minimum(area_a, area_b)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(smaller > 0, np.clip(inter / np.where(smaller > 0, smaller, 1.0), 0.0, 1.0), 0.0)


#: Pairs whose vertex-count product is above this are cut to where they can be nearest before
#: :func:`shortest_lines` measures them.
NEAREST_CUT_PRODUCT = 100_000


def shortest_lines(a, b):
    """(n,) the shortest line from each polygon of ``a`` to its partner in ``b`` (as :func:`shapely.shortest_line`).

    GEOS compares every edge of one polygon with every edge of the other. For large pairs, each polygon is
    first cut to the other's bounding box widened by an upper bound U of their distance (the distance from
    each polygon to the other's vertex nearest its box; a little more against rounding): every point of A
    within the pair's distance of B lies in that box, so the cut pieces hold the same nearest points, and
    the line is the same up to rounding (1e-10 m on world_map's provinces and countries) at about half the
    cost.
    """
    a, b = np.array(a, dtype=object), np.array(b, dtype=object)
    big = np.flatnonzero(shapely.get_num_coordinates(a) * shapely.get_num_coordinates(b) > NEAREST_CUT_PRODUCT)
    if big.size:
        box_a, box_b = shapely.bounds(a[big]), shapely.bounds(b[big])
        reach = np.minimum(shapely.distance(a[big], _vertex_nearest_box(b[big], box_a)),
                           shapely.distance(b[big], _vertex_nearest_box(a[big], box_b)))
        size = np.max(np.concatenate([box_a[:, 2:] - box_a[:, :2], box_b[:, 2:] - box_b[:, :2]], axis=1), axis=1)
        reach = reach * (1.0 + 1e-9) + 1e-9 * size + 1e-9
        with np.errstate(invalid="ignore"):  # GEOS's NaN warnings for slivers
            cut_a = shapely.intersection(a[big], shapely.box(*(box_b + reach[:, None] * [-1, -1, 1, 1]).T))
            cut_b = shapely.intersection(b[big], shapely.box(*(box_a + reach[:, None] * [-1, -1, 1, 1]).T))
        kept = ~(shapely.is_empty(cut_a) | shapely.is_empty(cut_b))  # never, short of a GEOS surprise: then uncut
        a[big[kept]], b[big[kept]] = cut_a[kept], cut_b[kept]
    return shapely.shortest_line(a, b)


def _vertex_nearest_box(geoms, boxes):
    """(n,) points: the vertex of each geometry nearest the matching (n, 4) box (one when several are)."""
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    order = np.lexsort((box_gap(np.column_stack([xy, xy]), boxes[owner]), owner))  # a vertex is a box of its own
    first = np.searchsorted(owner[order], np.arange(len(geoms)))
    return shapely.points(xy[order[first]])


def centroid_from_shifts(centres, overlaps, sigma):
    """The intersection centroid's distribution, given an overlap, from its exact values at k equally weighted
    shifts: (mean (n, 2), covariance (n, 2, 2), seen (n,) bool).

    centres : (n, k, 2) centroids of A ∩ (B + d) (frame metres; any value where there is no overlap);
    overlaps : (n, k) bool, the shifts with an overlap; sigma : (n,) metres.
    The mean and covariance of the centroids at the overlapping shifts (each counts once, as each displaced
    label does in training the network's head), the covariance smoothed by σ²/m on both axes, m the number of
    overlapping shifts: the moments of the values blurred by a Gaussian kernel of that variance, which
    keeps the spread positive where the centroid does not move (the smaller polygon inside the larger
    stays put) and wide where few shifts overlap. ``seen`` is False where no shift overlaps (mean and
    covariance 0 there).
    """
    overlaps = np.asarray(overlaps, dtype=bool)
    count = overlaps.sum(axis=1)
    m = np.maximum(count, 1)
    x = np.where(overlaps, centres[..., 0], 0.0)
    y = np.where(overlaps, centres[..., 1], 0.0)
    mean = np.column_stack([x.sum(axis=1) / m, y.sum(axis=1) / m])
    x = np.where(overlaps, x - mean[:, :1], 0.0)  # about the mean: no cancellation far from the frame's origin
    y = np.where(overlaps, y - mean[:, 1:], 0.0)
    smoothing = np.asarray(sigma, dtype=float) ** 2 / m
    covariance = np.empty((len(m), 2, 2))
    covariance[:, 0, 0] = np.einsum("nk,nk->n", x, x) / m + smoothing
    covariance[:, 1, 1] = np.einsum("nk,nk->n", y, y) / m + smoothing
    covariance[:, 0, 1] = covariance[:, 1, 0] = np.einsum("nk,nk->n", x, y) / m
    seen = count > 0
    covariance[~seen] = 0.0
    return mean, covariance, seen


def point_mass_where(overlap: GaussianMixture, rows, centre, sd) -> GaussianMixture:
    """The mixture with ``rows`` (bool (n,)) replaced by one component at ``centre`` ((n, 2) or (2,)
    covers) with standard deviation ``sd`` on both axes and no correlation."""
    rows = np.asarray(rows, dtype=bool)
    if not rows.any():
        return overlap
    log_weights, means = overlap.log_weights.copy(), overlap.means.copy()
    sigmas, rho = overlap.sigmas.copy(), overlap.rho.copy()
    centre = np.broadcast_to(np.asarray(centre, dtype=float), (len(rows), 2))
    log_weights[rows] = -np.inf
    log_weights[rows, 0] = 0.0
    means[rows] = centre[rows, None, :]
    sigmas[rows] = sd
    rho[rows] = 0.0
    return GaussianMixture.from_components(log_weights, means, sigmas, rho)


def zero_where(overlap: GaussianMixture, rows) -> GaussianMixture:
    """The mixture with ``rows`` (bool (n,)) replaced by a point mass just below (0, 0): every quasi-random
    point of it clips to covers of exactly 0, so such a pair's mean IoU, SD and P(IoU >= t) are exactly 0."""
    return point_mass_where(overlap, rows, (-ZERO_MASS_SD * 6.0, -ZERO_MASS_SD * 6.0), ZERO_MASS_SD)


def _usable_network(config, weights, path):
    """The network of a model file whose digest checked out; anything malformed is a ModelFileError.

    A file can carry a correct SHA-256 and still be unusable (written by hand, another encoding):
    its layout, its weights' finiteness and shapes are checked here, by one forward pass.
    """
    name = path or "The model"
    if not isinstance(config, dict) or not isinstance(weights, dict):
        raise ModelFileError(f"{name} is not a usable overlap_relevance model: its config and weights must be "
                             "mappings; use the bundled model, or retrain.")
    check_network_layout(config, weights, name)  # types, ranges and shapes, before anything is computed
    inputs = tuple(config["network"]["inputs"])
    if inputs != DESCRIPTOR_NAMES:
        raise ModelFileError(f"{name} reads the descriptors {list(inputs)}, not the {N_DESCRIPTORS} this plugin "
                             "computes; retrain it with this version of the plugin.")
    not_finite = sorted(key for key, value in weights.items()
                        if np.asarray(value).dtype.kind in "fc" and not np.isfinite(value).all())
    if not_finite:
        raise ModelFileError(f"{name} has non-finite weights ({', '.join(not_finite)}); it cannot be used.")
    try:
        network = MixtureNetwork(config, weights)
        raw = network.raw(np.zeros((1, N_DESCRIPTORS), dtype=np.float32))
        if network.overlap_head_kind == "unit_atoms":
            UnitMixture.from_raw(raw.overlap, network.overlap_components, np.zeros(1), np.ones(1), np.ones(1))
        else:
            mixture_from_raw(raw.overlap, network.overlap_components, 2)
        mixture_from_raw(raw.centroid, network.centroid_components, 2)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ModelFileError(f"{name} is not a usable overlap_relevance model ({type(error).__name__}: {error}); "
                             "use the bundled model, or retrain.") from None
    # Weights can be finite and still overflow on real pairs (a zero input does not show it): a few plain pairs
    # catch that when the file is loaded, whatever the algorithm then asks of the network.
    with np.errstate(over="ignore", invalid="ignore"):
        broken = _non_finite_rows(network.raw(_probe_descriptors()))
    if broken.any():
        raise ModelFileError(f"{name} gives non-finite outputs for {int(broken.sum())} of {len(broken)} plain test "
                             "pairs (two squares, apart, touching and overlapping), so it cannot be used. Use the "
                             "bundled model, or retrain.")
    return network


def _non_finite_rows(raw):
    """(n,) bool: the pairs whose raw network outputs (overlap or centroid head) hold a non-finite value."""
    return ~(np.isfinite(raw.overlap).all(axis=1) & np.isfinite(raw.centroid).all(axis=1))


@functools.lru_cache(maxsize=1)
def _probe_descriptors():
    """Descriptors of a few plain pairs (20 m squares: the same, shifted by 5 and 15 m, touching, 30 m apart; at
    σ = 0, 0.5 and 2 m), read-only: what a model must turn into finite outputs."""
    square = shapely.box(0.0, 0.0, 20.0, 20.0)
    offsets = (0.0, 5.0, 15.0, 20.0, 50.0)
    b = np.array([shapely.box(dx, 0.0, dx + 20.0, 20.0) for dx in offsets] * 3, dtype=object)
    a = np.array([square] * len(b), dtype=object)
    sigma = np.repeat([0.0, 0.5, 2.0], len(offsets))
    with np.errstate(invalid="ignore"):  # GEOS's warning for the touching pair
        descriptors = np.array(pair_descriptors(a, b, sigma)[0])
    descriptors.setflags(write=False)
    return descriptors


def _concat_mixtures(mixtures):
    if len(mixtures) == 1:
        return mixtures[0]
    if isinstance(mixtures[0], UnitMixture):
        return UnitMixture.concatenate(mixtures)
    return GaussianMixture.from_components(
        np.concatenate([m.log_weights for m in mixtures]),
        np.concatenate([m.means for m in mixtures]),
        np.concatenate([m.sigmas for m in mixtures]),
        np.concatenate([m.rho for m in mixtures]),
    )


def _concat_frames(frames):
    if len(frames) == 1:
        return frames[0]
    merged = {name: np.concatenate([getattr(f, name) for f in frames]) for name in PairFrames._FIELDS}
    if any(f.area_a is not None or f.area_b is not None for f in frames):
        areas = [f.whole_areas() for f in frames]
        merged["area_a"], merged["area_b"] = (np.concatenate([area[k] for area in areas]) for k in range(2))
    return PairFrames(**merged)


def load_model(path=None):
    """The bundled model, or the model file at ``path``."""
    return OverlapModel.load(path)


@dataclass
class ScoredChunk:
    """Scores of one chunk of candidate pairs (p pairs).

    index_a, index_b : (p,) positions in the two layers.
    summary : :class:`OverlapSummary` of the pairs.
    overlap, centroid : the predicted mixtures (centroid in frame metres; None where it was not asked for).
    frames : the pairs' :class:`.frame.PairFrames`, holding the geometries measured: the full-detail ones
        at σ = 0 and on the exact σ > 0 path (:data:`SIGMA_PATH`), the model geometries (simplified where
        large, see :func:`.preparation.prepare_layer`) where the network measures.
    complete_before : every input position below it has had all its candidate pairs in this
        chunk or an earlier one, so its best match is final (results can be written while
        later chunks are scored).
    """

    index_a: np.ndarray
    index_b: np.ndarray
    summary: OverlapSummary
    overlap: GaussianMixture
    centroid: GaussianMixture
    frames: PairFrames
    complete_before: int = 0
    reach_m: object = 0.0  # metres beyond which the pairs' features cannot meet (see .pairs.pair_chunk)


def search_distances(search_distance_m, sigma_m):
    """Per-feature search distance: at least 3σ, so displaced neighbours are candidates."""
    return np.maximum(np.asarray(search_distance_m, dtype=float), 3.0 * np.asarray(sigma_m, dtype=float))


def score_candidate_pairs(model, lonlat_a, lonlat_b, sigma_a, search_distance_m=0.0, threshold=0.5,
                          ids_a=None, ids_b=None, max_vertices=None, cancelled=None, workers=None, centroid=True):
    """Find candidate pairs and score them, chunk by chunk (a generator of :class:`ScoredChunk`).

    Parameters
    ----------
    model : :class:`OverlapModel`.
    lonlat_a, lonlat_b : the input and reference layers as model layers
        (:func:`.preparation.prepare_layer`: repaired and simplified once per feature).
    sigma_a : (n_a,) positional uncertainty per input feature, metres.
    search_distance_m : float; widened per feature to at least 3σ.
    threshold : IoU threshold of ``summary.p_iou``.
    ids_a, ids_b : feature ids when both layers are one layer (no self-pairs).
    cancelled : optional callable; when it returns True no further chunk is started.
    workers : threads scoring chunks at once (None: :func:`.parallel.default_workers`);
        the chunks come in the same order, with the same numbers, whatever the count.
    centroid : False when no caller reads ``ScoredChunk.centroid`` (then None; see
        :meth:`OverlapModel.predict_frames`): scores and matches need only the overlap.
    """
    sigma_a = np.asarray(sigma_a, dtype=float)
    if len(sigma_a) and (model.sigma_path == "exact" or not sigma_a.any()):
        # Every pair is measured on the full-detail geometries (σ = 0: the exact overlap; σ > 0 on the exact path:
        # the exact kernel at shifts, which needs no simplification), so they are projected directly.
        lonlat_a, lonlat_b = full_detail(lonlat_a), full_detail(lonlat_b)
    distance = search_distances(search_distance_m, sigma_a)
    plan = plan_pair_chunks(lonlat_a, lonlat_b, distance, ids_a, ids_b,
                            max_vertices=max_vertices or DEFAULT_CHUNK_VERTICES)
    for layer in (lonlat_a, lonlat_b):  # large features projected once, before the threads start
        getattr(layer, "own_frames", None)
        if getattr(layer, "full_detail", None) is not None and np.any(sigma_a == 0):
            getattr(layer.full_detail, "own_frames", None)
    # An input position is complete once no later chunk holds it: below the smallest position of all later chunks.
    smallest = [int(chunk_a.min()) if len(chunk_a) else len(sigma_a) for chunk_a, _ in plan]
    complete_before = np.minimum.accumulate([*smallest, len(sigma_a)][::-1])[::-1][1:]

    def score(planned):
        (chunk_a, chunk_b), complete = planned
        chunk = pair_chunk(lonlat_a, lonlat_b, chunk_a, chunk_b, distance, repair=False, centre_on_large=True)
        if chunk is None:
            return None
        frames = _full_detail_where_measured(chunk.frames, lonlat_a, lonlat_b, sigma_a, chunk.reach_m)
        overlap, located = model.predict_frames(frames.a, frames.b, sigma_a[chunk.index_a], model_geometries=True,
                                                areas=frames.whole_areas(), centroid=centroid)
        summary = summarise_overlap(overlap, threshold)
        return ScoredChunk(chunk.index_a, chunk.index_b, summary, overlap, located, frames, int(complete),
                           chunk.reach_m)

    for scored in ordered_map(score, zip(plan, complete_before), workers, cancelled):
        if scored is not None:
            yield scored


def _full_detail_where_measured(frames, lonlat_a, lonlat_b, sigma_a, reach_m=0.0, exact_path=False):
    """``frames`` with the pairs that hold a simplified feature and are measured exactly projected from the
    full-detail layers: those at σ = 0, and on the exact path (``exact_path``) those at σ > 0 too.

    At σ = 0 what is written is the exact overlap of the geometries measured, and at σ > 0 on the exact path the
    exact overlap at shifts of them, so those are the full-detail ones there (:func:`.preparation.prepare_layer`
    keeps them); elsewhere (the network at σ > 0) the model geometries serve.
    """
    full_a, full_b = getattr(lonlat_a, "full_detail", None), getattr(lonlat_b, "full_detail", None)
    if full_a is None and full_b is None:
        return frames
    simplified = (_detail_error(lonlat_a, frames.index_a) + _detail_error(lonlat_b, frames.index_b)) > 0
    rows = np.flatnonzero(simplified & ((sigma_a[frames.index_a] == 0) | exact_path))
    if not len(rows):
        return frames
    full_frames = project_pairs(lonlat_a if full_a is None else full_a, lonlat_b if full_b is None else full_b,
                                frames.index_a[rows], frames.index_b[rows], repair=False, centre_on_large=True,
                                reach_m=reach_m[rows] if np.ndim(reach_m) else reach_m)
    return frames.with_rows(rows, full_frames)


class BestMatches:
    """The best match of every input feature, gathered chunk by chunk (same choice as :func:`best_matches`).

    For each of n_a input positions: the number of candidate pairs seen, and the summary
    values and reference position of the pair with the highest expected IoU so far (a tie
    goes to the reference feature that comes first in its layer). Holds (n_a,) arrays, not the
    pairs, so a layer's results can be gathered, and written, while later chunks are still being scored.

    Attributes: count (n_a,) int64; index_b (n_a,) int64 reference position, -1 without a
    candidate; values (n_a, len(COLUMNS)) float64, named by COLUMNS (0 without a candidate).
    """

    COLUMNS = ("iou_mean", "p_iou", "cover_a_mean", "cover_b_mean", "iou_sd")

    def __init__(self, n_a):
        self.count = np.zeros(n_a, dtype=np.int64)
        self.index_b = np.full(n_a, -1, dtype=np.int64)
        self.values = np.zeros((n_a, len(self.COLUMNS)))

    def add(self, chunk):
        """Take in one :class:`ScoredChunk`."""
        index_a = np.asarray(chunk.index_a, dtype=np.int64)
        if not len(index_a):
            return
        iou = np.asarray(chunk.summary.iou_mean, dtype=float)
        low = int(index_a.min())  # the chunk's best pairs, over the span of positions it covers
        index_b = np.asarray(chunk.index_b, dtype=np.int64)
        best, count = best_matches(index_a - low, iou, int(index_a.max()) - low + 1, index_b)
        has = best >= 0
        features, pick = np.flatnonzero(has) + low, best[has]
        self.count[features] += count[has]
        current, current_b = self.values[features, 0], self.index_b[features]
        new, new_b = iou[pick], index_b[pick]
        # As best_matches over all pairs at once: higher wins, a tie goes to the reference feature that comes
        # first in its layer, a NaN loses to a number (and, among NaNs, the first reference feature wins).
        both_nan = np.isnan(current) & np.isnan(new)
        better = ((current_b < 0) | (new > current) | (np.isnan(current) & ~np.isnan(new))
                  | (((new == current) | both_nan) & (new_b < current_b)))
        features, pick = features[better], pick[better]
        self.index_b[features] = index_b[pick]
        self.values[features] = np.column_stack([np.asarray(getattr(chunk.summary, name), dtype=float)[pick]
                                                 for name in self.COLUMNS])


def best_matches(index_a, score, n_a, index_b=None):
    """The best-scoring pair of each input feature, and its number of candidates.

    index_a : (p,) input position of each pair; score : (p,) score (higher is better); index_b : (p,)
    reference positions, which break ties (the first reference feature wins, so the choice does not depend
    on the order pairs are found in, nor on how the layers were split); without them the earlier pair wins.
    NaN scores lose to numbers. Returns best (n_a,) pair positions (-1 where a feature has no candidate)
    and count (n_a,).
    """
    index_a = np.asarray(index_a, dtype=np.int64)
    best = np.full(n_a, -1, dtype=np.int64)
    count = np.bincount(index_a, minlength=n_a)
    if len(index_a):
        tie = np.arange(len(index_a)) if index_b is None else np.asarray(index_b, dtype=np.int64)
        score = np.asarray(score, dtype=float)
        key = np.where(np.isnan(score), np.inf, -score)  # NaN last
        order = np.lexsort((np.arange(len(index_a)), tie, key, index_a))
        first = np.r_[True, index_a[order][1:] != index_a[order][:-1]]
        best[index_a[order][first]] = order[first]
    return best, count
