"""Pair descriptors: the fixed-length vector the network reads for each pair of polygons.

Everything here works on whole batches of pairs already in their local metric frame
(:mod:`.frame`), with no Python loop per pair, ring or vertex.

Pair scale and normalised coordinates
-------------------------------------
The **pair scale** ``L`` (metres) is the larger side of the bounding box of A ∪ B
(at least :data:`MIN_SCALE_M`). Coordinates are normalised as ``(p - c) / L`` with
``c`` the centre of that box, so both geometries of every pair lie in
``[-0.5, 0.5]²`` whatever their size: a 5 m shed and a 50 km province look alike to
the network, which is what lets one model serve buildings and administrative units.

Descriptors (:func:`pair_descriptors`)
--------------------------------------
What the network reads: a fixed-length vector per pair, cheap to compute and
independent of vertex count beyond one GEOS overlay of the *model geometry*.
The model geometry is the frame geometry, simplified (topology-preserving, with a
tolerance of ``SIMPLIFY_TOLERANCE`` times the square root of its area) only when it
has more than ``MAX_MODEL_VERTICES`` vertices (:func:`.preparation.model_geometry`), so a
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

import warnings

import numpy as np
import shapely

from .overlap import exact_overlap
from .sweep import sweep_summary

MIN_SCALE_M = 1e-3
_EPS = 1e-4

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
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice")

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def box_gap(bounds_a, bounds_b):
    """(n,) the Euclidean gap between the pairs' bounding boxes (``shapely.bounds`` rows), metres: a lower bound on
    the distance between the polygons; 0 where the boxes meet, NaN where a geometry is missing."""
    with np.errstate(invalid="ignore"):
        return np.hypot(
            np.maximum(0, np.maximum(bounds_a[:, 0] - bounds_b[:, 2], bounds_b[:, 0] - bounds_a[:, 2])),
            np.maximum(0, np.maximum(bounds_a[:, 1] - bounds_b[:, 3], bounds_b[:, 1] - bounds_a[:, 3])))


def pair_descriptors(a, b, sigma, area_a=None, area_b=None):
    """Descriptors of n pairs for the network.

    Parameters
    ----------
    a, b : (n,) aligned valid shapely polygons (model geometries, see
        :func:`.preparation.model_geometry`) in each pair's local frame, metres; None allowed.
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
    gap = np.where(apart, np.nan_to_num(box_gap(bounds_a, bounds_b), nan=0.0), 0.0)
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
