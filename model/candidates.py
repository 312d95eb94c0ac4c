"""Candidate pairs: which features of layer B lie near which features of layer A.

Search runs in two stages.

1. **Coarse, on the globe** (:func:`coarse_candidates`): an STRtree over lon/lat
   bounding boxes, each widened by the search distance converted to degrees at its
   highest latitude, so it never misses a pair. A geometry whose longitudes span more
   than 180 degrees is taken to cross the antimeridian: its box is rebuilt in
   0..360 longitudes and indexed twice (shifted by -360 as well), so neighbours on
   both sides of the date line find it. A geometry whose exterior ring winds once round
   a pole holds that pole: its box spans every longitude up to the pole.
2. **Fine, in metres** (:func:`boxes_within`): in each pair's local metric frame the
   gap between the two bounding boxes must be at most the search distance. A search
   distance of 0 therefore means "touching bounding boxes".
"""

import numpy as np
import shapely

# Metres per degree of latitude is 110,574 at the equator and grows toward the poles;
# a smaller divisor only makes the coarse box larger, so it stays conservative.
_METRES_PER_DEGREE_LOWER_BOUND = 110_000.0
_MAX_LATITUDE_FOR_WIDENING = 89.0
# Query boxes made at a time in coarse_candidates (bounds its scratch memory).
_QUERY_SLICE = 100_000


def lonlat_boxes(lonlat_geoms):
    """Bounding boxes of lon/lat geometries, split across the antimeridian.

    Parameters
    ----------
    lonlat_geoms : (n,) array of shapely geometries or None, in degrees.

    Returns
    -------
    boxes : (m, 4) float array of (lon_min, lat_min, lon_max, lat_max), degrees.
    owner : (m,) int array, the index in ``lonlat_geoms`` of each box. A geometry has
        two boxes when it crosses the antimeridian and none when it is missing/empty.
    """
    geoms = np.asarray(lonlat_geoms, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    index = np.flatnonzero(present)
    if index.size == 0:
        return np.empty((0, 4)), np.empty(0, dtype=np.int64)
    bounds = shapely.bounds(geoms[index])
    crossing = (bounds[:, 2] - bounds[:, 0]) > 180.0
    boxes = [bounds]
    owners = [index]
    if crossing.any():
        crossing_index = index[crossing]
        coords, vertex_owner = shapely.get_coordinates(geoms[crossing_index], return_index=True)
        lon360 = np.mod(coords[:, 0], 360.0)
        starts = np.flatnonzero(np.r_[True, vertex_owner[1:] != vertex_owner[:-1]])
        shifted = bounds[crossing].copy()
        shifted[:, 0] = np.minimum.reduceat(lon360, starts)
        shifted[:, 2] = np.maximum.reduceat(lon360, starts)
        # Keep the original box for shapes that really are wider than 180 degrees
        # (continents); use the shifted box and its -360 twin for true crossers.
        narrower = (shifted[:, 2] - shifted[:, 0]) < (bounds[crossing, 2] - bounds[crossing, 0])
        # A ring drawn from -180 to 180 (a whole-world box, a polar cap drawn as a box, densified or not)
        # spans every longitude: it does not cross the date line.
        narrower &= ~spans_every_longitude(geoms[crossing_index])
        # A ring that winds once round a pole holds it, however it reaches it (cut along the
        # antimeridian up to the pole, or not, as after simplification or from a polar CRS):
        # its box is the whole cap, every longitude up to the pole.
        north, south = _encircled_poles(geoms[crossing_index])
        polar = np.flatnonzero(crossing)[north | south]
        narrower[north | south] = False
        bounds[polar, 0], bounds[polar, 2] = -180.0, 180.0
        bounds[np.flatnonzero(crossing)[north], 3] = 90.0
        bounds[np.flatnonzero(crossing)[south], 1] = -90.0
        west = shifted.copy()
        west[:, [0, 2]] -= 360.0
        keep_original = np.ones(len(index), dtype=bool)
        keep_original[np.flatnonzero(crossing)[narrower]] = False
        boxes = [bounds[keep_original], shifted[narrower], west[narrower]]
        owners = [index[keep_original], crossing_index[narrower], crossing_index[narrower]]
    return np.concatenate(boxes), np.concatenate(owners)


def spans_every_longitude(geoms):
    """(n,) bool: a lon/lat geometry has a ring with vertices on both the -180 and the 180 meridian.

    Drawn flat in lon/lat, such a ring runs from one edge of the map to the other: a whole-world box, a polar
    cap drawn as a box, with or without vertices in between. It spans every longitude; it does not cross the
    date line (a crosser's rings each stay on one side, or jump across it between two vertices).
    """
    geoms = np.asarray(geoms, dtype=object)
    rings, ring_owner = shapely.get_rings(geoms, return_index=True)
    if len(rings) == 0:
        return np.zeros(len(geoms), dtype=bool)
    coords, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    on_west = np.bincount(vertex_ring[coords[:, 0] <= -180.0 + 1e-9], minlength=len(rings)) > 0
    on_east = np.bincount(vertex_ring[coords[:, 0] >= 180.0 - 1e-9], minlength=len(rings)) > 0
    return np.bincount(ring_owner[on_west & on_east], minlength=len(geoms)) > 0


def _encircled_poles(geoms):
    """(north, south): (n,) bool, an exterior ring of the lon/lat geometry winds once round that pole.

    Only a ring whose longitudes span more than 180 degrees can; the caller passes those.
    """
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    step = np.remainder(np.diff(coords[:, 0]) + 180.0, 360.0) - 180.0  # each edge the short way round
    same_ring = ring[1:] == ring[:-1]
    winding = np.bincount(ring[1:][same_ring], weights=step[same_ring], minlength=len(parts))
    mean_lat = np.bincount(ring, weights=coords[:, 1], minlength=len(parts)) / np.maximum(
        np.bincount(ring, minlength=len(parts)), 1)
    around = np.abs(winding) > 180.0
    north = np.bincount(part_owner[around & (mean_lat > 0)], minlength=len(geoms)) > 0
    south = np.bincount(part_owner[around & (mean_lat < 0)], minlength=len(geoms)) > 0
    return north, south


def widen_lonlat_boxes(boxes, distance_m):
    """Widen lon/lat boxes by ``distance_m`` metres on every side, conservatively.

    Parameters
    ----------
    boxes : (m, 4) lon/lat boxes in degrees.
    distance_m : float or (m,) array, metres, >= 0.
    """
    distance_m = np.broadcast_to(np.asarray(distance_m, dtype=float), (len(boxes),))
    widened = np.array(boxes, dtype=float, copy=True)
    dlat = distance_m / _METRES_PER_DEGREE_LOWER_BOUND
    highest = np.minimum(np.maximum(np.abs(widened[:, 1]), np.abs(widened[:, 3])) + dlat, _MAX_LATITUDE_FOR_WIDENING)
    dlon = np.where(distance_m > 0, distance_m / (_METRES_PER_DEGREE_LOWER_BOUND * np.cos(np.radians(highest))), 0.0)
    near_pole = (np.maximum(np.abs(widened[:, 1]), np.abs(widened[:, 3])) + dlat) >= _MAX_LATITUDE_FOR_WIDENING
    dlon = np.where(near_pole & (distance_m > 0), 360.0, dlon)
    widened[:, 0] -= dlon
    widened[:, 2] += dlon
    widened[:, 1] = np.maximum(widened[:, 1] - dlat, -90.0)
    widened[:, 3] = np.minimum(widened[:, 3] + dlat, 90.0)
    return widened


def coarse_candidates(lonlat_a, lonlat_b, distance_m=0.0, exclude_same_index=False):
    """All pairs (i, j) whose lon/lat boxes may lie within ``distance_m`` of each other.

    A's boxes are widened by the distance (conservatively, in degrees) and queried
    against B's boxes, so this is a superset of the pairs :func:`boxes_within` keeps.

    Parameters
    ----------
    lonlat_a, lonlat_b : arrays of shapely geometries (or None) in lon/lat degrees.
    distance_m : float, or (len(lonlat_a),) array of per-feature search distances, metres.
    exclude_same_index : drop i == j (the two arrays are the same layer).

    Returns
    -------
    index_a, index_b : (p,) int64 arrays, sorted by index_a then index_b, no duplicates.
    """
    boxes_a, owner_a = lonlat_boxes(lonlat_a)
    boxes_b, owner_b = lonlat_boxes(lonlat_b)
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    distance_a = np.asarray(distance_m, dtype=float)
    if distance_a.ndim:
        distance_a = distance_a[owner_a]
    widened_a = widen_lonlat_boxes(boxes_a, distance_a)
    # A box widened past the date line also looks for neighbours on the other side of it.
    past_east, past_west = widened_a[:, 2] > 180.0, widened_a[:, 0] < -180.0
    widened_a = np.concatenate([widened_a, widened_a[past_east] - [360, 0, 360, 0],
                                widened_a[past_west] + [360, 0, 360, 0]])
    owner_a = np.concatenate([owner_a, owner_a[past_east], owner_a[past_west]])
    # Only envelopes are compared (boxes against boxes), so a feature whose box is its own envelope
    # is indexed as itself, and the query boxes are made a slice at a time: no layer-sized copy.
    tree = shapely.STRtree(_geometries_with_envelopes(boxes_b, owner_b, np.asarray(lonlat_b, dtype=object)))
    query_pos, tree_pos = [], []
    for start in range(0, len(widened_a), _QUERY_SLICE):
        found = tree.query(shapely.box(*widened_a[start:start + _QUERY_SLICE].T))
        query_pos.append(found[0] + start)
        tree_pos.append(found[1])
    index_a = owner_a[np.concatenate(query_pos)]
    index_b = owner_b[np.concatenate(tree_pos)]
    if exclude_same_index:
        keep = index_a != index_b
        index_a, index_b = index_a[keep], index_b[keep]
    key = np.unique(index_a.astype(np.int64) * len(lonlat_b) + index_b)
    return key // len(lonlat_b), key % len(lonlat_b)


def _geometries_with_envelopes(boxes, owner, geoms):
    """(m,) geometries whose envelopes are ``boxes``: the owning feature itself where its box is its envelope."""
    items = geoms[owner]
    own = np.all(shapely.bounds(items) == boxes, axis=1)
    if not own.all():
        items[~own] = shapely.box(*boxes[~own].T)
    return items


def boxes_within(local_a, local_b, distance_m=0.0):
    """Fine filter: is the gap between the pairs' local bounding boxes at most ``distance_m``?

    Parameters
    ----------
    local_a, local_b : (n,) aligned arrays of shapely geometries in a metric frame.
    distance_m : float or (n,) array, metres.

    Returns
    -------
    (n,) bool array; False where either geometry is missing or empty.
    """
    bounds_a = shapely.bounds(local_a)
    bounds_b = shapely.bounds(local_b)
    gap_x = np.maximum(bounds_a[:, 0] - bounds_b[:, 2], bounds_b[:, 0] - bounds_a[:, 2])
    gap_y = np.maximum(bounds_a[:, 1] - bounds_b[:, 3], bounds_b[:, 1] - bounds_a[:, 3])
    with np.errstate(invalid="ignore"):
        return (gap_x <= distance_m) & (gap_y <= distance_m)
