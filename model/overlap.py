"""Exact overlap of aligned polygon pairs in a metric frame (the reference the model is judged against), and its
Monte-Carlo distribution when B is displaced by d ~ N(0, σ²I₂) (:func:`monte_carlo_overlap`)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely

from .frame import repair_polygonal

__all__ = ["ExactOverlap", "MonteCarloOverlap", "exact_overlap", "exact_overlap_of_frames", "intersection_area",
           "monte_carlo_overlap", "ratio", "translate"]


@dataclass
class ExactOverlap:
    """Overlap measures of n pairs (A, B); every field is an (n,) float64 array.

    area_a, area_b, area_inter: |A|, |B|, |A n B| in frame units squared (m^2).
    cover_a: |A n B| / |A| (0 when |A| = 0); cover_b: |A n B| / |B| (0 when |B| = 0).
    iou: |A n B| / |A u B| (0 when the union has no area).
    centroid_x, centroid_y: centroid of A n B in frame units; NaN when the
      intersection has no area (disjoint, touching, or missing inputs).
    perimeter_inter: length of the boundary of A n B (0 when it has no area).
    """

    area_a: np.ndarray
    area_b: np.ndarray
    area_inter: np.ndarray
    cover_a: np.ndarray
    cover_b: np.ndarray
    iou: np.ndarray
    centroid_x: np.ndarray
    centroid_y: np.ndarray
    perimeter_inter: np.ndarray

    def __len__(self):
        return len(self.area_a)


def _geometry_array(geoms):
    if isinstance(geoms, np.ndarray) and geoms.dtype == object:
        return geoms.reshape(-1)
    items = list(geoms)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _valid_or_none(geoms):
    """Copy of (n,) geometries with empties as None and invalid ones repaired.

    GEOS overlay raises on invalid input for the whole batch, so one bad
    polygon must not sink the others.
    """
    geoms = geoms.copy()
    geoms[shapely.is_missing(geoms) | shapely.is_empty(geoms)] = None
    repair_polygonal(geoms)
    return geoms


def ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is not positive, clipped to [0, 1]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denominator > 0.0, numerator / denominator, 0.0)
    return np.clip(r, 0.0, 1.0)


def exact_overlap_of_frames(frames, assume_valid=True) -> ExactOverlap:
    """:func:`exact_overlap` of a :class:`.frame.PairFrames`, with the whole areas of spread features."""
    area_a, area_b = frames.whole_areas()
    return exact_overlap(frames.a, frames.b, assume_valid, area_a, area_b)


def exact_overlap(a, b, assume_valid=False, area_a=None, area_b=None) -> ExactOverlap:
    """Exact areas, covers, IoU and intersection centroid of aligned pairs.

    Parameters
    ----------
    a, b : (n,) arrays (or sequences) of shapely (Multi)Polygons in one metric
        frame per pair (e.g. ``PairFrames.a`` / ``.b``); None or empty count as
        zero area.
    assume_valid : skip the validity check and repair, for geometries that are
        already valid (``PairFrames`` output is); saves a GEOS pass per geometry.
    area_a, area_b : optional (n,) m², the whole features' areas where a frame holds only the
        parts of a feature that can meet the other (NaN: the geometry's own area).

    Returns
    -------
    ExactOverlap of (n,) float64 arrays.  Vectorised shapely 2 (GEOS) overlay,
    no Python loop over pairs.  Ratios are clipped to [0, 1] to absorb
    rounding in the overlay.
    """
    a = _geometry_array(a)
    b = _geometry_array(b)
    if not assume_valid:
        a, b = _valid_or_none(a), _valid_or_none(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in length: {a.size} vs {b.size}")

    whole_a, whole_b = area_a, area_b
    area_a = np.nan_to_num(shapely.area(a), nan=0.0)
    area_b = np.nan_to_num(shapely.area(b), nan=0.0)
    for area, whole in ((area_a, whole_a), (area_b, whole_b)):
        if whole is not None:
            known = np.isfinite(whole)
            area[known] = whole[known]
    try:
        inter = shapely.intersection(a, b)
    except shapely.errors.GEOSException:
        if not assume_valid:
            raise
        # A geometry valid in its own frame can turn invalid by rounding in another one.
        a, b = _valid_or_none(a), _valid_or_none(b)
        inter = shapely.intersection(a, b)
    # The overlap cannot exceed either area; overlay rounding could make it.
    area_inter = np.minimum(np.nan_to_num(shapely.area(inter), nan=0.0), np.minimum(area_a, area_b))

    has_area = area_inter > 0.0
    perimeter_inter = np.where(has_area, np.nan_to_num(shapely.length(inter), nan=0.0), 0.0)
    centroid_x = np.full(a.shape, np.nan)
    centroid_y = np.full(a.shape, np.nan)
    if has_area.any():
        # Centroid of a mixed collection (polygon + touching line) is area-weighted by GEOS.
        centroids = shapely.centroid(inter[has_area])
        centroid_x[has_area] = shapely.get_x(centroids)
        centroid_y[has_area] = shapely.get_y(centroids)

    union_area = area_a + area_b - area_inter
    return ExactOverlap(
        area_a=area_a,
        area_b=area_b,
        area_inter=area_inter,
        cover_a=ratio(area_inter, area_a),
        cover_b=ratio(area_inter, area_b),
        iou=ratio(area_inter, union_area),
        centroid_x=centroid_x,
        centroid_y=centroid_y,
        perimeter_inter=perimeter_inter,
    )


def translate(geoms, offset):
    """(n,) geometries moved by ``offset`` ((n, 2) or (2,) metres); a new array."""
    offset = np.broadcast_to(np.asarray(offset, np.float64), (len(geoms), 2))
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    return shapely.set_coordinates(np.asarray(geoms, dtype=object).copy(), xy + offset[owner])


# --------------------------------------------------------------------------
# Monte-Carlo truth under positional uncertainty.
# --------------------------------------------------------------------------
@dataclass
class MonteCarloOverlap:
    """Overlap of n pairs under m random displacements of B; every field is (n, m) float64.

    cover_a, cover_b, iou as in :class:`ExactOverlap`, for a and
    b + d_j with d_j ~ N(0, sigma^2 I2) (metres, in the pair's frame).
    """

    cover_a: np.ndarray
    cover_b: np.ndarray
    iou: np.ndarray


def intersection_area(a, b):
    """(k,) areas of a n b; pairs that GEOS cannot intersect are retried one by one after make_valid."""
    try:
        return shapely.area(shapely.intersection(a, b))
    except shapely.errors.GEOSException:
        out = np.empty(len(a))
        for i in range(len(a)):  # rare: only after a topology error in the batch
            try:
                out[i] = shapely.area(shapely.intersection(a[i], b[i]))
            except shapely.errors.GEOSException:
                out[i] = shapely.area(shapely.intersection(shapely.make_valid(a[i]), shapely.make_valid(b[i])))
        return out


def monte_carlo_overlap(a, b, sigma, m, seed=0, batch=50_000, threads=None) -> MonteCarloOverlap:
    """Monte-Carlo distribution of the overlap when B is displaced by d ~ N(0, sigma^2 I2).

    Parameters
    ----------
    a, b : (n,) valid (Multi)Polygons in each pair's metric frame (e.g.
        :attr:`.datasets.synthetic.SyntheticPairs.a`, ``.b``); None/empty count as zero area.
    sigma : scalar or (n,) metres, per-axis standard deviation of the rigid
        translation of B.
    m : samples per pair.
    seed : int; the displacements are ``sigma * default_rng(seed).standard_normal((n, m, 2))``.
    batch : geometry pairs per GEOS call; threads : worker threads (default
        min(2, cpu count)); neither changes the result.

    Returns
    -------
    :class:`MonteCarloOverlap` with (n, m) arrays.  Samples whose displaced
    bounding boxes do not meet are 0 without an overlay; a pair with sigma = 0
    is intersected once and repeated (so it equals the single exact label).
    """
    a = np.asarray(a, dtype=object).reshape(-1)
    b = np.asarray(b, dtype=object).reshape(-1)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, np.float64), (n,))
    d = sigma[:, None, None] * np.random.default_rng(seed).standard_normal((n, m, 2))
    usable = ~(shapely.is_missing(a) | shapely.is_empty(a) | shapely.is_missing(b) | shapely.is_empty(b))
    area_a = np.where(usable, np.nan_to_num(shapely.area(a)), 0.0)
    area_b = np.where(usable, np.nan_to_num(shapely.area(b)), 0.0)
    ba = np.where(usable[:, None], shapely.bounds(a), 0.0)[:, None, :]
    bb = np.where(usable[:, None], shapely.bounds(b), 0.0)[:, None, :]
    meet = ((bb[..., 0] + d[..., 0] <= ba[..., 2]) & (bb[..., 2] + d[..., 0] >= ba[..., 0])
            & (bb[..., 1] + d[..., 1] <= ba[..., 3]) & (bb[..., 3] + d[..., 1] >= ba[..., 1]))
    meet &= (usable & (area_a > 0) & (area_b > 0))[:, None]
    meet[sigma == 0.0, 1:] = False  # computed once, copied below
    rows, cols = np.nonzero(meet)
    inter = np.zeros((n, m))

    def work(start):
        r, c = rows[start:start + batch], cols[start:start + batch]
        return intersection_area(a[r], translate(b[r], d[r, c]))

    threads = min(2, os.cpu_count() or 1) if threads is None else max(1, int(threads))
    starts = range(0, rows.size, batch)
    with ThreadPoolExecutor(threads) as pool:
        for start, area in zip(starts, pool.map(work, starts)):
            inter[rows[start:start + batch], cols[start:start + batch]] = area
    zero = sigma == 0.0
    inter[zero] = inter[zero, :1]
    inter = np.minimum(inter, np.minimum(area_a, area_b)[:, None])
    return MonteCarloOverlap(
        cover_a=ratio(inter, area_a[:, None]),
        cover_b=ratio(inter, area_b[:, None]),
        iou=ratio(inter, area_a[:, None] + area_b[:, None] - inter),
    )
