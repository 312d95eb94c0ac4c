"""Encoding a pair of polygons for the network: points, edges and scanline descriptors.

Everything here works on whole batches of pairs already in their local metric frame
(:mod:`.frame`), with no Python loop per pair, ring or vertex.

Pair scale and normalised coordinates
-------------------------------------
The **pair scale** ``L`` (metres) is the larger side of the bounding box of A ∪ B
(at least :data:`MIN_SCALE_M`). Coordinates are normalised as ``(p - c) / L`` with
``c`` the centre of that box, so both geometries of every pair lie in
``[-0.5, 0.5]²`` whatever their size: a 5 m shed and a 50 km province look alike to
the network, which is what lets one model serve buildings and administrative units.

Points (:func:`encode_points`)
------------------------------
Each geometry becomes its ring vertices in normalised coordinates with one-hot
features ``[geometry A, geometry B, exterior ring, hole]`` plus the ring and part
they belong to, as in the research this project grew from. Ring orientation is
normalised (exteriors counter-clockwise, holes clockwise) through a per-ring sign,
without reordering vertices.

Descriptors (:func:`pair_descriptors`)
--------------------------------------
What the network reads: a fixed-length vector per pair, cheap to compute and
independent of vertex count beyond one GEOS overlay of the *model geometry*.
The model geometry is the frame geometry, simplified (topology-preserving, with a
tolerance of ``SIMPLIFY_TOLERANCE`` times the square root of its area) only when it
has more than ``MAX_MODEL_VERTICES`` vertices (:func:`model_geometry`), so a
10,000-vertex province costs about what a building costs.

The vector (``N_DESCRIPTORS`` float32 values, named in :data:`DESCRIPTOR_NAMES`)
holds the overlap of the model geometries at zero displacement (coverage fractions
and IoU), the areas relative to the pair scale, shape compactness, how the
boundary of the overlap and the gap between the features compare with σ, and the
bounding-box overlap, and the summary of the **boundary-sweep surrogate**
(:mod:`.sweep`): how the overlap moves when each boundary element of B moves along
its normal through A, evaluated at fixed displacements (mean covers and IoU, their
spread, the chance of no overlap and of IoU ≥ 0.5). From these the network predicts how the overlap is
distributed once B is displaced by d ~ N(0, σ²I₂), and where the overlap lies,
relative to a reference point (:func:`pair_descriptors` returns it): the overlap
centroid of the model geometries, or the middle of the shortest line between them
when they do not overlap.
"""

from dataclasses import dataclass

import numpy as np
import shapely

MIN_SCALE_M = 1e-3
MAX_MODEL_VERTICES = 256
# Features narrower than this (degrees) that are valid in lon/lat skip the frame in model_layer.
_DIRECT_MAX_DEGREES = 0.5
SIMPLIFY_TOLERANCE = 5e-4
# A simplified geometry lies within its tolerance of the full one in its own frame; other frames of a pair
# stretch lengths by well under this factor.
_DETAIL_ERROR_MARGIN = 1.5
_EPS = 1e-4

POINT_FEATURE_NAMES = ("geometry_a", "geometry_b", "exterior", "hole")

#: A pair whose gap exceeds this many σ cannot overlap: P(|d| >= 6σ) = exp(-18) for d ~ N(0, σ²I₂).
CERTAIN_GAP_SIGMAS = 6.0
#: At σ = 0, an intersection smaller than this share of the smaller feature is taken as touching (rounding).
TOUCH_TOLERANCE = 1e-9

DESCRIPTOR_NAMES = (
    "cover_a0", "cover_b0", "iou0",  # overlap of the model geometries at zero displacement
    "log_area_a", "log_area_b",  # log(|A| / L² + eps), log(|B| / L² + eps)
    "log_area_ratio",  # log((|A| + eps L²) / (|B| + eps L²))
    "compact_a", "compact_b",  # 4π|G| / perimeter²: 1 for a disc, small for slivers
    "bbox_iou",  # IoU of the two bounding boxes
    "has_sigma",  # σ > 0
    "log_sigma_l",  # log(σ / L + eps)
    "log_sigma_a", "log_sigma_b",  # log(σ / sqrt|A| + eps), log(σ / sqrt|B| + eps)
    "edge_rate_a", "edge_rate_b",  # log1p(σ · perimeter(A∩B) / |A|), same for B: how fast cover moves with d
    "gap_sigma",  # min(gap / σ, 10) / 10 with gap = distance(A, B); at σ = 0: 1 when apart, else 0
    "log_gap_l",  # log(gap / L + eps); at σ = 0 the gap between the bounding boxes
    "inter_w", "inter_h",  # size of the overlap's bounding box / L
    "reference_in_a", "reference_in_b",  # the reference point's distance to A's / B's centroid / L
    # The boundary-sweep surrogate of the overlap under d ~ N(0, σ²I₂) (:mod:`.sweep`), at fixed
    # displacements: mean cover_a, cover_b and IoU, SD of the covers, P(no overlap), P(IoU ≥ 0.5).
    "sweep_cover_a", "sweep_cover_b", "sweep_iou", "sweep_sd_a", "sweep_sd_b", "sweep_p_zero", "sweep_p_iou",
)
N_DESCRIPTORS = len(DESCRIPTOR_NAMES)


@dataclass
class PairPoints:
    """The point encoding of n pairs (V vertices in all).

    xy : (V, 2) float64 normalised coordinates.
    features : (V, 4) float32 one-hot ``POINT_FEATURE_NAMES``.
    pair : (V,) int64 pair of each vertex.
    ring : (V,) int64 global ring id; consecutive vertices of one ring form its edges.
    part : (V,) int64 global polygon-part id.
    orientation : (R,) float64, +1 or -1 per ring: the sign that makes exteriors
        counter-clockwise and holes clockwise.
    centre : (n, 2) metres, the frame point mapped to (0, 0).
    scale : (n,) metres, the pair scale L.
    """

    xy: np.ndarray
    features: np.ndarray
    pair: np.ndarray
    ring: np.ndarray
    part: np.ndarray
    orientation: np.ndarray
    centre: np.ndarray
    scale: np.ndarray

    def __len__(self):
        return len(self.scale)


def pair_scale_and_centre(a, b):
    """Pair scale L (n,) and the centre (n, 2) of the bounding box of A ∪ B, metres.

    Missing or empty geometries are ignored; a pair with neither gets L = MIN_SCALE_M.
    """
    bounds_a = shapely.bounds(a)
    bounds_b = shapely.bounds(b)
    stacked = np.stack([bounds_a, bounds_b])
    with np.errstate(invalid="ignore"), _all_nan_ok():
        low = np.nanmin(stacked[:, :, :2], axis=0)
        high = np.nanmax(stacked[:, :, 2:], axis=0)
    low = np.where(np.isfinite(low), low, 0.0)
    high = np.where(np.isfinite(high), high, 0.0)
    scale = np.maximum((high - low).max(axis=1), MIN_SCALE_M)
    return scale, (low + high) / 2.0


class _all_nan_ok:
    """Silence NumPy's 'All-NaN slice' warning for pairs with no geometry at all."""

    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice")

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def _rings(geoms, first_pair_offset=0):
    """Vertices of every ring of (n,) polygonal geometries, with their ring and part ids.

    Returns xy (V, 2), pair (V,), ring (V,) local ring ids 0..R-1, part (V,) local part
    ids, ring_is_hole (R,) and ring_orientation (R,) (+1 counter-clockwise).
    """
    geoms = np.asarray(geoms, dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    index = np.flatnonzero(usable)
    parts, part_owner = shapely.get_parts(geoms[index], return_index=True)
    part_pair = index[part_owner]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    first_of_part = np.r_[True, ring_part[1:] != ring_part[:-1]] if len(ring_part) else np.zeros(0, bool)
    ring_is_hole = ~first_of_part
    # Shoelace signed area per ring, to know its orientation without reordering.
    nxt = np.r_[xy[1:], xy[:1]]
    same_ring = np.r_[vertex_ring[1:] == vertex_ring[:-1], False]
    cross = np.where(same_ring, xy[:, 0] * nxt[:, 1] - nxt[:, 0] * xy[:, 1], 0.0)
    signed = np.bincount(vertex_ring, weights=cross, minlength=len(rings))
    orientation = np.where(signed >= 0, 1.0, -1.0)
    return xy, part_pair[ring_part[vertex_ring]], vertex_ring, ring_part[vertex_ring], ring_is_hole, orientation


def encode_points(a, b):
    """The point encoding (:class:`PairPoints`) of n pairs in their local frames.

    Parameters
    ----------
    a, b : (n,) aligned arrays of shapely (Multi)Polygons in a metric frame (metres);
        None or empty is allowed and contributes no points.
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    scale, centre = pair_scale_and_centre(a, b)
    xy_a, pair_a, ring_a, part_a, hole_a, orient_a = _rings(a)
    xy_b, pair_b, ring_b, part_b, hole_b, orient_b = _rings(b)
    n_rings_a = len(hole_a)
    n_parts_a = part_a.max() + 1 if len(part_a) else 0
    pair = np.concatenate([pair_a, pair_b]).astype(np.int64)
    ring = np.concatenate([ring_a, ring_b + n_rings_a]).astype(np.int64)
    part = np.concatenate([part_a, part_b + n_parts_a]).astype(np.int64)
    hole = np.concatenate([hole_a, hole_b])
    xy = (np.concatenate([xy_a, xy_b]) - centre[pair]) / scale[pair, None]
    features = np.zeros((len(xy), 4), dtype=np.float32)
    features[: len(xy_a), 0] = 1.0
    features[len(xy_a):, 1] = 1.0
    features[:, 2] = ~hole[ring]
    features[:, 3] = hole[ring]
    # Exteriors counter-clockwise, holes clockwise.
    orientation = np.concatenate([orient_a, orient_b]) * np.where(hole, -1.0, 1.0)
    return PairPoints(xy, features, pair, ring, part, orientation, centre, scale)




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


def model_layer(layer, max_vertices=50_000, workers=None):
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

    Returns ``(layer, repaired)``: a new LonLatLayer and a (n,) bool mask of the
    features whose geometry needed repair. The layer's ``full_detail`` is the layer repaired but not
    simplified (None when nothing was simplified), and its ``detail_error`` (n,) the distance in metres
    within which each model geometry lies of its full-detail geometry (0 where not simplified): scoring
    at σ = 0 measures the pairs that hold a simplified feature on the full-detail geometries, and finds
    candidates on them, so that what is written at σ = 0 is exact.
    """
    from dataclasses import replace

    from .frame import HUGE_PART_DEGREES, repair_polygonal
    from .laea import laea_forward, laea_inverse
    from .parallel import chunk_bounds, ordered_map

    geoms = np.asarray(layer.geoms, dtype=object)
    repaired = np.zeros(len(geoms), dtype=bool)
    usable = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    if not len(usable):
        return layer, repaired
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
        return replace(layer, geoms=geoms.copy()), repaired
    unit = layer.unit_centres[usable]
    centre_lon = np.degrees(np.arctan2(unit[:, 1], unit[:, 0]))
    centre_lat = np.degrees(np.arctan2(unit[:, 2], np.hypot(unit[:, 0], unit[:, 1])))
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
    return replace(layer, geoms=result, full_detail=full_detail, detail_error=detail_error), repaired


def pair_descriptors(a, b, sigma, area_a=None, area_b=None):
    """Descriptors of n pairs for the network.

    Parameters
    ----------
    a, b : (n,) aligned valid shapely polygons (model geometries, see
        :func:`model_geometry`) in each pair's local frame, metres; None allowed.
    sigma : float or (n,) positional uncertainty in metres: the per-axis standard
        deviation of a rigid translation of B relative to A.
    area_a, area_b : optional (n,) whole areas of features of which a frame holds only the
        parts within reach (:attr:`.frame.PairFrames.area_a`; NaN: the geometry's own area).

    Returns
    -------
    descriptors : (n, N_DESCRIPTORS) float32, columns named by DESCRIPTOR_NAMES.
    context : dict of (n,) float64 arrays the network's outputs are expressed in:
        ``scale`` (L, metres), ``reference`` ((n, 2) frame metres, the centroid
        head's origin), ``overlap0`` (the :class:`.overlap.ExactOverlap` of the
        model geometries), ``cannot_overlap`` ((n,) bool: no translation within
        :data:`CERTAIN_GAP_SIGMAS` σ makes them overlap, at σ = 0 they only touch (within
        :data:`TOUCH_TOLERANCE`), or a geometry is missing).
    """
    from .overlap import exact_overlap
    from .sweep import sweep_summary

    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    scale, box_centre = pair_scale_and_centre(a, b)
    overlap = exact_overlap(a, b, assume_valid=True, area_a=area_a, area_b=area_b)
    area_a, area_b = overlap.area_a, overlap.area_b
    present = ~(shapely.is_missing(a) | shapely.is_missing(b) | shapely.is_empty(a) | shapely.is_empty(b))

    # Gap and nearest points where there is no overlap. GEOS distance is quadratic in the
    # vertex counts, so it runs only where σ > 0 can close the gap; at σ = 0 a pair that
    # does not overlap stays apart, and the bounding-box gap (a lower bound) describes it.
    bounds_a, bounds_b = shapely.bounds(a), shapely.bounds(b)
    apart = present & (overlap.area_inter <= 0)
    box_gap = np.nan_to_num(np.hypot(
        np.maximum(0, np.maximum(bounds_a[:, 0] - bounds_b[:, 2], bounds_b[:, 0] - bounds_a[:, 2])),
        np.maximum(0, np.maximum(bounds_a[:, 1] - bounds_b[:, 3], bounds_b[:, 1] - bounds_a[:, 3]))), nan=0.0)
    gap = np.where(apart, box_gap, 0.0)
    reference = np.column_stack([overlap.centroid_x, overlap.centroid_y])
    near = apart & (sigma > 0)
    if near.any():
        gap[near] = shapely.distance(a[near], b[near])
        nearest = shapely.get_coordinates(shapely.shortest_line(a[near], b[near])).reshape(-1, 2, 2)
        reference[near] = nearest.mean(axis=1)
    reference = np.where(np.isfinite(reference), reference, box_centre)

    centroid_a = shapely.get_coordinates(shapely.centroid(np.where(present, a, None)))
    centroid_b = shapely.get_coordinates(shapely.centroid(np.where(present, b, None)))
    centroids = np.zeros((2, n, 2))
    if present.any():
        centroids[0, present], centroids[1, present] = centroid_a, centroid_b

    length_a = np.nan_to_num(shapely.length(a), nan=0.0)
    length_b = np.nan_to_num(shapely.length(b), nan=0.0)
    inter_box = np.clip(np.minimum(bounds_a[:, 2:], bounds_b[:, 2:]) - np.maximum(bounds_a[:, :2], bounds_b[:, :2]),
                        0, None)
    inter_box = np.nan_to_num(inter_box, nan=0.0)
    box_area_a = np.nan_to_num((bounds_a[:, 2:] - bounds_a[:, :2]).prod(axis=1), nan=0.0)
    box_area_b = np.nan_to_num((bounds_b[:, 2:] - bounds_b[:, :2]).prod(axis=1), nan=0.0)
    box_inter = inter_box.prod(axis=1)
    square = scale**2

    with np.errstate(divide="ignore", invalid="ignore"):
        columns = [
            overlap.cover_a, overlap.cover_b, overlap.iou,
            np.log(area_a / square + _EPS), np.log(area_b / square + _EPS),
            np.log((area_a + _EPS * square) / (area_b + _EPS * square)),
            np.where(length_a > 0, 4 * np.pi * area_a / length_a**2, 0.0),
            np.where(length_b > 0, 4 * np.pi * area_b / length_b**2, 0.0),
            np.where(box_area_a + box_area_b - box_inter > 0, box_inter / (box_area_a + box_area_b - box_inter), 0.0),
            (sigma > 0).astype(float),
            np.log(sigma / scale + _EPS),
            np.log(np.where(area_a > 0, sigma / np.sqrt(area_a), 0.0) + _EPS),
            np.log(np.where(area_b > 0, sigma / np.sqrt(area_b), 0.0) + _EPS),
            np.log1p(np.where(area_a > 0, sigma * overlap.perimeter_inter / area_a, 0.0)),
            np.log1p(np.where(area_b > 0, sigma * overlap.perimeter_inter / area_b, 0.0)),
            np.where(sigma > 0, np.minimum(gap / np.where(sigma > 0, sigma, 1.0), 10.0) / 10.0, (gap > 0) * 1.0),
            np.log(gap / scale + _EPS),
            inter_box[:, 0] / scale, inter_box[:, 1] / scale,
            np.linalg.norm(reference - centroids[0], axis=1) / scale,
            np.linalg.norm(reference - centroids[1], axis=1) / scale,
        ]
    # Where B's translation would have to exceed 6σ to reach A (probability exp(-18) ≈ 1.5e-8), or σ = 0
    # and they do not overlap, the overlap is 0 for certain: the network is not asked (see OverlapModel).
    # At σ = 0 an intersection below TOUCH_TOLERANCE of the smaller area is a shared border seen through
    # rounding (two layers that share borders exactly): 0 too, the same in every chunking of the layers.
    touching = overlap.area_inter <= TOUCH_TOLERANCE * np.minimum(area_a, area_b)
    cannot_overlap = ~present | (apart & (gap > CERTAIN_GAP_SIGMAS * sigma)) | ((sigma == 0) & touching)

    # The sweep surrogate where σ > 0 can move the overlap; elsewhere the overlap at d = 0 is the answer.
    still = np.column_stack([overlap.cover_a, overlap.cover_b, overlap.iou, np.zeros(n), np.zeros(n),
                             (overlap.area_inter <= 0).astype(float), (overlap.iou >= 0.5).astype(float)])
    moving = np.flatnonzero((sigma > 0) & ~cannot_overlap)
    if moving.size:
        still[moving] = sweep_summary(a[moving], b[moving], sigma[moving], inter0=overlap.area_inter[moving])
    columns.extend(still.T)
    descriptors = np.nan_to_num(np.column_stack(columns), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    return descriptors, {"scale": scale, "reference": reference, "overlap0": overlap,
                         "cannot_overlap": cannot_overlap}
