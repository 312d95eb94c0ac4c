"""Exact overlap of aligned polygon pairs in a metric frame (the reference the model is judged against)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .frame import repair_polygonal

__all__ = ["ExactOverlap", "exact_overlap", "exact_overlap_of_frames"]


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
