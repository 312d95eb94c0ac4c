"""Layer preparation: each feature repaired once in its own frame and simplified when large.

What scoring and matching read of a layer is a :class:`PreparedLayer`: the layer as read (lon/lat, full
detail), the same layer as the network sees it (:func:`prepare_layer`: every geometry made valid once in a
frame centred on it, simplified by :func:`model_geometry` when it has more than MAX_MODEL_VERTICES
vertices, and returned to lon/lat), which features needed repair, and, where a feature was simplified, its
repaired full-detail geometry and how far the model geometry may lie from it. Pair descriptors
(:mod:`.encoding`) are computed on these model geometries, projected into each pair's frame.
"""

from dataclasses import dataclass, replace

import numpy as np
import shapely

from .frame import HUGE_PART_DEGREES, LonLatLayer, repair_polygonal, unit_to_lonlat
from .laea import laea_forward, laea_inverse
from .parallel import chunk_bounds, ordered_map

MAX_MODEL_VERTICES = 256
# Features narrower than this (degrees) that are valid in lon/lat skip the frame in prepare_layer.
_DIRECT_MAX_DEGREES = 0.5
SIMPLIFY_TOLERANCE = 5e-4
# A simplified geometry lies within its tolerance of the full one in its own frame; other frames of a pair
# stretch lengths by well under this factor.
_DETAIL_ERROR_MARGIN = 1.5


@dataclass
class PreparedLayer:
    """One layer, ready for scoring and matching (:func:`prepare_layer`).

    source : the :class:`.frame.LonLatLayer` as read: lon/lat, full detail, not repaired.
    model : the same features as the network sees them: each geometry repaired once in its own
        frame and simplified where large. Its ``full_detail`` is the layer repaired but not simplified
        (None when nothing was simplified) and its ``detail_error`` (n,) the metres within which each
        model geometry lies of its full-detail one (0 where not simplified).
    repaired : (n,) bool, the features whose geometry needed repair (None where unknown: a partition
        rebuilt from its stored model geometries).
    """

    source: LonLatLayer
    model: LonLatLayer
    repaired: np.ndarray = None

    def __len__(self):
        return len(self.source)

    @property
    def full_detail(self) -> LonLatLayer:
        """The layer repaired once, at full detail (the model layer itself when nothing was simplified)."""
        return self.model if self.model.full_detail is None else self.model.full_detail

    @property
    def detail_error(self) -> np.ndarray:
        """(n,) metres within which each model geometry lies of its full-detail one (None: all exact)."""
        return self.model.detail_error


def model_geometry(geoms):
    """The geometry the network sees: ``geoms`` (metric, valid) simplified when large.

    Geometries with more than MAX_MODEL_VERTICES vertices are simplified with a
    tolerance of SIMPLIFY_TOLERANCE·sqrt(area), topology preserved; others are
    returned unchanged. Returns a new (n,) object array.
    """
    geoms = np.array(geoms, dtype=object, copy=True)
    large = shapely.get_num_coordinates(geoms) > MAX_MODEL_VERTICES
    if large.any():
        tolerance = SIMPLIFY_TOLERANCE * np.sqrt(shapely.area(geoms[large]))
        simplified = shapely.simplify(geoms[large], tolerance, preserve_topology=True)
        lost = shapely.is_empty(simplified) | ~shapely.is_valid(simplified)
        geoms[np.flatnonzero(large)[~lost]] = simplified[~lost]
    return geoms


def prepare_layer(layer, max_vertices=50_000, workers=None) -> PreparedLayer:
    """The layer as the network sees it: every geometry repaired once, large ones simplified.

    Each usable geometry of the :class:`.frame.LonLatLayer` is projected into its own
    local frame (LAEA centred on it), made valid there, simplified when it has more
    than MAX_MODEL_VERTICES vertices (as in :func:`model_geometry`), and returned to
    lon/lat. Scoring then projects these light, valid geometries into every pair frame
    they take part in, without repairing or simplifying per pair: a country that
    borders eighty provinces is handled once, not eighty times.

    Small, narrow features (under MAX_MODEL_VERTICES vertices and _DIRECT_MAX_DEGREES across)
    that are already valid in lon/lat are valid in their frame too and are not projected at all.
    Geometries that needed neither repair nor simplification are returned as they are
    (the same objects), so a layer of clean small features is not held twice; the work is
    done in runs of about ``max_vertices`` vertices, so its scratch memory is bounded too, on
    ``workers`` threads (None: :func:`.parallel.default_workers`).

    Returns a :class:`PreparedLayer`: ``layer`` as ``source``, a new LonLatLayer as ``model`` and the (n,)
    bool mask ``repaired`` of the features whose geometry needed repair. The model layer's ``full_detail``
    is the layer repaired but not simplified (None when nothing was simplified), and its ``detail_error`` (n,) the distance in metres
    within which each model geometry lies of its full-detail geometry (0 where not simplified): scoring
    at σ = 0 measures the pairs that hold a simplified feature on the full-detail geometries, and finds
    candidates on them, so that what is written at σ = 0 is exact.
    """
    geoms = np.asarray(layer.geoms, dtype=object)
    repaired = np.zeros(len(geoms), dtype=bool)
    usable = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    if not len(usable):
        return PreparedLayer(layer, layer, repaired)
    # A small feature that is valid in lon/lat is valid in its own frame too (the projection is
    # smooth and nearly affine over it), so only the others go through the frame: invalid ones,
    # large ones (to simplify), and wide ones, whose straight lon/lat edges bend in a frame.
    bounds = shapely.bounds(geoms[usable])
    wide = (bounds[:, 2] - bounds[:, 0] > _DIRECT_MAX_DEGREES) | (bounds[:, 3] - bounds[:, 1] > _DIRECT_MAX_DEGREES)
    direct = ~wide & (shapely.get_num_coordinates(geoms[usable]) <= MAX_MODEL_VERTICES)
    direct[direct] = shapely.is_valid(geoms[usable[direct]])
    # A feature that reaches round the globe (a whole-world box) has no frame of its own: it is repaired as
    # drawn in lon/lat, kept at full detail, and cut to each pair (.frame.project_pairs).
    huge = ~direct & (layer.radii[usable] > np.deg2rad(HUGE_PART_DEGREES))
    if huge.any():
        geoms = geoms.copy()
        whole = geoms[usable[huge]]
        repaired[usable[huge]] = repair_polygonal(whole)
        geoms[usable[huge]] = whole
        direct |= huge
    usable = usable[~direct]
    if not len(usable):
        return PreparedLayer(layer, replace(layer, geoms=geoms.copy()), repaired)
    unit = layer.unit_centres[usable]
    centre_lon, centre_lat = unit_to_lonlat(unit)  # usable features have a centre: no zero vector
    result = geoms.copy()

    def prepare(bounds):
        start, stop = bounds
        index, lon0, lat0 = usable[start:stop], centre_lon[start:stop], centre_lat[start:stop]
        coords, owner = shapely.get_coordinates(geoms[index], return_index=True)
        x, y = laea_forward(coords[:, 0], coords[:, 1], lon0[owner], lat0[owner])
        local = shapely.set_coordinates(geoms[index].copy(), np.column_stack([x, y]))
        repaired_here = repair_polygonal(local)
        changed = repaired_here | (shapely.get_num_coordinates(local) > MAX_MODEL_VERTICES)
        if not changed.any():
            return index, repaired_here, changed, None
        full = local[changed]
        simplified = model_geometry(full)
        fewer = shapely.get_num_coordinates(simplified) < shapely.get_num_coordinates(full)
        # Hausdorff bound of the simplification (its tolerance), with room for the scale of other frames.
        error = np.where(fewer, _DETAIL_ERROR_MARGIN * SIMPLIFY_TOLERANCE * np.sqrt(shapely.area(full)), 0.0)
        both = np.concatenate([simplified, full[repaired_here[changed]]])
        lon0_c, lat0_c = lon0[changed], lat0[changed]
        centre_index = np.concatenate([np.arange(len(full)), np.flatnonzero(repaired_here[changed])])
        coords, owner = shapely.get_coordinates(both, return_index=True)
        lon, lat = laea_inverse(coords[:, 0], coords[:, 1], lon0_c[centre_index][owner], lat0_c[centre_index][owner])
        both = shapely.set_coordinates(both, np.column_stack([lon, lat]))
        return index, repaired_here, changed, (both[:len(full)], both[len(full):], error)

    runs = chunk_bounds(shapely.get_num_coordinates(geoms[usable]), max_vertices)
    full_result = geoms.copy()
    detail_error = np.zeros(len(geoms))
    for index, repaired_here, changed, lonlat in ordered_map(prepare, runs, workers):
        repaired[index] = repaired_here
        if lonlat is not None:
            model_geoms, repaired_full, error = lonlat
            result[index[changed]] = model_geoms
            full_result[index[changed & repaired_here]] = repaired_full
            detail_error[index[changed]] = error
    full_detail = replace(layer, geoms=full_result) if detail_error.any() else None
    return PreparedLayer(layer, replace(layer, geoms=result, full_detail=full_detail, detail_error=detail_error),
                         repaired)
