"""How the overlap of a pair moves when B is translated: the boundary sweep, exact to first order.

Translating B by d changes its intersection with A by what B's boundary sweeps through A
(Reynolds' transport theorem, exact for polygons):

    |A ∩ (B + d)| − |A ∩ B| = ∮_∂B (d·n) · (share of the segment [p, p + d] inside A) ds,

with n the outward normal of B's boundary at p. The **sweep surrogate** evaluates this with the
segment taken along the normal instead of along d: each boundary element of B moves by τ = d·n
along its own normal, gaining (τ > 0) or losing (τ < 0) the part of that normal ray that lies in A,

    I_s(d) = |A ∩ B| + Σ_j w_j h_j(d·n_j),   h_j(τ) = ∫_0^τ 1_A(p_j + t n_j) dt.

It is exact for any motion of a boundary element along its normal, so for every pair whose
boundaries are locally parallel (the same object mapped twice, an offset, a shared border); it
leaves out the corner terms (second order in d: a unit square against itself moved by (x, y) loses
x + y − xy, the surrogate says x + y). Each h_j is piecewise linear with a kink wherever the normal
ray crosses ∂A, so

    I_s(d) = I₀ + d·g + Σ_c w_c ε_c [(d·n_c − s_c)⁺ − (−s_c)⁺]

with one term per crossing c at distance s_c along the ray within ``reach``·σ (ε = +1 entering A,
−1 leaving) and the crossings further behind folded into the linear term g. That is a one-layer
ReLU function of d per pair, built once (NumPy over all boundary samples × A's edges, no GEOS
call per sample) and evaluated at any number of displacements for a few multiply-adds each.

Clipped to [0, min(|A|, |B|)], it gives the cover fractions and IoU of any displacement without an
overlay; :func:`sweep_summary` turns it into the descriptors the network reads. Shapes and units:
polygons in each pair's local frame (metres), σ per-axis standard deviation of d (metres).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely

from .overlap import ratio
from .parallel import chunk_bounds, index_runs
from .quasirandom import sobol_points
from .special import ndtri

#: Boundary samples of B per pair, evenly spaced along its boundary.
SAMPLES_PER_PAIR = 32
#: Crossings of ∂A further than this many σ along a normal ray are folded into the linear term.
REACH_SIGMAS = 4.0
#: The sweep sees A with at most this many vertices (Douglas-Peucker, coarsened step by step until it fits):
#: the cost is boundary samples × A's edges, and a wiggle of A far below σ hardly moves the distribution.
SWEEP_MAX_VERTICES = 48
#: The Douglas-Peucker tolerances tried, × sqrt(|A|).
COARSEN_STEPS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: Bound on (boundary samples × edges of A) handled at once: about 50 MB of temporaries.
CHUNK_PRODUCT = 500_000
#: A normal ray meeting an edge of A at a sine below this is taken as parallel to it (no crossing).
PARALLEL_SINE = 1e-9
#: A surrogate overlap below this share of both features counts as none (as TOUCH_TOLERANCE in .encoding):
#: a shared border's rounding is not an overlap.
NO_OVERLAP_SHARE = 1e-9
#: Displacements of the summary: fixed, so the descriptors of a pair are the same in every run.
SUMMARY_POINTS = 64
#: Pairs summarised at once: a few dozen crossings a pair × 64 displacements × 8 bytes, a few arrays, ~20 MB.
SUMMARY_BLOCK_PAIRS = 1024
_SUMMARY_SEED = 20261202


@dataclass
class Sweep:
    """The sweep surrogate of n pairs (see the module docstring).

    area_a, area_b, inter0 : (n,) areas of A, B and A ∩ B (m²).
    linear : (n, 2) g, the linear term (m).
    pair, normal, offset, weight : (C,) crossings within reach: the pair they belong to (sorted),
        the unit normal n_c (C, 2), the distance s_c along it (m) and w_c ε_c (m).
    base : (n,) Σ_c w_c ε_c (−s_c)⁺, so that I_s(0) = I₀.
    """

    area_a: np.ndarray
    area_b: np.ndarray
    inter0: np.ndarray
    linear: np.ndarray
    pair: np.ndarray
    normal: np.ndarray
    offset: np.ndarray
    weight: np.ndarray
    base: np.ndarray

    def __len__(self):
        return len(self.area_a)

    def intersection(self, d):
        """(n, k) surrogate |A ∩ (B + d)| (m²) for (n, k, 2) displacements d (m), clipped to [0, min area]."""
        d = np.asarray(d, dtype=float)
        n, k = d.shape[:2]
        value = self.inter0[:, None] - self.base[:, None] + np.einsum("nkj,nj->nk", d, self.linear)
        if len(self.pair):
            tau = np.einsum("ckj,cj->ck", d[self.pair], self.normal)
            ramp = self.weight[:, None] * np.maximum(tau - self.offset[:, None], 0.0)
            where = (self.pair[:, None] * k + np.arange(k)).ravel()
            value += np.bincount(where, ramp.ravel(), minlength=n * k).reshape(n, k)
        return np.clip(value, 0.0, np.minimum(self.area_a, self.area_b)[:, None])

    def covers(self, d):
        """(cover_a, cover_b, iou), each (n, k), of the surrogate at displacements d (n, k, 2)."""
        inter = self.intersection(d)
        area_a, area_b = self.area_a[:, None], self.area_b[:, None]
        return ratio(inter, area_a), ratio(inter, area_b), ratio(inter, area_a + area_b - inter)


def oriented_edges(geoms):
    """Every boundary edge of (n,) polygons, oriented so the polygon lies to its left.

    Returns (pair (m,) int64, start (m, 2), vector (m, 2)); zero-length edges are dropped and
    None/empty geometries have none. The outward normal of an edge is (vy, −vx)/|v|. Rings are
    turned by their shoelace sign (exteriors counter-clockwise, holes clockwise), all at once.
    """
    parts, part_of = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    same = coord_of[1:] == coord_of[:-1]
    start, ring = coords[:-1][same], coord_of[:-1][same]
    vector = coords[1:][same] - start
    doubled_area = np.bincount(ring, start[:, 0] * vector[:, 1] - start[:, 1] * vector[:, 0], minlength=len(rings))
    exterior = np.r_[True, ring_of[1:] != ring_of[:-1]]  # get_rings lists each part's exterior first
    turn = (doubled_area < 0) == exterior
    flip = turn[ring]
    start = np.where(flip[:, None], start + vector, start)
    vector = np.where(flip[:, None], -vector, vector)
    keep = (vector[:, 0] != 0) | (vector[:, 1] != 0)
    return part_of[ring_of[ring[keep]]].astype(np.int64), start[keep], vector[keep]


def boundary_samples(geoms, per_pair=SAMPLES_PER_PAIR):
    """``per_pair`` samples of the boundary of each of (n,) polygons, evenly spaced along its length.

    Sample j of a pair sits at arc length (j + ½)·P/per_pair of its boundary (all rings, all parts;
    P the perimeter) and stands for P/per_pair of it: a midpoint rule for boundary integrals.
    Returns (pair (s,), point (s, 2), weight (s,) metres, normal (s, 2) outward unit).
    """
    pair, start, vector = oriented_edges(geoms)
    n = len(geoms)
    length = np.hypot(vector[:, 0], vector[:, 1])
    perimeter = np.bincount(pair, length, minlength=n)
    has = np.flatnonzero(perimeter > 0)
    sample_pair = np.repeat(has, per_pair)
    first_edge = np.searchsorted(pair, np.arange(n))
    before = np.r_[0.0, np.cumsum(length)]  # arc length before each edge, counted over all pairs
    along = before[first_edge[sample_pair]] + (np.tile(np.arange(per_pair), len(has)) + 0.5) * (
        perimeter[sample_pair] / per_pair)
    edge = np.clip(np.searchsorted(before, along, side="right") - 1, 0, len(length) - 1)
    fraction = np.clip((along - before[edge]) / length[edge], 0.0, 1.0)
    tangent = vector[edge] / length[edge, None]
    return (sample_pair, start[edge] + fraction[:, None] * vector[edge], perimeter[sample_pair] / per_pair,
            np.column_stack([tangent[:, 1], -tangent[:, 0]]))


def coarse_outline(geoms, max_vertices=SWEEP_MAX_VERTICES):
    """(n,) copies of polygons with at most ``max_vertices`` vertices where :data:`COARSEN_STEPS` gets there.

    Only the geometries above the limit are simplified (Douglas-Peucker, no topology repair: the sweep
    only reads edges), each with the smallest tolerance of the steps that brings it under the limit;
    a step that would empty a geometry is skipped, and what no step brings under stays at its last.
    """
    geoms = np.array(geoms, dtype=object, copy=True)
    todo = np.flatnonzero(shapely.get_num_coordinates(geoms) > max_vertices)
    root = np.sqrt(np.nan_to_num(shapely.area(geoms[todo])))
    for factor in COARSEN_STEPS:
        if not todo.size:
            break
        simpler = shapely.simplify(geoms[todo], factor * root, preserve_topology=False)
        usable = ~(shapely.is_missing(simpler) | shapely.is_empty(simpler))
        geoms[todo[usable]] = simpler[usable]
        fits = shapely.get_num_coordinates(geoms[todo]) <= max_vertices
        todo, root = todo[~fits], root[~fits]
    return geoms


def _crossings(sample_pair, point, normal, edge_pair, edge_start, edge_vector, n):
    """(sample, s, entering) of every crossing of the normal lines of the samples with ∂A.

    edge_* sorted by pair. Ragged product samples × edges of the same pair, cut into parts of
    about CHUNK_PRODUCT elements.
    """
    count = np.bincount(edge_pair, minlength=n)
    first = np.cumsum(count) - count
    reps = count[sample_pair]
    out = []
    for start, stop in chunk_bounds(reps, CHUNK_PRODUCT):
        rows = np.arange(start, stop)
        r = reps[rows]
        sample = np.repeat(rows, r)
        edge = index_runs(first[sample_pair[rows]], r)
        nrm, vec = normal[sample], edge_vector[edge]
        rel = edge_start[edge] - point[sample]
        denom = nrm[:, 0] * vec[:, 1] - nrm[:, 1] * vec[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (rel[:, 0] * vec[:, 1] - rel[:, 1] * vec[:, 0]) / denom
            t = (rel[:, 0] * nrm[:, 1] - rel[:, 1] * nrm[:, 0]) / denom
        # A ray parallel to an edge (to within PARALLEL_SINE) does not cross it: where layers are drawn on
        # a grid the normals of B run along many of A's edges, and rounding noise in a zero determinant
        # would make crossings out of nothing, differently in every projection of the pair.
        length = np.hypot(vec[:, 0], vec[:, 1])
        hit = (np.abs(denom) > PARALLEL_SINE * length) & (t >= 0) & (t < 1)
        # Entering A when moving along +n: the edge's outward normal (vy, -vx) points against n.
        entering = (vec[hit, 1] * nrm[hit, 0] - vec[hit, 0] * nrm[hit, 1]) < 0
        out.append((sample[hit], s[hit], entering))
    if not out:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return tuple(np.concatenate(column) for column in zip(*out))


def build_sweep(a, b, sigma, inter0=None, per_pair=SAMPLES_PER_PAIR, reach=REACH_SIGMAS):
    """The :class:`Sweep` of (n,) pairs (valid polygons or None, metres) at σ (scalar or (n,), m).

    inter0 : (n,) |A ∩ B| when already known (one overlay each otherwise).
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    area_a, area_b = np.nan_to_num(shapely.area(a)), np.nan_to_num(shapely.area(b))
    if inter0 is None:
        with np.errstate(invalid="ignore"):
            inter0 = np.nan_to_num(shapely.area(shapely.intersection(a, b)))
    sample_pair, point, weight, normal = boundary_samples(b, per_pair)
    edge_pair, edge_start, edge_vector = oriented_edges(coarse_outline(a, SWEEP_MAX_VERTICES))
    order = np.argsort(edge_pair, kind="stable")
    sample, s, entering = _crossings(sample_pair, point, normal, edge_pair[order], edge_start[order],
                                     edge_vector[order], n)
    pair = sample_pair[sample]
    signed = weight[sample] * np.where(entering, 1.0, -1.0)
    reach_m = reach * sigma[pair]
    behind = s <= -reach_m  # (τ − s)⁺ − (−s)⁺ = τ for every τ within reach
    linear = np.column_stack([np.bincount(pair[behind], signed[behind] * normal[sample[behind], j], minlength=n)
                              for j in range(2)])
    near = ~behind & (s < reach_m)  # crossings beyond +reach never contribute within reach
    pair, s, signed, normal_c = pair[near], s[near], signed[near], normal[sample[near]]
    base = np.bincount(pair, signed * np.maximum(-s, 0.0), minlength=n)
    return Sweep(area_a, area_b, np.minimum(inter0, np.minimum(area_a, area_b)), linear, pair, normal_c, s,
                 signed, base)


@lru_cache(maxsize=4)
def summary_points(k=SUMMARY_POINTS):
    """(k, 2) fixed standard-normal displacements: a scrambled Sobol' net (one seed), through the inverse CDF.

    Read-only (cached)."""
    points = ndtri(sobol_points(1, k, np.random.default_rng(_SUMMARY_SEED))[0])
    points.setflags(write=False)
    return points


SWEEP_NAMES = ("sweep_cover_a", "sweep_cover_b", "sweep_iou", "sweep_sd_a", "sweep_sd_b", "sweep_p_zero",
               "sweep_p_iou")


def sweep_summary(a, b, sigma, inter0=None, threshold=0.5):
    """(n, len(SWEEP_NAMES)) the surrogate's mean cover_a, cover_b and IoU, the SDs of the covers,
    P(no overlap) and P(IoU ≥ threshold) at σ, from the :data:`SUMMARY_POINTS` fixed displacements."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    inter0 = None if inter0 is None else np.asarray(inter0, dtype=float)
    out = np.zeros((n, len(SWEEP_NAMES)))
    for start in range(0, n, SUMMARY_BLOCK_PAIRS):  # bounds the (crossings × displacements) temporaries
        rows = slice(start, start + SUMMARY_BLOCK_PAIRS)
        sweep = build_sweep(a[rows], b[rows], sigma[rows], None if inter0 is None else inter0[rows])
        cover_a, cover_b, iou = sweep.covers(sigma[rows, None, None] * summary_points()[None])
        out[rows] = np.column_stack([
            cover_a.mean(1), cover_b.mean(1), iou.mean(1), cover_a.std(1), cover_b.std(1),
            (np.maximum(cover_a, cover_b) <= NO_OVERLAP_SHARE).mean(1), (iou >= threshold).mean(1)])
    return out
