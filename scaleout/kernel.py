"""The per-partition work, in NumPy and shapely only: what one Dask task (or the single process) runs.

It chains the same ``model/`` functions as the plugin's ``scorerelevance`` (``algorithms/relevance_run.py``):
:func:`..model.frame.layer_to_lonlat` → :func:`..model.preparation.prepare_layer` (repaired and simplified once
per feature) → :func:`..model.scoring.score_candidate_pairs` (search distance widened to 3σ per feature)
→ :class:`..model.scoring.BestMatches`. Every step works feature by feature or pair by pair, so a
partition scored against the reference features near it gives the numbers the whole layer gives.
"""

import numpy as np
import shapely

from ..model.candidates import lonlat_boxes, widen_lonlat_boxes
from ..model.fields import MATCH_FIELDS, RELEVANCE_FIELDS, RELEVANCE_PREFIX, names
from ..model.frame import LonLatLayer, geometry_unit_centres, layer_to_lonlat
from ..model.preparation import prepare_layer
from ..model.scoring import BestMatches, score_candidate_pairs, search_distances

# The suffixes of the fields scorerelevance writes, in its order (model/fields.py).
RELEVANCE_SUFFIXES = tuple(names(RELEVANCE_FIELDS))
FIELD_PREFIX = RELEVANCE_PREFIX
#: The m_ fields matchfeatures writes, in its order.
MATCH_NAMES = tuple(names(MATCH_FIELDS))
#: NumPy dtype of each neutral kind of model/fields.py ("key" takes the key's own).
NUMPY_DTYPES = {"double": np.float64, "int": np.int64, "string": object}
HILBERT_ORDER = 16  # cells per side: 2**16 on the world's lon/lat grid (about 600 m at the equator)


def prepare_lonlat(geoms, crs, with_lonlat=False, with_detail=False):
    """(model lon/lat geometries (n,), usable (n,) bool) of one layer or one partition of it; with
    ``with_lonlat`` also the full-detail lon/lat geometries (n,), which the change test of matching reads;
    with ``with_detail`` also ``(detail, error)``: the repaired full-detail geometries where the model
    geometry is simplified (None elsewhere) and the bound of that simplification (n,) metres, which
    scoring at σ = 0 measures on (:func:`..model.preparation.prepare_layer`).

    The geometries are the ones the network sees (:func:`..model.preparation.prepare_layer`), None where
    the feature has no usable geometry (missing, non-finite, beyond a hemisphere).
    """
    lonlat = layer_to_lonlat(np.asarray(geoms, dtype=object), crs)
    usable = lonlat.usable
    prepared = prepare_layer(lonlat, workers=1).model
    geoms = np.asarray(prepared.geoms, dtype=object).copy()
    geoms[~usable] = None
    out = (geoms, usable)
    if with_lonlat:
        out += (np.asarray(lonlat.geoms, dtype=object),)
    if with_detail:
        error = np.zeros(len(geoms)) if prepared.detail_error is None else np.where(usable, prepared.detail_error, 0.0)
        detail = np.full(len(geoms), None, dtype=object)
        if prepared.full_detail is not None:
            detail[error > 0] = prepared.full_detail.geoms[error > 0]
        out += ((detail, error),)
    return out


def as_lonlat_layer(model_geoms, detail=None):
    """A :class:`..model.frame.LonLatLayer` of model lon/lat geometries (None = unusable) for scoring;
    ``detail``: ``(detail, error)`` from :func:`prepare_lonlat`, the full-detail geometries scoring at σ = 0 reads."""
    geoms = np.asarray(model_geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    layer = LonLatLayer(geoms, missing, np.zeros(len(geoms), dtype=bool), None)
    if detail is not None:
        error = np.nan_to_num(np.asarray(detail[1], dtype=float), nan=0.0)
        if (error > 0).any():
            full = geoms.copy()
            full[error > 0] = np.asarray(detail[0], dtype=object)[error > 0]
            layer.full_detail = LonLatLayer(full, missing, np.zeros(len(geoms), dtype=bool), None)
            layer.detail_error = error
    return layer


def best_matches(model, input_geoms, reference_geoms, sigma, search_distance_m=0.0, threshold=0.5,
                 ids_a=None, ids_b=None, workers=1, input_detail=None, reference_detail=None):
    """:class:`..model.scoring.BestMatches` of model lon/lat input geometries against reference ones.

    input_geoms (n_a,), reference_geoms (n_b,): from :func:`prepare_lonlat` (None where unusable).
    sigma (n_a,) metres; ids_a, ids_b: when both are one layer, pairs with equal ids are skipped;
    input_detail, reference_detail: ``(detail, error)`` of :func:`prepare_lonlat` (σ = 0 measures full detail).
    Returns (best, n_pairs).
    """
    lonlat_a, lonlat_b = as_lonlat_layer(input_geoms, input_detail), as_lonlat_layer(reference_geoms, reference_detail)
    best = BestMatches(len(lonlat_a))
    n_pairs = 0
    if len(lonlat_a) and len(lonlat_b):
        for chunk in score_candidate_pairs(model, lonlat_a, lonlat_b, np.asarray(sigma, dtype=float),
                                           search_distance_m, threshold, ids_a, ids_b, workers=workers,
                                           centroid=False):
            best.add(chunk)
            n_pairs += len(chunk.index_a)
    return best, n_pairs


def relevance_columns(best, usable, reference_keys):
    """The relevance fields as arrays: {suffix: (n,) array}, with masks for NULL.

    Returns (values, null): values[suffix] an (n,) array (keys for "match", float64 for the scores,
    int64 for "n"), null[suffix] a (n,) bool mask. As scorerelevance: without a candidate the match
    is NULL, the values 0 and n 0; an unusable geometry gives NULL everywhere.
    """
    usable = np.asarray(usable, dtype=bool)
    index_b = best.index_b
    has = index_b >= 0
    values = {"match": keys_at(reference_keys, index_b)}
    null = {"match": ~has | ~usable}
    for field in RELEVANCE_FIELDS:
        if field.summary:
            values[field.name] = best.values[:, BestMatches.COLUMNS.index(field.summary)].copy()
            null[field.name] = ~usable
    values["n"] = best.count.astype(np.int64)
    null["n"] = ~usable
    return values, null


def keys_at(keys, index):
    """(n,) ``keys[index]``, 0 or None where index is negative; in the keys' dtype when numeric, else object."""
    keys, index = np.asarray(keys), np.asarray(index)
    out = np.empty(len(index), dtype=keys.dtype if keys.dtype.kind in "iuf" else object)
    out[:] = None if out.dtype == object else 0
    has = index >= 0
    out[has] = keys[index[has]]
    return out


def match_columns(group, klass, partner, p, change, change_p, other_keys):
    """The m_ fields of one side as arrays, in their order: ({name: (n,) array}, {name: (n,) NULL mask}).

    group (n,) int, -1 = none; klass, change (n,) str or None; partner (n,) index into ``other_keys``,
    -1 = none; p, change_p (n,) float, NaN = none.
    """
    group, partner = np.asarray(group), np.asarray(partner)
    p, change_p = np.asarray(p, dtype=float), np.asarray(change_p, dtype=float)
    data = {"m_group": group, "m_class": klass, "m_key": keys_at(other_keys, partner), "m_p": p, "m_change": change,
            "m_change_p": change_p}
    null = {"m_group": group < 0, "m_class": np.array([c is None for c in klass]), "m_key": partner < 0,
            "m_p": ~np.isfinite(p), "m_change": np.array([c is None for c in change]),
            "m_change_p": ~np.isfinite(change_p)}
    values = {field.name: data[field.name] if field.kind == "key" else np.asarray(data[field.name],
                                                                                  dtype=NUMPY_DTYPES[field.kind])
              for field in MATCH_FIELDS}
    return values, {name: null[name] for name in values}


def feature_search_distances(search_distance_m, sigma):
    """(n,) metres: the search distance widened to 3σ per feature, as the plugin does."""
    return search_distances(search_distance_m, sigma)


def unit_centre_lonlat(model_geoms):
    """(n, 2) lon/lat degrees of each feature's centre on the sphere (NaN where None); antimeridian-safe."""
    unit = geometry_unit_centres(np.asarray(model_geoms, dtype=object))
    lon = np.degrees(np.arctan2(unit[:, 1], unit[:, 0]))
    lat = np.degrees(np.arctan2(unit[:, 2], np.hypot(unit[:, 0], unit[:, 1])))
    return np.column_stack([lon, lat])


def hilbert_keys(lonlat, order=HILBERT_ORDER):
    """(n,) int64 positions on a Hilbert curve over the whole lon/lat world, one grid for every layer.

    lonlat (n, 2) degrees; rows with NaN get the largest key (they have nothing to match).
    """
    lonlat = np.asarray(lonlat, dtype=float)
    side = 1 << order
    bad = ~np.isfinite(lonlat).all(axis=1)
    x = np.clip(((np.nan_to_num(lonlat[:, 0]) + 180.0) / 360.0 * side).astype(np.int64), 0, side - 1)
    y = np.clip(((np.nan_to_num(lonlat[:, 1]) + 90.0) / 180.0 * side).astype(np.int64), 0, side - 1)
    key = np.zeros(len(x), dtype=np.int64)
    s = side >> 1
    while s > 0:  # the classic xy -> d loop, vectorised over all points
        rx = (x & s) > 0
        ry = (y & s) > 0
        key += s * s * ((3 * rx) ^ ry)
        flip = ~ry
        swap_x = np.where(flip & rx, side - 1 - x, x)
        swap_y = np.where(flip & rx, side - 1 - y, y)
        x, y = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        s >>= 1
    key[bad] = np.iinfo(np.int64).max
    return key


def outline(model_geoms, search_distance_m=0.0):
    """(4,) lon/lat box holding every feature's box (antimeridian crossers split, as the candidate search
    splits them), widened by ``search_distance_m`` metres conservatively; NaN when there is no geometry.

    search_distance_m : float or (n,) metres.
    """
    geoms = np.asarray(model_geoms, dtype=object)
    boxes, owner = lonlat_boxes(geoms)
    if not len(boxes):
        return np.full(4, np.nan)
    distance = np.asarray(search_distance_m, dtype=float)
    boxes = widen_lonlat_boxes(boxes, distance[owner] if distance.ndim else distance)
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])


def outlines_meet(left, right):
    """(n_left, n_right) bool: do the lon/lat outlines meet, also across the antimeridian (±360°)?"""
    left = np.asarray(left, dtype=float).reshape(-1, 4)[:, None, :]
    right = np.asarray(right, dtype=float).reshape(-1, 4)[None, :, :]
    with np.errstate(invalid="ignore"):
        lat = (left[..., 1] <= right[..., 3]) & (right[..., 1] <= left[..., 3])
        lon = np.zeros(lat.shape, dtype=bool)
        for shift in (-360.0, 0.0, 360.0):
            lon |= (left[..., 0] + shift <= right[..., 2]) & (right[..., 0] <= left[..., 2] + shift)
    return lat & lon
