"""From scores to matches: groups, one-to-one assignments and change labels between two layers.

The input layer is "new", the reference layer "old". For every candidate pair (streamed chunk by
chunk from :func:`.scoring.score_candidate_pairs`, keeping only five numbers per pair) the model's
predicted overlap distribution gives

* ``p_same`` = P(IoU >= t): the two features are the same object;
* ``p_part`` = P(cover of the smaller feature >= c): the smaller one is a part of the other
  (the share of the smaller feature that the other covers, a marginal of the coverage mixture);
* ``iou_mean``: the expected IoU.

These, with what is known of the two features (their sizes, the distance of their centroids in units
of σ and of their size, the IoU of their shapes once the centroids coincide) and how the pair stands
among the other candidates of each feature, go through the learned pair model of :mod:`.match_model`
(small NumPy networks fitted offline on validation edits of :mod:`.datasets.source_edits` at σ from
0.25 to 5 m) to ``q``: the probability that the pair is the same object or a part of it. A pair is an
**edge** of the relevance graph when ``q`` reaches ``p_edge``; the one-to-one assignment maximises the
summed ``q``. (Without the shipped model file, or for hand-made :class:`CandidateEdges` without ``q``,
the fixed rules of before apply: an edge when p_same or p_part reaches ``p_edge``, the assignment on
the expected IoU, the probability through :data:`CALIBRATION`.) Features that merely touch, or
overlap by a small shift, stay apart.

**Groups** are the connected components of the graph over both layers. Their class follows from
member counts: ``1:1``; ``1:n`` (one input, several reference); ``n:1`` (several input, one
reference); ``m:n``. A feature without an edge is ``unmatched`` (group -1). Before the groups are final,
the group-level tests of :mod:`.group_test` read whole groups (their misfit after one common shift): the
cut test removes a link whose removal would split its group and whose two sides agree better apart (a
neighbour σ moved onto a piece, a removed building a new one partly covers), the group test links a
doubtful pair whose two groups agree better as one, and the cut test runs again.

**One-to-one assignment** inside each group maximises the total expected IoU over edges, no feature
used twice (a component with one edge needs no solver; larger ones go to
``scipy.optimize.linear_sum_assignment``, or a NumPy Hungarian method where SciPy is missing: the
plugin's runtime needs only NumPy, shapely and pyproj). ``p`` of an assignment is the calibrated probability
that the pair is a true correspondence (same object or part of it): the raw score
max(p_same, p_part) through a monotone table fitted on tuning data (:data:`CALIBRATION`).

**Change labels**: a 1:1 pair is ``unchanged`` when σ alone explains how it differs. The pair is
split into a translation and a shape change: the reference feature is moved so that its centroid
falls on the input's (full detail, in the pair's frame); the pair is ``modified`` when the shapes
then still differ by more than ``shape_offset_m`` (the symmetric difference divided by the mean
perimeter: how far, on average, one boundary lies from the other, in metres, whatever the size) or
when the move is implausible under
d ~ N(0, σ²I₂), P(|d| >= |move|) = exp(-|move|²/2σ²) below ``alpha_translation`` (σ floored at
``sigma_floor``). (The model's distribution of the IoU of an identical copy displaced by σ, compared
with the raw exact IoU, was tried first: at σ = 0.5 m a 10 m building moved by σ alone reaches an
IoU of 0.61, so it passed 15 of 35 reshaped buildings as unchanged on tuning data.)
With the learned model, a 1:1 pair is ``modified`` when P(modified | shape offset, aligned IoU, area
ratio, move, size, σ) reaches 0.5 (:mod:`.match_model`), since at σ of metres with redrawn vertices the
fixed offset rule calls most pairs modified.
Groups: ``n:1`` (one old feature, several new) -> ``split``, ``1:n`` -> ``merged``, ``m:n`` ->
``reshaped`` (:data:`CHANGE_OF_CLASS`); unmatched input -> ``new``, unmatched reference -> ``removed``.
Features without a usable geometry get class ``unmatched``, change None, group -1.

**Change probability** ``change_p_a`` / ``change_p_b`` (the field ``m_change_p``): the probability
that the change label is right: for new and removed 1 - the largest q among the feature's
candidates, for split / merged / reshaped the group's weakest link, for 1:1 the assignment's p times
the change model's probability of its label; each through a monotone table fitted on validation edits.

**Large components** (more than :data:`SPARSE_CELLS` cells in their dense matrix) are assigned by the
sparse shortest-augmenting-path solver of :mod:`.assignment` (:func:`sparse_assignment`; NumPy, no SciPy),
in memory linear in the edges, optimal as the dense solvers are.

**Group probability** ``groups["p"]``: the calibrated probability of the group's weakest necessary
link, i.e. the smallest edge probability on a maximum spanning tree of the group (the largest θ for
which the group's edges with p >= θ still connect it). Unmatched features have no group.
"""

from dataclasses import dataclass, field

import numpy as np
import shapely

from .assignment import EDGE_BONUS, max_weight_matching
from .frame import project_pairs
from .graph import components, connected_labels
from .group_test import apply_group_tests
from .match_model import change_features, load_match_model, pair_features
from .match_thresholds import MatchThresholds
from .overlap import exact_overlap, exact_overlap_of_frames, ratio, translate
from .overlap_head import UnitMixture
from .parallel import ordered_map
from .scoring import score_candidate_pairs
from .shift_overlap import overlap_at_shifts, polygon_areas
from .special import ndtr

CLASSES = ("1:1", "1:n", "n:1", "m:n", "unmatched")
# Reference = old, input = new: one old feature become several new ones (n:1) is a split.
CHANGE_OF_CLASS = {"n:1": "split", "1:n": "merged", "m:n": "reshaped"}
# Monotone calibration of the raw edge score max(p_same, p_part): knots (raw, calibrated),
# interpolated linearly. Fitted by isotonic regression (block means) on the tuning seed's candidate
# pairs at σ = 0.5, 1, 2, 3 m (model/evaluation/tune_matching.py; numbers in model/matching_results.md).
CALIBRATION = {
    "raw": [
        0.0, 0.0, 4e-06, 2.9e-05, 9.1e-05, 0.000129, 0.000152, 0.001036, 0.002548, 0.002703, 0.002898, 0.003027,
        0.003162, 0.003358, 0.003724, 0.009322, 0.020875, 0.022078, 0.022402, 0.022768, 0.025596, 0.028939,
        0.029777, 0.031874, 0.034264, 0.03726, 0.04259, 0.046611, 0.047309, 0.048819, 0.05083, 0.05946,
        0.074225, 0.080768, 0.089163, 0.10574, 0.121152, 0.128022, 0.131445, 0.135515, 0.148301, 0.194692,
        0.295462, 0.385286, 0.410832, 0.465562, 0.534826, 0.564535, 0.623147, 0.678898, 0.693994, 0.763508,
        0.845035, 0.873392, 0.889852, 0.908183, 0.92168, 0.928647, 0.938582, 0.944456, 0.959218, 0.977038,
        0.988752, 0.994645, 0.997172, 0.999893, 1.0
    ],
    "calibrated": [
        0.0, 0.0, 0.0009, 0.0016, 0.0043, 0.0048, 0.0099, 0.0122, 0.0146, 0.0191, 0.0233, 0.0403, 0.042, 0.0506,
        0.0961, 0.1166, 0.1168, 0.125, 0.1286, 0.1304, 0.1493, 0.1515, 0.1591, 0.1736, 0.1923, 0.2194, 0.2222,
        0.2462, 0.25, 0.2667, 0.3929, 0.4382, 0.4823, 0.5417, 0.6354, 0.681, 0.6923, 0.7, 0.7045, 0.7273,
        0.7407, 0.7903, 0.8554, 0.8667, 0.881, 0.9041, 0.9405, 0.9412, 0.9471, 0.9533, 0.9615, 0.9664, 0.9724,
        0.9752, 0.9821, 0.9861, 0.9868, 0.9902, 0.9904, 0.9906, 0.993, 0.9937, 0.9948, 0.9955, 0.997, 1.0, 1.0
    ],
}
_ASSIGN_CHUNK = 20_000
#: A component whose dense k x l matrix would exceed this many cells goes to the sparse solver.
SPARSE_CELLS = 250_000
_CHANGE_CHUNK = 5_000  # pairs per change-test chunk: small enough that the threads share the work evenly


@dataclass
class MatchResult:
    """Matches between n_a input and n_b reference features (positions in the two layers).

    group_a, group_b : (n_a,), (n_b,) int64 group id, -1 unmatched.
    class_a, class_b : object arrays of "1:1" | "1:n" | "n:1" | "m:n" | "unmatched".
    partner_a : (n_a,) int64 reference position of the one-to-one partner, -1 none; partner_b likewise.
    p_a, p_b : float64 calibrated probability that the assignment is a true correspondence (NaN
        without partner).
    change_a, change_b : object arrays: unchanged | modified | split | merged | reshaped | new |
        removed, None for features without a usable geometry.
    groups : "id" (g,), "class" (g,), "members_a", "members_b" (lists of int64 arrays), "p" (g,)
        the group's weakest necessary link (see the module docstring).
    n_pairs : candidate pairs scored; n_edges : pairs kept as edges.
    n_unusable_a, n_unusable_b : features without a usable geometry.
    exact_iou_a : (n_a,) exact IoU with the partner, 1:1 groups, when asked for (``exact_iou=True``;
        NaN elsewhere: no decision needs it, and it costs a GEOS intersection per pair); aligned_iou_a :
        the same after the centroid move; shape_offset_a : mean boundary offset after it (metres);
        translation_p_a : P(|d| >= |move|) under σ.
    change_p_a, change_p_b : (n_a,), (n_b,) probability that the change label is right (``m_change_p``;
        NaN for features without a usable geometry).
    """

    group_a: np.ndarray
    group_b: np.ndarray
    class_a: np.ndarray
    class_b: np.ndarray
    partner_a: np.ndarray
    partner_b: np.ndarray
    p_a: np.ndarray
    p_b: np.ndarray
    change_a: np.ndarray
    change_b: np.ndarray
    groups: dict
    n_pairs: int
    n_edges: int = 0
    n_unusable_a: int = 0
    n_unusable_b: int = 0
    exact_iou_a: np.ndarray = field(default=None)
    aligned_iou_a: np.ndarray = field(default=None)
    shape_offset_a: np.ndarray = field(default=None)
    translation_p_a: np.ndarray = field(default=None)
    change_p_a: np.ndarray = field(default=None)
    change_p_b: np.ndarray = field(default=None)


@dataclass
class CandidateEdges:
    """Per-pair numbers of all candidate pairs, (p,) each."""

    index_a: np.ndarray
    index_b: np.ndarray
    p_same: np.ndarray
    p_part: np.ndarray
    iou_mean: np.ndarray
    #: The learned probability that the pair is the same object or a part of it (:mod:`.match_model`);
    #: None: decisions on the raw score through :data:`CALIBRATION` (fixed thresholds, as before).
    q: np.ndarray = None
    #: (p,) σ of each pair's input feature (metres), for the σ bands of the calibration tables; None: pooled.
    sigma: np.ndarray = None
    #: (p,) bool: doubtful pairs that the group test (:mod:`.group_test`) made links of the graph; None: none.
    linked: np.ndarray = None
    #: (p,) the group test's probability of the linked pairs (their edge probability when above q).
    link_p: np.ndarray = None
    #: (p,) bool: links of the graph that the cut test (:func:`.group_test.cut_links`) removed; None: none.
    cut: np.ndarray = None
    #: (p,) the cut test's probability that a cut link is right (its edge probability when below q).
    cut_p: np.ndarray = None

    def __len__(self):
        return len(self.index_a)

    @property
    def raw_score(self):
        return np.maximum(self.p_same, self.p_part)


def calibrate(raw, table=None):
    """Calibrated probabilities of raw edge scores through the monotone table (knots interpolated)."""
    table = CALIBRATION if table is None else table
    return np.interp(np.asarray(raw, dtype=float), table["raw"], table["calibrated"])


def p_cover_at_least(overlap, cover, smaller_is_a):
    """P(cover of the smaller feature >= cover) of (n,) overlap mixtures, from their marginals.

    smaller_is_a : (n,) bool, A has the smaller area (so its cover, dimension 0, is the one asked).
    The u-head's :class:`.overlap_head.UnitMixture` is over that cover itself (u = |A∩B| / min(|A|, |B|)).
    """
    if isinstance(overlap, UnitMixture):
        return overlap.p_unit_at_least(cover)
    dim = np.where(smaller_is_a, 0, 1)[:, None]
    means = np.take_along_axis(overlap.means, dim[:, :, None], axis=2)[..., 0]  # (n, K)
    sigmas = np.take_along_axis(overlap.sigmas, dim[:, :, None], axis=2)[..., 0]
    return np.sum(overlap.weights * ndtr((means - cover) / sigmas), axis=1)


def candidate_edges(model, layer_a, layer_b, sigma_a, search_distance_m=0.0,
                    ids_a=None, ids_b=None, thresholds=None, cancelled=None, progress=None, max_vertices=None,
                    workers=None):
    """Score every candidate pair chunk by chunk and keep five numbers per pair: CandidateEdges, or None.

    ``layer_a``, ``layer_b`` : :class:`.preparation.PreparedLayer`. Their model layers are what is scored,
    as in scoring; the full-detail layers are used later, for the exact IoU of the assigned pairs.
    """
    thresholds = thresholds or MatchThresholds()
    cancelled = cancelled or (lambda: False)
    n_a = max(len(sigma_a), 1)
    parts = []
    aligned_parts = []
    for chunk in score_candidate_pairs(model, layer_a.model, layer_b.model, sigma_a, search_distance_m,
                                       thresholds.iou, ids_a, ids_b, max_vertices=max_vertices, cancelled=cancelled,
                                       workers=workers, centroid=False):
        # A spread feature's frame holds only its parts near the other: its whole area is the one that counts.
        area_a, area_b = (np.where(np.isnan(whole), shapely.area(drawn), whole)
                          for whole, drawn in zip(chunk.frames.whole_areas(), (chunk.frames.a, chunk.frames.b)))
        smaller_is_a = area_a <= area_b
        cover_a = np.asarray(chunk.summary.cover_a_mean, dtype=float)
        cover_b = np.asarray(chunk.summary.cover_b_mean, dtype=float)
        centre_a = shapely.get_coordinates(shapely.centroid(chunk.frames.a))
        centre_b = shapely.get_coordinates(shapely.centroid(chunk.frames.b))
        move = centre_a - centre_b
        distance = np.hypot(move[:, 0], move[:, 1])
        # the shapes compared as drawn, whatever the shift: B moved so that the centroids coincide, measured by the
        # exact overlap at that one shift (:func:`.shift_overlap.overlap_at_shifts`: no GEOS overlay per pair)
        frame_area_a, frame_area_b = polygon_areas(chunk.frames.a), polygon_areas(chunk.frames.b)
        aligned_inter = overlap_at_shifts(chunk.frames.a, chunk.frames.b,
                                          np.where(np.isfinite(move), move, 0.0)[:, None, :])[:, 0]
        aligned_iou = ratio(aligned_inter, frame_area_a + frame_area_b - aligned_inter)
        # what the 1:1 change test reads, kept for pairs measured on full detail (see decide_and_test)
        full = np.ones(len(move), dtype=bool)
        for model_layer_, index in ((layer_a.model, chunk.index_a), (layer_b.model, chunk.index_b)):
            error = getattr(model_layer_, "detail_error", None)
            if error is not None:
                full &= np.asarray(error)[np.asarray(index)] == 0
            spread = getattr(model_layer_, "spread", None)
            if spread is not None:
                full &= ~np.asarray(spread, dtype=bool)[np.asarray(index)]
        aligned_parts.append((frame_area_a, frame_area_b, aligned_inter,
                              0.5 * (shapely.length(chunk.frames.a) + shapely.length(chunk.frames.b)), full,
                              aligned_iou))
        parts.append((np.asarray(chunk.index_a, dtype=np.int64), np.asarray(chunk.index_b, dtype=np.int64),
                      np.asarray(chunk.summary.p_iou, dtype=float),
                      p_cover_at_least(chunk.overlap, thresholds.cover, smaller_is_a),
                      np.asarray(chunk.summary.iou_mean, dtype=float),
                      np.where(smaller_is_a, cover_a, cover_b), np.where(smaller_is_a, cover_b, cover_a),
                      np.minimum(area_a, area_b), np.maximum(area_a, area_b), distance, aligned_iou, area_a,
                      area_b))
        if progress is not None:
            progress(0.8 * (chunk.complete_before / n_a), "Scoring candidate pairs")
    if cancelled():
        return None
    columns = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=np.int64 if k < 2 else float)
               for k in range(13)]
    edges = CandidateEdges(*columns[:5])
    edges.aligned = tuple(np.concatenate([p[k] for p in aligned_parts]) if aligned_parts else
                          np.zeros(0, dtype=bool if k == 4 else float) for k in range(6))
    edges.distance = columns[9]
    n_b = len(layer_b.model)
    edges.features = pair_features(columns[0], columns[1], n_a, n_b, *columns[2:10],
                                   np.asarray(sigma_a, dtype=float)[columns[0]] if len(columns[0]) else np.zeros(0),
                                   columns[10])
    edges.area_a, edges.area_b = columns[11], columns[12]
    edges.sigma = np.asarray(sigma_a, dtype=float)[edges.index_a] if len(edges) else np.zeros(0)
    pair_model = load_match_model()
    if pair_model is not None:
        edges.q = pair_model.pair(edges.features, edges.index_a, edges.index_b, len(sigma_a), n_b, edges.area_a,
                                  edges.area_b)
        # outside the fitted domain, the raw score through the fixed calibration table
        outside = ~pair_model.in_domain(edges.area_a, edges.area_b, edges.sigma)
        edges.q[outside] = calibrate(edges.raw_score[outside])
    return edges


def hungarian_max(weight):
    """Rows and columns of a maximum-weight assignment of the (k, l) matrix (every row or every
    column assigned, whichever is fewer): SciPy's linear_sum_assignment where SciPy is installed,
    else the O(k²l) Hungarian method with potentials, its inner steps vectorised over columns."""
    weight = np.asarray(weight, dtype=float)
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return _hungarian_numpy(weight)
    return linear_sum_assignment(weight, maximize=True)


def _hungarian_numpy(weight):
    transposed = weight.shape[0] > weight.shape[1]
    cost = -(weight.T if transposed else weight)
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    row_of = np.zeros(m + 1, dtype=np.int64)  # 1-based row held by column j, 0 none; column 0 is the root
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):  # one augmenting path per row
        row_of[0] = i
        j0 = 0
        min_slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            slack = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (slack < min_slack[1:])
            min_slack[1:][better] = slack[better]
            way[1:][better] = j0
            candidates = np.where(free, min_slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            min_slack[~used] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    columns = np.flatnonzero(row_of[1:])
    rows = row_of[1:][columns] - 1
    if transposed:
        rows, columns = columns, rows
    order = np.argsort(rows)
    return rows[order], columns[order]


def assign_one_to_one(n_a, n_b, index_a, index_b, weight, edge_group=None):
    """Maximum-weight one-to-one assignment over edges (weights >= 0), optimal per component.

    Returns partner_a (n_a,), partner_b (n_b,) (-1 none) and the chosen edge positions.
    """
    index_a = np.asarray(index_a, dtype=np.int64)
    index_b = np.asarray(index_b, dtype=np.int64)
    weight = np.maximum(np.asarray(weight, dtype=float), 0.0)
    if edge_group is None:
        group_a, _ = components(n_a, n_b, index_a, index_b)
        edge_group = group_a[index_a]
    edges_per_group = np.bincount(edge_group, minlength=1)
    single = edges_per_group[edge_group] == 1
    chosen = [np.flatnonzero(single)]  # a component with one edge: that edge
    multi = np.flatnonzero(~single)
    if len(multi):
        order = multi[np.argsort(edge_group[multi], kind="stable")]
        bounds = np.flatnonzero(np.diff(edge_group[order])) + 1
        for edges in np.split(order, bounds):  # one solver call per multi-edge component
            rows, local_a = np.unique(index_a[edges], return_inverse=True)
            cols, local_b = np.unique(index_b[edges], return_inverse=True)
            if len(rows) * len(cols) > SPARSE_CELLS:
                chosen.append(edges[sparse_assignment(len(rows), len(cols), local_a, local_b, weight[edges])])
                continue
            matrix = np.zeros((len(rows), len(cols)))
            edge_at = np.full((len(rows), len(cols)), -1, dtype=np.int64)
            # A tiny bonus per edge: among assignments of equal weight, prefer edges to non-edges.
            np.maximum.at(matrix, (local_a, local_b), weight[edges] + 1e-12)
            edge_at[local_a, local_b] = edges  # a duplicate pair keeps one position (weights checked below)
            r, c = hungarian_max(matrix)
            picked = edge_at[r, c]
            picked = picked[picked >= 0]
            chosen.append(picked)
    chosen = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    partner_a = np.full(n_a, -1, dtype=np.int64)
    partner_b = np.full(n_b, -1, dtype=np.int64)
    partner_a[index_a[chosen]] = index_b[chosen]
    partner_b[index_b[chosen]] = index_a[chosen]
    return partner_a, partner_b, chosen


def sparse_assignment(k, m, rows, cols, weight):
    """Positions (into the edge arrays) of a maximum-weight one-to-one assignment over the edges of a
    k x m bipartite graph, in memory linear in the edges: :func:`.assignment.max_weight_matching`
    (NumPy, compiled where numba imports; no SciPy needed)."""
    return max_weight_matching(k, m, rows, cols, weight)


def scipy_sparse_assignment(k, m, rows, cols, weight):
    """The same assignment as :func:`sparse_assignment` by SciPy's ``min_weight_full_bipartite_matching``
    (LAPJVsp), kept as the reference the NumPy solver is tested and measured against.

    The completion: rows are the k features of A and a dummy per feature of B, columns the m features
    of B and a dummy per feature of A; A_i-B_j costs K - w, A_i-dummy(A_i) and dummy(B_j)-B_j cost K,
    dummy(B_j)-dummy(A_i) costs K for every edge (i, j). Every full matching has k + m cells, so its
    cost is (k + m)K - (the weight of the A-B edges in it): the cheapest is the heaviest assignment."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    weight = np.maximum(np.asarray(weight, dtype=float), 0.0) + EDGE_BONUS  # among equal totals, more edges
    # one entry per (row, col): the heaviest of duplicates
    order = np.lexsort((-weight, cols, rows))
    first = np.r_[True, (np.diff(rows[order]) != 0) | (np.diff(cols[order]) != 0)]
    unique = order[first]
    r, c, w = rows[unique], cols[unique], weight[unique]
    big = float(w.max(initial=0.0)) + 1.0
    n = k + m
    matrix = csr_matrix((np.concatenate([big - w, np.full(k, big), np.full(m, big), np.full(len(r), big)]),
                         (np.concatenate([r, np.arange(k), k + np.arange(m), k + c]),
                          np.concatenate([c, m + np.arange(k), np.arange(m), m + r]))), shape=(n, n))
    row_of, col_of = min_weight_full_bipartite_matching(matrix)
    real = (row_of < k) & (col_of < m)
    matched_r, matched_c = row_of[real], col_of[real]
    key = r * m + c  # sorted: unique follows (row, col) order
    return np.sort(unique[np.searchsorted(key, matched_r * m + matched_c)])


def group_classes(n_members_a, n_members_b):
    """Class of groups from their member counts (arrays): 1:1, 1:n, n:1, m:n."""
    n_members_a = np.asarray(n_members_a)
    n_members_b = np.asarray(n_members_b)
    out = np.full(n_members_a.shape, "m:n", dtype=object)
    out[(n_members_a == 1) & (n_members_b == 1)] = "1:1"
    out[(n_members_a == 1) & (n_members_b > 1)] = "1:n"
    out[(n_members_a > 1) & (n_members_b == 1)] = "n:1"
    return out


def weakest_links(n_a, n_b, index_a, index_b, probability, edge_group, n_groups):
    """Per group, the smallest edge probability on a maximum spanning tree (NaN for none): the largest θ
    for which the group's edges with p >= θ still connect it. Every multi-edge group bisects on its own
    sorted edge probabilities, all groups at once (one labelling of the whole graph per step)."""
    out = np.full(n_groups, np.nan)
    if not len(index_a):
        return out
    index_a = np.asarray(index_a, dtype=np.int64)
    index_b = np.asarray(index_b, dtype=np.int64)
    probability = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    edges_per_group = np.bincount(edge_group, minlength=n_groups)
    single = edges_per_group[edge_group] == 1
    out[edge_group[single]] = probability[single]
    multi = np.flatnonzero(~single)
    if not len(multi):
        return out
    # each multi-edge group's distinct probabilities, highest first: levels[start[g] + k]
    order = multi[np.lexsort((-probability[multi], edge_group[multi]))]
    g_sorted, p_sorted = edge_group[order], probability[order]
    distinct = np.r_[True, (np.diff(g_sorted) != 0) | (np.diff(p_sorted) != 0)]
    level_group, levels = g_sorted[distinct], p_sorted[distinct]
    count = np.bincount(level_group, minlength=n_groups)
    start = np.cumsum(count) - count
    groups = np.unique(level_group)
    low, high = np.zeros(n_groups, dtype=np.int64), count - 1  # the answer is levels[start + k], smallest k
    u, v = index_a[multi], index_b[multi] + n_a
    node_group = np.concatenate([edge_group[multi], edge_group[multi]])
    nodes = np.concatenate([u, v])
    while np.any(low[groups] < high[groups]):
        middle = (low + high) // 2
        theta = levels[start[groups] + middle[groups]]
        threshold = np.full(n_groups, -np.inf)
        threshold[groups] = theta
        keep = probability[multi] >= threshold[edge_group[multi]]
        labels = connected_labels(n_a + n_b, u[keep], v[keep])[nodes]
        first = np.full(n_groups, -1, dtype=np.int64)
        first[node_group] = labels  # any one node's label per group
        connected = np.ones(n_groups, dtype=bool)
        np.logical_and.at(connected, node_group, labels == first[node_group])
        open_ = low < high
        done_high = open_ & connected
        high = np.where(done_high, middle, high)
        low = np.where(open_ & ~connected, middle + 1, low)
    out[groups] = levels[start[groups] + low[groups]]
    return out


def kept_edges(edges, thresholds, usable_a, usable_b):
    """(p,) bool: the candidate pairs that are edges of the match graph, both features usable: the learned
    probability ``q`` at least ``p_edge`` where the edges carry it, else either raw probability (the fixed
    thresholds)."""
    if edges.q is not None:
        keep = np.asarray(edges.q, dtype=float) >= thresholds.p_edge
    else:
        keep = (edges.p_same >= thresholds.p_edge) | (edges.p_part >= thresholds.p_edge)
    if edges.linked is not None:  # doubtful pairs the group test linked (:mod:`.group_test`)
        keep = keep | np.asarray(edges.linked, dtype=bool)
    if edges.cut is not None:  # links the cut test removed (:mod:`.group_test`)
        keep = keep & ~np.asarray(edges.cut, dtype=bool)
    return keep & usable_a[edges.index_a] & usable_b[edges.index_b]


def edge_probability(edges):
    """(p,) probability that each candidate pair is a true correspondence: the learned ``q``, else the
    raw score through :data:`CALIBRATION`."""
    probability = np.asarray(edges.q, dtype=float) if edges.q is not None else calibrate(edges.raw_score)
    if edges.linked is not None and edges.link_p is not None:
        linked = np.asarray(edges.linked, dtype=bool)
        probability = np.where(linked, np.maximum(probability, np.asarray(edges.link_p, dtype=float)), probability)
    if edges.cut is not None and edges.cut_p is not None:
        cut = np.asarray(edges.cut, dtype=bool)
        probability = np.where(cut, np.minimum(probability, np.asarray(edges.cut_p, dtype=float)), probability)
    return probability


def decide(n_a, n_b, edges, thresholds=None, usable_a=None, usable_b=None):
    """Groups, classes and assignments from CandidateEdges (no geometry work): a MatchResult without
    the 1:1 change test (1:1 pairs get "unchanged" until :func:`change_test` refines them)."""
    thresholds = thresholds or MatchThresholds()
    usable_a = np.ones(n_a, dtype=bool) if usable_a is None else np.asarray(usable_a, dtype=bool)
    usable_b = np.ones(n_b, dtype=bool) if usable_b is None else np.asarray(usable_b, dtype=bool)
    keep = kept_edges(edges, thresholds, usable_a, usable_b)
    index_a, index_b = edges.index_a[keep], edges.index_b[keep]
    all_probability = edge_probability(edges)
    probability = all_probability[keep]
    group_a, group_b = components(n_a, n_b, index_a, index_b)
    n_groups = int(max(group_a.max(initial=-1), group_b.max(initial=-1)) + 1)
    edge_group = group_a[index_a]
    # Learned: the assignment maximises the summed probability of being the same object (the expected IoU,
    # scaled far below any difference of q that matters, breaks ties: q saturates at 1 for clear pairs, and
    # a tie would leave the choice to the solver's order); else the expected IoU.
    weight = probability + 1e-6 * edges.iou_mean[keep] if edges.q is not None else edges.iou_mean[keep]
    partner_a, partner_b, chosen = assign_one_to_one(n_a, n_b, index_a, index_b, weight, edge_group)
    match_model = load_match_model() if edges.q is not None else None
    sigma_of_a, sigma_of_b = _feature_sigmas(n_a, n_b, edges)
    rows = np.flatnonzero(keep)[chosen]
    assigned_p = (probability[chosen] if match_model is None else
                  match_model.assigned(probability[chosen], edges.p_same[rows], edges.p_part[rows],
                                       edges.iou_mean[rows], sigma_of_a[index_a[chosen]]))
    p_a = np.full(n_a, np.nan)
    p_b = np.full(n_b, np.nan)
    p_a[index_a[chosen]] = assigned_p
    p_b[index_b[chosen]] = assigned_p

    count_a = np.bincount(group_a[group_a >= 0], minlength=n_groups)
    count_b = np.bincount(group_b[group_b >= 0], minlength=n_groups)
    group_class = group_classes(count_a, count_b)
    class_a = np.full(n_a, "unmatched", dtype=object)
    class_b = np.full(n_b, "unmatched", dtype=object)
    class_a[group_a >= 0] = group_class[group_a[group_a >= 0]]
    class_b[group_b >= 0] = group_class[group_b[group_b >= 0]]

    change_a = np.full(n_a, "new", dtype=object)
    change_b = np.full(n_b, "removed", dtype=object)
    for name, change in (("1:1", "unchanged"), *CHANGE_OF_CLASS.items()):
        change_a[class_a == name] = change
        change_b[class_b == name] = change
    change_a[~usable_a] = None
    change_b[~usable_b] = None

    members_a = _members(group_a, n_groups)
    members_b = _members(group_b, n_groups)
    group_p = weakest_links(n_a, n_b, index_a, index_b, probability, edge_group, n_groups)
    groups = {
        "id": np.arange(n_groups, dtype=np.int64),
        "class": group_class,
        "members_a": members_a,
        "members_b": members_b,
        "p": group_p,
    }
    result = MatchResult(group_a, group_b, class_a, class_b, partner_a, partner_b, p_a, p_b, change_a, change_b,
                         groups, int(len(edges)), int(keep.sum()), int((~usable_a).sum()), int((~usable_b).sum()),
                         *(np.full(n_a, np.nan) for _ in range(4)))
    result.change_p_a, result.change_p_b = change_probabilities(
        n_a, n_b, edges, all_probability, group_a, group_b, class_a, class_b, group_p, p_a, p_b, match_model,
        (sigma_of_a, sigma_of_b))
    result.change_p_a[~usable_a] = np.nan
    result.change_p_b[~usable_b] = np.nan
    return result


def _feature_sigmas(n_a, n_b, edges):
    """σ of each input feature and, for a reference feature, the largest σ among its candidate pairs (NaN
    where the edges carry no σ or the feature has no candidate)."""
    sigma_a, sigma_b = np.full(n_a, np.nan), np.full(n_b, np.nan)
    sigma = getattr(edges, "sigma", None)
    if sigma is not None and len(edges):
        sigma_a[edges.index_a] = sigma
        peak = np.full(n_b, -np.inf)
        np.maximum.at(peak, edges.index_b, sigma)
        sigma_b = np.where(np.isfinite(peak), peak, np.nan)
    return sigma_a, sigma_b


def change_probabilities(n_a, n_b, edges, probability, group_a, group_b, class_a, class_b, group_p, p_a, p_b,
                         match_model, sigmas=(None, None)):
    """(n_a,), (n_b,) probability that each feature's change label is right, before the 1:1 change test:
    new / removed: no candidate pair is a true correspondence (1 - the largest pair probability); split,
    merged, reshaped: the group's weakest necessary link; 1:1: the assignment's p (the change test then
    multiplies in its own probability). Through the shipped calibration tables where there are some."""
    out = []
    for n, index, group, klass, p, sigma in ((n_a, edges.index_a, group_a, class_a, p_a, sigmas[0]),
                                           (n_b, edges.index_b, group_b, class_b, p_b, sigmas[1])):
        best = np.zeros(n)
        if len(index):
            np.maximum.at(best, index, probability)
        value = np.where(group >= 0, group_p[np.maximum(group, 0)] if len(group_p) else np.nan, 1.0 - best)
        one = klass == "1:1"
        value[one] = p[one]
        if match_model is not None:
            unmatched = group < 0
            value[unmatched] = match_model.calibrated("unmatched", value[unmatched],
                                                      None if sigma is None else sigma[unmatched])
            grouped = (group >= 0) & ~one
            value[grouped] = match_model.calibrated("grouped", value[grouped],
                                                    None if sigma is None else sigma[grouped])
        out.append(np.asarray(value, dtype=float))
    return out


def _members(group, n_groups):
    """The members of each group, a list of (count,) int64 arrays (views of one sorted array: slicing is
    several times faster than np.split for 100,000 groups)."""
    positions = np.flatnonzero(group >= 0)
    order = positions[np.argsort(group[positions], kind="stable")].astype(np.int64)
    ends = np.cumsum(np.bincount(group[positions], minlength=n_groups))
    return [order[start:end] for start, end in zip((ends - np.diff(ends, prepend=0)).tolist(), ends.tolist())]


def change_test(lonlat_a, lonlat_b, sigma_a, index_a, index_b, sigma_floor=0.05, workers=None, exact_iou=True):
    """Exact IoU of pairs (full detail); after moving B's centroid onto A's, their IoU and mean boundary
    offset (symmetric difference / mean perimeter, metres); and P(|d| >= |move|) for d ~ N(0, σ²I₂)
    (σ floored at ``sigma_floor``). Returns four (k,) arrays. Chunks run on ``workers`` threads
    (shapely releases the GIL), as scoring's do."""
    sigma_a = np.asarray(sigma_a, dtype=float)

    def test(rows):
        ia, ib = index_a[rows], index_b[rows]
        frames = project_pairs(lonlat_a, lonlat_b, ia, ib)
        raw_iou = (exact_overlap_of_frames(frames).iou if exact_iou
                   else np.full(len(ia), np.nan))
        move = shapely.get_coordinates(shapely.centroid(frames.a)) - shapely.get_coordinates(shapely.centroid(frames.b))
        moved_b = translate(frames.b, move)
        aligned = exact_overlap(frames.a, moved_b)
        perimeter = 0.5 * (shapely.length(frames.a) + shapely.length(moved_b))
        difference = aligned.area_a + aligned.area_b - 2.0 * aligned.area_inter
        offset = np.where(perimeter > 0, np.maximum(difference, 0.0) / np.maximum(perimeter, 1e-12), 0.0)
        sigma = np.maximum(sigma_a[ia], sigma_floor)
        p_move = np.exp(-np.sum(move**2, axis=1) / (2.0 * sigma**2))
        return raw_iou, aligned.iou, offset, p_move, aligned.area_a, aligned.area_b

    chunks = [slice(start, start + _CHANGE_CHUNK) for start in range(0, len(index_a), _CHANGE_CHUNK)]
    parts = list(ordered_map(test, chunks, workers=workers))
    if not parts:
        return tuple(np.zeros(0) for _ in range(6))
    return tuple(np.concatenate([part[k] for part in parts]) for k in range(6))


def apply_change_test(result, one, tested, thresholds, sigma_a=None, match_model=None):
    """Store the change test of the 1:1 input positions ``one`` in the result and mark the modified pairs.

    With a learned model (and ``sigma_a``): modified when P(modified | the pair's shape offset, aligned
    IoU, area ratio, move, size and σ) reaches 0.5, and the change probability of the pair becomes the
    calibrated P(assignment right) x P(its label); else the fixed rule (``shape_offset_m``,
    ``alpha_translation``)."""
    exact_iou, aligned_iou, offset, p_move = tested[:4]
    result.exact_iou_a[one] = exact_iou
    result.aligned_iou_a[one] = aligned_iou
    result.shape_offset_a[one] = offset
    result.translation_p_a[one] = p_move
    if match_model is not None and sigma_a is not None and len(tested) >= 6:
        features = change_features(offset, aligned_iou, p_move, tested[4], tested[5], np.asarray(sigma_a)[one])
        p_modified = match_model.change(features)
        is_modified = p_modified >= 0.5
        label_p = np.where(is_modified, p_modified, 1.0 - p_modified)
        change_p = match_model.calibrated("one_to_one", result.p_a[one] * label_p, np.asarray(sigma_a)[one])
        if result.change_p_a is not None:
            result.change_p_a[one] = change_p
            result.change_p_b[result.partner_a[one]] = change_p
        modified = one[is_modified]
    else:
        modified = one[(offset > thresholds.shape_offset_m) | (p_move < thresholds.alpha_translation)]
    result.change_a[modified] = "modified"
    result.change_b[result.partner_a[modified]] = "modified"


def match_layers(model, layer_a, layer_b, sigma_a, search_distance_m=0.0, ids_a=None, ids_b=None, thresholds=None,
                 cancelled=None, progress=None, max_vertices=None, workers=None, exact_iou=False):
    """Match two layers: a :class:`MatchResult`, or None when cancelled.

    Parameters
    ----------
    model : :class:`.scoring.OverlapModel`.
    layer_a, layer_b : the input (new) and reference (old) layers (:class:`.preparation.PreparedLayer`:
        as read, full detail, and as the network sees them).
    sigma_a : (n_a,) positional uncertainty per input feature, metres.
    search_distance_m : float, widened per feature to at least 3σ as in scoring.
    ids_a, ids_b : feature ids when both layers are one layer (no self-pairs).
    thresholds : :class:`MatchThresholds` (defaults chosen on tuning data).
    cancelled : optional callable -> bool; progress : optional callable(fraction, text).
    max_vertices, workers : chunking and threads of the scoring (as in score_candidate_pairs).
    exact_iou : also compute the exact IoU of every 1:1 pair (``exact_iou_a``; no decision needs it).
    """
    thresholds = thresholds or MatchThresholds()
    cancelled = cancelled or (lambda: False)
    sigma_a = np.asarray(sigma_a, dtype=float)
    n_a, n_b = len(layer_a), len(layer_b)
    edges = candidate_edges(model, layer_a, layer_b, sigma_a, search_distance_m, ids_a, ids_b,
                            thresholds, cancelled, progress, max_vertices, workers)
    if edges is None or cancelled():
        return None
    return decide_and_test(n_a, n_b, edges, layer_a.source, layer_b.source, sigma_a, thresholds, cancelled, progress,
                           workers, exact_iou)


def decide_and_test(n_a, n_b, edges, lonlat_a, lonlat_b, sigma_a, thresholds=None, cancelled=None, progress=None,
                    workers=None, exact_iou=False):
    """:func:`decide`, then the change test of the 1:1 pairs (full-detail lon/lat layers): a
    :class:`MatchResult`, or None when cancelled."""
    thresholds = thresholds or MatchThresholds()
    cancelled = cancelled or (lambda: False)
    usable_a, usable_b = _usable(lonlat_a, n_a), _usable(lonlat_b, n_b)
    link_doubtful(n_a, n_b, edges, thresholds, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a)
    result = decide(n_a, n_b, edges, thresholds, usable_a, usable_b)
    if progress is not None:
        progress(0.85, "Testing one-to-one pairs for change")
    one = np.flatnonzero((result.class_a == "1:1") & (result.partner_a >= 0))
    if len(one):
        tested = change_numbers_from_edges(edges, one, result.partner_a[one], n_b, sigma_a, thresholds.sigma_floor)
        redo = np.ones(len(one), dtype=bool) if tested is None or exact_iou else np.isnan(tested[1])
        if redo.any():
            again = change_test(lonlat_a, lonlat_b, np.asarray(sigma_a, dtype=float), one[redo],
                                result.partner_a[one[redo]], thresholds.sigma_floor, workers, exact_iou)
            if tested is None:
                tested = again
            else:
                for column, values in zip(tested, again):
                    column[redo] = values
        if cancelled():
            return None
        apply_change_test(result, one, tested, thresholds, sigma_a,
                          load_match_model() if edges.q is not None else None)
    if progress is not None:
        progress(1.0, "Matched")
    return result


def change_numbers_from_edges(edges, index_a, index_b, n_b, sigma_a, sigma_floor=0.05):
    """The change test's numbers (:func:`change_test`, without the raw exact IoU: NaN) of the pairs
    (index_a, index_b) from what :func:`candidate_edges` measured on them: the shapes with the centroids made
    to coincide, in the pair's frame. NaN rows (aligned IoU NaN): pairs not measured on full detail (a
    simplified or spread feature), or not among the edges; None when the edges carry no such numbers."""
    aligned = getattr(edges, "aligned", None)
    if aligned is None or getattr(edges, "distance", None) is None:
        return None
    area_a, area_b, inter, perimeter, full, aligned_iou = aligned
    key = edges.index_a.astype(np.int64) * n_b + edges.index_b
    order = np.argsort(key, kind="stable")
    wanted = np.asarray(index_a, dtype=np.int64) * n_b + np.asarray(index_b, dtype=np.int64)
    at = np.minimum(np.searchsorted(key[order], wanted), max(len(order) - 1, 0))
    row = order[at] if len(order) else np.zeros(0, dtype=np.int64)
    found = (key[row] == wanted) & full[row] if len(order) else np.zeros(len(wanted), dtype=bool)
    nan = np.full(len(wanted), np.nan)
    iou = np.where(found, aligned_iou[row], np.nan)
    difference = area_a[row] + area_b[row] - 2.0 * inter[row]
    offset = np.where(perimeter[row] > 0, np.maximum(difference, 0.0) / np.maximum(perimeter[row], 1e-12), 0.0)
    sigma = np.maximum(np.asarray(sigma_a, dtype=float)[np.asarray(index_a, dtype=np.int64)], sigma_floor)
    p_move = np.exp(-edges.distance[row] ** 2 / (2.0 * sigma**2))
    return (nan, iou, np.where(found, offset, np.nan), np.where(found, p_move, np.nan),
            np.where(found, area_a[row], np.nan), np.where(found, area_b[row], np.nan))


def link_doubtful(n_a, n_b, edges, thresholds, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a):
    """The group-level tests of :mod:`.group_test` (:func:`.group_test.apply_group_tests`: the cut test, the group test
    of the doubtful pairs, the cut test again), where the edges carry the learned q and the shipped model has
    them: sets ``edges.linked`` / ``edges.link_p`` and ``edges.cut`` / ``edges.cut_p``."""
    match_model = load_match_model() if edges.q is not None else None
    if match_model is None or not len(edges) or not ({"groups", "cuts"} & set(match_model.config)):
        return edges
    # only pairs like those they were fitted on: inside the pair model's domain (buildings at σ of metres)
    area_a, area_b = getattr(edges, "area_a", None), getattr(edges, "area_b", None)
    eligible = (match_model.in_domain(area_a, area_b, edges.sigma)
                if area_a is not None and area_b is not None and edges.sigma is not None else None)
    return run_group_tests(n_a, n_b, edges, thresholds, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a,
                           match_model.config.get("groups"), match_model.config.get("cuts"), eligible)


def run_group_tests(n_a, n_b, edges, thresholds, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a, groups, cuts,
                    eligible=None):
    """:func:`.group_test.apply_group_tests` with the configurations ``groups`` and ``cuts`` (None: no such test)
    on the graph of these edges as it stands (:func:`kept_edges`, :func:`tentative_groups`)."""
    return apply_group_tests(edges, thresholds.p_edge, usable_a, usable_b, lonlat_a, lonlat_b,
                             np.asarray(sigma_a, dtype=float), groups, cuts,
                             tentative_groups(n_a, n_b, thresholds, usable_a, usable_b),
                             lambda e: kept_edges(e, thresholds, usable_a, usable_b), eligible=eligible)


def tentative_groups(n_a, n_b, thresholds, usable_a, usable_b):
    """A function of CandidateEdges: the groups of their graph as it stands (with the links made so far),
    (group_a, group_b, members_a, members_b)."""
    def groups_of(edges):
        keep = kept_edges(edges, thresholds, usable_a, usable_b)
        group_a, group_b = components(n_a, n_b, edges.index_a[keep], edges.index_b[keep])
        n_groups = int(max(group_a.max(initial=-1), group_b.max(initial=-1)) + 1)
        return group_a, group_b, _members(group_a, n_groups), _members(group_b, n_groups)

    return groups_of


def _usable(layer, n):
    usable = getattr(layer, "usable", None)
    return np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
