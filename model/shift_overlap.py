"""The overlap of polygon pairs under a shift of B, exactly, without an overlay per shift.

**Trapezoids.** Orient every ring so its polygon lies to the left (:func:`.sweep.oriented_edges`) and
give each non-vertical edge e the sign s_e = −sign(Δx_e) (+1 for an edge with the polygon below it).
Then for any point, 1_A(x, y) = Σ_e s_e 1[x ∈ X_e] 1[y ≤ f_e(x)] (X_e the edge's x-interval, f_e its
line): a signed sum of the regions under the edges. Multiplying the sums of A and of B + d and
integrating over y, every (edge e of A, edge f of B) pair with overlapping x-intervals gives

    −s_e s_f ∫_{X_e ∩ (X_f + dx)} (g_f(x − dx) + dy − f_e(x))⁺ dx,

the integral of the positive part of a linear function over an interval, in closed form
(:func:`_positive_part_integral`); the parts that the baseline and min(f, g) = g − (g − f)⁺ add
cancel exactly, because every vertical line crosses as many left- as right-going edges of a closed
ring. So |A ∩ (B + d)| is a sum over edge pairs; holes, multiparts and shared edges need no special
case (a shared edge gives (0)⁺ = 0). Pairs whose B edge lies below the A edge at every shift give 0 and
are never formed; for large polygons the candidate edge pairs come from a join on x (all pairs at
once), for small ones from the full product.

**Expectation** under d ~ N(0, σ²I₂): the dy-expectation of (c + dy)⁺ is ψ(c) = cΦ(c/σ) + σφ(c/σ), and
ψ has the antiderivative Ψ(c) = ½(c² + σ²)Φ(c/σ) + ½cσφ(c/σ), so for a fixed dx the x-integral is
closed form too. What is left, the integral over dx of a function that is analytic between known
breakpoints (where the x-intervals start or stop overlapping and where c at an interval end passes
within :data:`REACH_SIGMAS` σ of 0), is done by Gauss-Legendre on each smooth piece:
numerically exact (checked against a higher-order rule and randomised QMC in the tests), not a
closed form. Edge pairs whose gap stays beyond 9σ at every shift within reach need no quadrature
(nothing below, a quadratic in dx with Gaussian moments above). Unlike the Green's-theorem form of
issue 29 this is local in x only: every edge pair that shares an x-column within reach counts, so
a province costs seconds, a building pair about a millisecond.

The kernel has an optional compiled twin (:mod:`.shift_kernel_numba`, ``engine="numba"``) with the
same numbers bit for bit; it is never required.

**Atoms.** P(no overlap) is one minus the Gaussian measure of the Minkowski sum A ⊕ (−B), and
P(contained) (the smaller polygon inside the larger) is the measure of the set of shifts where no
part of the smaller meets the complement of the larger. Both sets, within :data:`REACH_SIGMAS` σ of
0, are unions of the parallelograms e ⊕ (−f) of nearby edge pairs and of translated copies of the
polygons (one GEOS union per pair, not per shift); their Gaussian measure is a closed-form sum of
Owen's T over their edges (:func:`gaussian_measure`). The only error is the Gaussian mass beyond
REACH_SIGMAS σ on either axis (< 4Φ(−8) ≈ 5e-15) and GEOS rounding.

Shapes and units: polygons in each pair's local metric frame (metres), shifts d (n, k, 2) metres,
σ (n,) metres per axis.
"""

import math

import numpy as np
import shapely

from .overlap import ratio, translate
from .parallel import chunk_bounds, index_runs
from .special import normal_cdf, normal_pdf, owens_t
from .sweep import oriented_edges

#: Gaussian mass beyond this many σ is left out (4Φ(−8) ≈ 5e-15 of probability).
REACH_SIGMAS = 8.0
#: Pairs whose edge-count product is above this find their edge pairs by a join on x (:func:`_x_join`).
DENSE_PRODUCT = 4096
#: Edge pairs × shifts (or × quadrature nodes) handled at once: about 16 MB per temporary.
CHUNK_ELEMENTS = 2_000_000
#: Gauss-Legendre nodes per smooth piece of the dx-integral.
QUADRATURE_NODES = 16
#: A smooth piece is at most this many σ (in units of c/σ) long: 16 nodes are exact to ~1e-15 there.
PIECE_SIGMAS = 4.0
#: Edge pairs × shifts of the exact kernel handled at once (small enough to stay in cache).
SHIFT_CHUNK_ELEMENTS = 131_072
_GL_X, _GL_W = np.polynomial.legendre.leggauss(QUADRATURE_NODES)


# ==========================================================================
# Edges and edge pairs.
# ==========================================================================
def x_edges(geoms):
    """The non-vertical boundary edges of (n,) polygons, sorted by polygon.

    Returns a dict of (m,) arrays: pair (int64), x0 < x1 (the edge's x-interval), y0, y1 (its heights at
    x0 and x1), sign (+1 where the polygon lies below the edge, −1 above).
    """
    pair, start, vector = oriented_edges(np.asarray(geoms, dtype=object))
    end = start + vector
    keep = vector[:, 0] != 0.0
    pair, start, end, vector = pair[keep], start[keep], end[keep], vector[keep]
    left = vector[:, 0] > 0.0
    # oriented_edges lists the edges polygon by polygon, so they are already sorted by polygon.
    return {"pair": pair, "x0": np.where(left, start[:, 0], end[:, 0]), "x1": np.where(left, end[:, 0], start[:, 0]),
            "y0": np.where(left, start[:, 1], end[:, 1]), "y1": np.where(left, end[:, 1], start[:, 1]),
            "sign": np.where(left, -1.0, 1.0)}


def _first_and_count(pair, n):
    count = np.bincount(pair, minlength=n)
    return np.cumsum(count) - count, count


def edge_pairs(edges_a, edges_b, n, dx_low, dx_high, dy_high):
    """(pair, index_a, index_b) of the edge pairs that can contribute at some shift of B with
    dx ∈ [dx_low, dx_high], dy ≤ dy_high (each (n,)): x-intervals that overlap, and a B edge that can
    rise above the A edge. Sorted by pair, then A edge, then B edge. Small pairs: the full product; large
    pairs: a join on x over all of them at once (:func:`_x_join`).
    """
    first_a, count_a = _first_and_count(edges_a["pair"], n)
    first_b, count_b = _first_and_count(edges_b["pair"], n)
    product = count_a * count_b
    small = np.flatnonzero((product > 0) & (product <= DENSE_PRODUCT))
    parts = []
    if small.size:
        reps = product[small]
        pair = np.repeat(small, reps)
        within = index_runs(np.zeros_like(reps), reps)
        ia = first_a[pair] + within // count_b[pair]
        ib = first_b[pair] + within % count_b[pair]
        parts.append((pair, ia, ib))
    large = np.flatnonzero(product > DENSE_PRODUCT)
    if large.size:
        parts.append(_x_join(edges_a, edges_b, index_runs(first_a[large], count_a[large]),
                             index_runs(first_b[large], count_b[large]), dx_low, dx_high, dy_high))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    pair, ia, ib = (np.concatenate(column) for column in zip(*parts))
    # The same filter for both kinds: overlapping x-intervals under the shift range, B able to rise above A.
    keep = ((edges_a["x0"][ia] < edges_b["x1"][ib] + dx_high[pair])
            & (edges_b["x0"][ib] + dx_low[pair] < edges_a["x1"][ia])
            & (np.maximum(edges_b["y0"][ib], edges_b["y1"][ib]) + dy_high[pair]
               > np.minimum(edges_a["y0"][ia], edges_a["y1"][ia])))
    order = np.argsort(pair[keep], kind="stable")
    return pair[keep][order], ia[keep][order], ib[keep][order]


#: Candidate edge pairs expanded at once by :func:`_x_join` (bounds its scratch memory).
JOIN_ELEMENTS = 4_000_000


def _x_join(edges_a, edges_b, ra, rb, dx_low, dx_high, dy_high):
    """(pair, index_a, index_b), sorted by pair, A edge, B edge: for the A edges ``ra`` and B edges ``rb`` of the
    same pairs, every (A edge, B edge) of one pair whose x-intervals meet under the shift range (closed:
    x0_a ≤ x1_b + dx_high and x0_b + dx_low ≤ x1_a) and whose B edge can reach the A edge's lowest point
    (min y_a ≤ max y_b + dy_high): a superset of the pairs :func:`edge_pairs` keeps. No per-pair loop.

    An A interval [a0, a1] and a B window [q0, q1] meet exactly when a0 lies in [q0, q1], or q0 in (a0, a1]:
    two point-in-interval searches, each one contiguous run of a sorted array (A edges by (pair, a0), B
    windows by (pair, q0)), found by binary search on the key pair · span + x. Float rounding of the key is
    monotone, so no meeting pair is lost and none is found twice; the few extra ones the rounding may let in
    are dropped by the exact tests.
    """
    pa, pb = edges_a["pair"][ra], edges_b["pair"][rb]
    x0a, x1a = edges_a["x0"][ra], edges_a["x1"][ra]
    low_a = np.minimum(edges_a["y0"][ra], edges_a["y1"][ra])
    q0 = edges_b["x0"][rb] + dx_low[pb]
    q1 = edges_b["x1"][rb] + dx_high[pb]
    top = np.maximum(edges_b["y0"][rb], edges_b["y1"][rb]) + dy_high[pb]
    origin = min(float(x0a.min()), float(q0.min())) - 1.0
    span = max(float(x1a.max()), float(q1.max())) - origin + 1.0  # every x − origin lies in [1, span − 1]
    order_a = np.lexsort((x0a, pa))
    key_a = pa[order_a] * span + (x0a[order_a] - origin)
    order_b = np.lexsort((q0, pb))
    key_b = pb[order_b] * span + (q0[order_b] - origin)

    def meeting(i, j):  # of the pairs whose x-ranges meet, those where B can reach A
        keep = (low_a[i] <= top[j]) & (pa[i] == pb[j])
        return i[keep], j[keep]

    # a0 in [q0, q1]: per B window, the A edges starting inside it.
    start = np.searchsorted(key_a, pb * span + (q0 - origin), side="left")
    stop = np.searchsorted(key_a, pb * span + (q1 - origin), side="right")
    parts = _expand(start, stop, lambda j, at: meeting(order_a[at], j))
    # q0 in (a0, a1]: per A edge, the B windows starting inside it.
    start = np.searchsorted(key_b, pa * span + (x0a - origin), side="right")
    stop = np.searchsorted(key_b, pa * span + (x1a - origin), side="right")
    parts += _expand(start, stop, lambda i, at: meeting(i, order_b[at]))
    i, j = (np.concatenate(column) for column in zip(*parts))
    pair, ia, ib = pa[i], ra[i], rb[j]
    order = np.lexsort((ib, ia, pair))
    return pair[order], ia[order], ib[order]


def _expand(start, stop, pairs_of):
    """[(i, j)]: ``pairs_of(rows, positions)`` over every (row, position) with position in [start[row],
    stop[row]), in runs of about :data:`JOIN_ELEMENTS` (so the scratch memory stays bounded)."""
    count = np.maximum(stop - start, 0)
    parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for first, last in chunk_bounds(count, JOIN_ELEMENTS):
        reps = count[first:last]
        rows = np.repeat(np.arange(first, last), reps)
        parts.append(pairs_of(rows, index_runs(start[first:last], reps)))
    return parts


def _height(edges, index, x):
    """Height of edges ``index`` at x (broadcast), by the fraction along the edge (bounded for steep edges)."""
    x0, x1 = edges["x0"][index], edges["x1"][index]
    y0, y1 = edges["y0"][index], edges["y1"][index]
    if x.ndim > x0.ndim:
        x0, x1, y0, y1 = x0[:, None], x1[:, None], y0[:, None], y1[:, None]
    return y0 + (y1 - y0) * ((x - x0) / (x1 - x0))


def _positive_part_integral(length, low, high):
    """∫ over an interval of ``length`` of (h)⁺ for h linear with end values ``low``, ``high``."""
    positive = np.maximum(low, 0.0) + np.maximum(high, 0.0)
    scale = np.abs(low) + np.abs(high)
    return length * positive * positive / (2.0 * np.maximum(scale, np.finfo(float).tiny))


def _positive_part_terms(start, length, low, high, x_origin, y_origin, slope):
    """(∫ h⁺, ∫ x h⁺, ∫ ½(f + g) h⁺) over u ∈ [start, start + length], x = x_origin + u, for h = g − f linear
    in u with end values ``low``, ``high`` and the lower line f = y_origin + slope · u (g = f + h). Arrays of
    one shape (or broadcasting); the first as :func:`_positive_part_integral`, to the bit.

    h⁺ is positive on one stretch [p, p + ℓ] at an end of the interval (ℓ = length · fraction, the fraction
    (low⁺ + high⁺) / (|low| + |high|)), running linearly from α = low⁺ to β = high⁺ there. On it
    T = ∫ h = ℓ(α + β)/2, R = ∫ u h = pT + ℓ²(α + 2β)/6, ∫ f h = y_origin T + slope R and
    ∫ h² = ℓ(α² + αβ + β²)/3; so ∫ x h = x_origin T + R and ∫ ½(f + g) h = ∫ f h + ½∫ h².
    """
    # In place where it can be: this runs on every edge pair × shift, and each temporary costs a pass.
    alpha, beta = np.maximum(low, 0.0), np.maximum(high, 0.0)
    positive = alpha + beta
    scale = np.abs(low)
    scale += np.abs(high)
    np.maximum(scale, np.finfo(float).tiny, out=scale)
    area = length * positive
    area *= positive
    area /= 2.0 * scale  # length · positive² / (2 scale), as _positive_part_integral
    run = np.divide(positive, scale, out=scale)
    run *= length  # ℓ
    p = length - run
    p[low > 0.0] = 0.0
    p += start
    spread = np.multiply(beta, 2.0)
    spread += alpha
    spread *= run
    spread *= run
    spread /= 6.0  # ℓ²(α + 2β)/6
    r = np.multiply(p, area, out=p)
    r += spread
    moment_x = x_origin * area
    moment_x += r
    square = np.multiply(alpha, alpha, out=spread)
    cross = alpha * beta
    square += cross
    square += np.multiply(beta, beta, out=cross)
    square *= run
    square /= 6.0  # ℓ(α² + αβ + β²)/6
    moment_y = y_origin * area
    moment_y += np.multiply(slope, r, out=cross)
    moment_y += square
    return area, moment_x, moment_y


# ==========================================================================
# The overlap at shifts.
# ==========================================================================
def polygon_areas(geoms):
    """(n,) areas of polygons (None/empty: 0), as GEOS gives them."""
    return np.nan_to_num(shapely.area(np.asarray(geoms, dtype=object)))


def overlap_at_shifts(a, b, d, engine="numpy", moments=False):
    """(n, k) |A ∩ (B + d)| (m²) for (n,) polygons a, b (valid, or None) and (n, k, 2) shifts d (m).

    One closed-form term per contributing (edge of A, edge of B) pair and shift; no GEOS call per shift.
    Clipped to [0, min(|A|, |B|)] against rounding. engine : "numpy"; "numba" (compiled, where numba
    imports: :mod:`.shift_kernel_numba`; the same numbers) or "auto" (numba where it imports).

    moments : also return the first moments ∫x and ∫y over A ∩ (B + d) (m³, in the frame of a and b, with
    B shifted), each (n, k): the tuple (area, moment_x, moment_y), so the intersection's centroid is
    (moment_x, moment_y) / area where the area is positive (:func:`centroids_at_shifts`). The same sum over
    edge pairs: the region between the two edges where B's lies above A's, {f < y < g} over x, has the
    moments ∫ x (g − f)⁺ dx and ∫ ½(f + g)(g − f)⁺ dx (the terms in g² and the baseline cancel as the area's
    do), each in closed form on the stretch where g − f ≥ 0 (:func:`_positive_part_moments`). Unclipped.
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    d = np.asarray(d, dtype=float)
    n, k = d.shape[:2]
    edges_a, edges_b = x_edges(a), x_edges(b)
    if n == 0 or k == 0:
        return (np.zeros((n, k)),) * 3 if moments else np.zeros((n, k))
    pair, ia, ib = edge_pairs(edges_a, edges_b, n, d[..., 0].min(axis=1), d[..., 0].max(axis=1),
                              d[..., 1].max(axis=1))
    # Per edge pair: u = x − (A's left end); the gap h = g − f is K + dy + m_b δ + (m_b − m_a) u with
    # δ = (A's left end) − (B's left end) − dx, on u ∈ [max(0, −δ), min(w_a, w_b − δ)].
    slope_a = (edges_a["y1"] - edges_a["y0"]) / (edges_a["x1"] - edges_a["x0"])
    slope_b = (edges_b["y1"] - edges_b["y0"]) / (edges_b["x1"] - edges_b["x0"])
    total = np.zeros((n, k))
    moment_x, moment_y = (np.zeros((n, k)), np.zeros((n, k))) if moments else (None, None)
    bounds = chunk_bounds(np.full(pair.size, k), SHIFT_CHUNK_ELEMENTS)
    kernel = None
    if engine in ("numba", "auto"):
        from .shift_kernel_numba import compiled_kernel, run

        kernel = compiled_kernel()
        if kernel is None and engine == "numba":
            raise ImportError("numba is not installed; use engine='numpy' (the same numbers)")
    elif engine != "numpy":
        raise ValueError(f"engine must be 'numpy', 'numba' or 'auto', not {engine!r}")
    if kernel is not None:
        run(kernel, pair, ia, ib, bounds, edges_a, edges_b, slope_a, slope_b, d, total, moment_x, moment_y)
        bounds = []
    for start, stop in bounds:
        p, ea, eb = pair[start:stop], ia[start:stop], ib[start:stop]
        width_a = (edges_a["x1"][ea] - edges_a["x0"][ea])[:, None]
        width_b = (edges_b["x1"][eb] - edges_b["x0"][eb])[:, None]
        m_b = slope_b[eb][:, None]
        delta = (edges_a["x0"][ea] - edges_b["x0"][eb])[:, None] - d[p, :, 0]
        u_low = np.maximum(-delta, 0.0)
        length = np.minimum(width_a, width_b - delta) - u_low
        base = (edges_b["y0"][eb] - edges_a["y0"][ea])[:, None] + d[p, :, 1] + m_b * delta
        rate = m_b - slope_a[ea][:, None]
        h_low = base + rate * u_low
        h_high = h_low + rate * np.maximum(length, 0.0)
        run_length = np.maximum(length, 0.0)
        signs = -(edges_a["sign"][ea] * edges_b["sign"][eb])[:, None]
        if moments:
            terms = _positive_part_terms(u_low, run_length, h_low, h_high, edges_a["x0"][ea][:, None],
                                         edges_a["y0"][ea][:, None], slope_a[ea][:, None])
            sums = (total, moment_x, moment_y)
        else:
            terms, sums = (_positive_part_integral(run_length, h_low, h_high),), (total,)
        # Summed in the order of the edge pairs (bincount adds its weights in turn), as the compiled kernel does.
        low, high = p[0], p[-1] + 1  # edge pairs are sorted by pair
        where = ((p - low)[:, None] * k + np.arange(k)).ravel()
        for into, term in zip(sums, terms):
            term *= signs
            into[low:high] += np.bincount(where, term.ravel(), minlength=(high - low) * k).reshape(high - low, k)
    area = np.clip(total, 0.0, np.minimum(polygon_areas(a), polygon_areas(b))[:, None])
    return (area, moment_x, moment_y) if moments else area


def centroids_at_shifts(a, b, d, engine="numpy", min_share=1e-9):
    """(area (n, k), centroid (n, k, 2), overlaps (n, k) bool): |A ∩ (B + d)| and the centroid of
    A ∩ (B + d) (frame metres, B shifted) from :func:`overlap_at_shifts` with its moments.

    ``overlaps`` marks the shifts whose intersection exceeds ``min_share`` of the smaller polygon (below it
    an intersection is a shared border seen through rounding, and moment / area would be noise); the
    centroid is NaN at the other shifts.
    """
    area, moment_x, moment_y = overlap_at_shifts(a, b, d, engine=engine, moments=True)
    smaller = np.minimum(polygon_areas(a), polygon_areas(b))[:, None]
    overlaps = (area > min_share * smaller) & (smaller > 0.0)
    safe = np.where(overlaps, area, 1.0)
    centroid = np.stack([np.where(overlaps, moment_x / safe, np.nan), np.where(overlaps, moment_y / safe, np.nan)],
                        axis=-1)
    return area, centroid, overlaps


def iou_at_shifts(a, b, d):
    """(n, k) IoU of A and B + d (see :func:`overlap_at_shifts`); 0 where the union has no area."""
    inter = overlap_at_shifts(a, b, d)
    return ratio(inter, polygon_areas(a)[:, None] + polygon_areas(b)[:, None] - inter)


# ==========================================================================
# The expected overlap.
# ==========================================================================
#: Beyond this |z|, Φ(z) is taken as 0 or 1 and φ(z) as 0 (both below 1e-19): erfc is only evaluated inside.
_NORMAL_CUT = 9.0


def _cdf_and_pdf(z):
    """(Φ(z), φ(z)), exact to 1e-19 absolute, with erfc evaluated only where |z| < _NORMAL_CUT."""
    inside = np.abs(z) < _NORMAL_CUT
    cdf = (z > 0).astype(float)
    pdf = np.zeros(z.shape)
    cdf[inside] = normal_cdf(z[inside])
    pdf[inside] = normal_pdf(z[inside])
    return cdf, pdf


def _psi(c, sigma):
    """ψ(c) = E[(c + dy)⁺] for dy ~ N(0, σ²)."""
    cdf, pdf = _cdf_and_pdf(c / sigma)
    return c * cdf + sigma * pdf


def _psi_antiderivative(c, sigma):
    """Ψ(c) = ∫ ψ = ½(c² + σ²)Φ(c/σ) + ½cσφ(c/σ)."""
    cdf, pdf = _cdf_and_pdf(c / sigma)
    return 0.5 * (c * c + sigma * sigma) * cdf + 0.5 * c * sigma * pdf


def _psi_interval_integral(c_low, c_high, length, sigma):
    """∫ ψ(c(x)) dx over an interval of ``length`` on which c runs linearly from c_low to c_high.

    (Ψ(c_high) − Ψ(c_low)) / slope, or, where c hardly changes (the difference would cancel), the
    midpoint Taylor series L[ψ(m) + Δ²/24 ψ″(m) + Δ⁴/1920 ψ⁗(m)], Δ = c_high − c_low.
    All arguments of one shape.
    """
    delta = c_high - c_low
    flat = np.abs(delta) <= 1e-2 * sigma
    out = np.empty(delta.shape)
    steep = ~flat
    out[steep] = (_psi_antiderivative(c_high[steep], sigma[steep]) - _psi_antiderivative(c_low[steep], sigma[steep])
                  ) * (length[steep] / delta[steep])
    if flat.any():
        d, s = delta[flat], sigma[flat]
        middle = 0.5 * (c_low[flat] + c_high[flat])
        z = middle / s
        cdf, pdf = _cdf_and_pdf(z)
        out[flat] = length[flat] * (middle * cdf + s * pdf + d * d / 24.0 * pdf / s
                                    + d ** 4 / 1920.0 * pdf * (z * z - 1.0) / s ** 3)
    return out


def _mean_pieces(edges_a, edges_b, ia, ib, sigma):
    """(c, P + 1) sorted breakpoints in dx of every edge pair's smooth pieces, within ±REACH_SIGMAS σ.

    The pieces: where the x-intervals start or stop overlapping, a grid of PIECE_SIGMAS σ, and, for each
    end of the overlap, the stretch where c there is within REACH_SIGMAS σ of 0 cut into pieces of
    PIECE_SIGMAS σ in c (narrow for steep edges, which move c fast).
    """
    reach = REACH_SIGMAS * sigma
    xa0, xa1 = edges_a["x0"][ia], edges_a["x1"][ia]
    xb0, xb1 = edges_b["x0"][ib], edges_b["x1"][ib]
    domain_low = np.maximum(xa0 - xb1, -reach)
    domain_high = np.minimum(xa1 - xb0, reach)
    points = [xa0 - xb0, xa1 - xb1]
    steps = np.arange(-REACH_SIGMAS, REACH_SIGMAS + 0.5 * PIECE_SIGMAS, PIECE_SIGMAS)
    points += [s * sigma for s in steps]
    slope_a = (edges_a["y1"][ia] - edges_a["y0"][ia]) / (xa1 - xa0)
    slope_b = (edges_b["y1"][ib] - edges_b["y0"][ib]) / (xb1 - xb0)
    # c at an overlap end as a function of dx: the end is fixed (an end of A's edge: c moves with −slope_b)
    # or moves with B (an end of B's edge: c moves with −slope_a). Its zero, and the stretch around it.
    for end_x, moves_with_b in ((xa0, False), (xa1, False), (xb0, True), (xb1, True)):
        # A fixed end x (of A's edge): c = g(x − dx) − f(x) moves with −slope_b; an end of B's edge, x + dx:
        # c = g(x) − f(x + dx) moves with −slope_a. At dx = 0 both are g(x) − f(x) (lines, extended).
        beta = -slope_a if moves_with_b else -slope_b
        at0 = _height(edges_b, ib, end_x) - _height(edges_a, ia, end_x)
        with np.errstate(divide="ignore", invalid="ignore"):
            zero = np.where(beta != 0.0, -at0 / beta, np.nan)
            width = np.where(beta != 0.0, sigma / np.abs(beta), np.nan)
        steep = np.abs(beta) > 1.0  # shallower ends are resolved by the σ grid
        for s in steps:
            points.append(np.where(steep, zero + s * width, np.nan))
    cuts = np.column_stack([np.broadcast_to(p, xa0.shape) for p in points])
    cuts = np.where(np.isfinite(cuts), cuts, domain_low[:, None])
    cuts = np.clip(cuts, domain_low[:, None], np.maximum(domain_high, domain_low)[:, None])
    return np.sort(np.column_stack([domain_low, cuts, np.maximum(domain_high, domain_low)]), axis=1)


def _gap_range(edges_a, edges_b, ia, ib, reach):
    """(c_min, c_max), each (c,), of c = g(x − dx) − f(x) over the overlap of the x-intervals, |dx| ≤ reach."""
    xa0, xa1 = edges_a["x0"][ia], edges_a["x1"][ia]
    xb0, xb1 = edges_b["x0"][ib], edges_b["x1"][ib]
    low_end, high_end = np.maximum(xa0 - xb1, -reach), np.minimum(xa1 - xb0, reach)
    high_end = np.maximum(high_end, low_end)
    cuts = np.column_stack([low_end, np.clip(np.column_stack([xa0 - xb0, xa1 - xb1]), low_end[:, None],
                                             high_end[:, None]), high_end])
    low = np.maximum(xa0[:, None], xb0[:, None] + cuts)
    high = np.maximum(np.minimum(xa1[:, None], xb1[:, None] + cuts), low)
    e_a, e_b = ia[:, None], ib[:, None]
    gaps = np.concatenate([_height_at(edges_b, e_b, low - cuts) - _height_at(edges_a, e_a, low),
                           _height_at(edges_b, e_b, high - cuts) - _height_at(edges_a, e_a, high)], axis=1)
    return gaps.min(axis=1), gaps.max(axis=1)


def _far_pair_terms(edges_a, edges_b, ea, eb, sigma):
    """(c,) E over dx of ∫ (g(x − dx) − f(x)) dx on the overlap, for edge pairs whose B edge lies more than
    _NORMAL_CUT σ above the A edge: there ψ(c) = c (to 1e-19 σ), the x-integral is quadratic in dx between
    the two breakpoints of the overlap, and its Gaussian expectation is closed form (moments 0 to 2)."""
    reach = REACH_SIGMAS * sigma
    xa0, xa1 = edges_a["x0"][ea], edges_a["x1"][ea]
    xb0, xb1 = edges_b["x0"][eb], edges_b["x1"][eb]
    low_end, high_end = np.maximum(xa0 - xb1, -reach), np.minimum(xa1 - xb0, reach)
    high_end = np.maximum(high_end, low_end)
    inner = np.sort(np.column_stack([xa0 - xb0, xa1 - xb1]), axis=1)
    cuts = np.column_stack([low_end, np.clip(inner, low_end[:, None], high_end[:, None]), high_end])

    def integral(dx):  # ∫ over the overlap at shift dx of c = g(x − dx) − f(x), (c, 3)
        low = np.maximum(xa0[:, None], xb0[:, None] + dx)
        high = np.minimum(xa1[:, None], xb1[:, None] + dx)
        length = np.maximum(high - low, 0.0)
        e_a, e_b = ea[:, None], eb[:, None]
        c_sum = (_height_at(edges_b, e_b, low - dx) - _height_at(edges_a, e_a, low)
                 + _height_at(edges_b, e_b, high - dx) - _height_at(edges_a, e_a, high))
        return 0.5 * length * c_sum

    total = np.zeros(len(ea))
    s = sigma[:, None]
    for piece in range(3):
        left, right = cuts[:, piece], cuts[:, piece + 1]
        half = 0.5 * (right - left)
        middle = left + half
        values = integral(np.column_stack([left, middle, right]))
        # F(t) = F(m) + β1 (t − m) + β2 (t − m)² on the piece, through its ends and middle.
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(half > 0, (values[:, 2] - values[:, 0]) / (2 * np.where(half > 0, half, 1.0)), 0.0)
            curve = np.where(half > 0, (values[:, 2] + values[:, 0] - 2 * values[:, 1])
                             / (2 * np.where(half > 0, half, 1.0) ** 2), 0.0)
        ends = np.column_stack([left, right]) / s  # standardised
        cdf, pdf = _cdf_and_pdf(ends)
        mass = cdf[:, 1] - cdf[:, 0]  # ∫ φ_σ
        first = sigma * (pdf[:, 0] - pdf[:, 1])  # ∫ t φ_σ
        second = sigma ** 2 * (mass - (ends[:, 1] * pdf[:, 1] - ends[:, 0] * pdf[:, 0]))  # ∫ t² φ_σ
        centred_first = first - middle * mass  # ∫ (t − m) φ_σ
        centred_second = second - 2 * middle * first + middle ** 2 * mass  # ∫ (t − m)² φ_σ
        total += np.where(half > 0, values[:, 1] * mass + slope * centred_first + curve * centred_second, 0.0)
    return total


def expected_overlap(a, b, sigma):
    """(n,) E|A ∩ (B + d)| (m²) for d ~ N(0, σ²I₂), σ (n,) or scalar metres (σ = 0: the overlap itself).

    Closed form in dy and along x, Gauss-Legendre over dx on the smooth pieces (see the module docstring);
    every edge pair with overlapping x-intervals within REACH_SIGMAS σ contributes.
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,)).copy()
    out = np.zeros(n)
    still = sigma <= 0.0
    if still.any():
        out[still] = overlap_at_shifts(a[still], b[still], np.zeros((int(still.sum()), 1, 2)))[:, 0]
    moving = np.flatnonzero(~still)
    if not moving.size:
        return out
    a, b, sigma = a[moving], b[moving], sigma[moving]
    edges_a, edges_b = x_edges(a), x_edges(b)
    reach = REACH_SIGMAS * sigma
    pair, ia, ib = edge_pairs(edges_a, edges_b, len(a), -reach, reach, reach)
    total = np.zeros(len(a))
    # c = g(x − dx) − f(x) over {x in the overlap, |dx| ≤ reach}, a convex polygon in (x, dx): its extremes lie
    # at the overlap's ends at the breakpoints. Far above everywhere (ψ(c) = c): closed form, no quadrature;
    # far below everywhere (ψ(c) = 0): nothing.
    c_min, c_max = _gap_range(edges_a, edges_b, ia, ib, reach[pair])
    cut = _NORMAL_CUT * sigma[pair]
    keep = c_max >= -cut
    pair, ia, ib, c_min = pair[keep], ia[keep], ib[keep], c_min[keep]
    far = c_min > cut[keep]
    for start, stop in chunk_bounds(np.full(int(far.sum()), 16), CHUNK_ELEMENTS):
        p, ea, eb = pair[far][start:stop], ia[far][start:stop], ib[far][start:stop]
        term = -(edges_a["sign"][ea] * edges_b["sign"][eb]) * _far_pair_terms(edges_a, edges_b, ea, eb, sigma[p])
        total += np.bincount(p, term, minlength=len(a))
    pair, ia, ib = pair[~far], ia[~far], ib[~far]
    per_pair_pieces = 2 + 2 + len(np.arange(-REACH_SIGMAS, REACH_SIGMAS + 0.5 * PIECE_SIGMAS, PIECE_SIGMAS)) * 5
    for start, stop in chunk_bounds(np.full(pair.size, per_pair_pieces * QUADRATURE_NODES), CHUNK_ELEMENTS):
        p, ea, eb = pair[start:stop], ia[start:stop], ib[start:stop]
        s = sigma[p]
        cuts = _mean_pieces(edges_a, edges_b, ea, eb, s)
        row, piece = np.nonzero(np.diff(cuts, axis=1) > 0.0)  # only pieces of positive length
        left, right = cuts[row, piece], cuts[row, piece + 1]
        half = 0.5 * (right - left)
        dx = (left + half)[:, None] + half[:, None] * _GL_X  # (pieces, nodes)
        weight = half[:, None] * _GL_W * normal_pdf(dx / s[row, None]) / s[row, None]
        r = row[:, None]
        e_a, e_b = ea[row][:, None], eb[row][:, None]
        low = np.maximum(edges_a["x0"][e_a], edges_b["x0"][e_b] + dx)
        high = np.minimum(edges_a["x1"][e_a], edges_b["x1"][e_b] + dx)
        length = np.maximum(high - low, 0.0)
        c_low = _height_at(edges_b, e_b, low - dx) - _height_at(edges_a, e_a, low)
        c_high = _height_at(edges_b, e_b, high - dx) - _height_at(edges_a, e_a, high)
        value = _psi_interval_integral(c_low, c_high, length, np.broadcast_to(s[r], length.shape))
        term = -(edges_a["sign"][ea] * edges_b["sign"][eb])[row] * np.sum(value * weight, axis=1)
        total += np.bincount(p[row], term, minlength=len(a))
    out[moving] = np.clip(total, 0.0, np.minimum(polygon_areas(a), polygon_areas(b)))
    return out


def _height_at(edges, index, x):
    """Height of edges ``index`` (any shape) at x (same shape)."""
    x0, x1 = edges["x0"][index], edges["x1"][index]
    return edges["y0"][index] + (edges["y1"][index] - edges["y0"][index]) * ((x - x0) / (x1 - x0))


# ==========================================================================
# The atoms: P(no overlap) and P(the smaller contained in the larger).
# ==========================================================================
def gaussian_measure(geoms, sigma):
    """(n,) P(d ∈ G) for d ~ N(0, σ²I₂) and (n,) polygons G (None/empty: 0), σ (n,) or scalar metres.

    Closed form: the sum over G's oriented edges (p → q, G to the left) of the signed measure of the
    triangle (0, p, q), Δθ/2π − sign(h)[T(|h|/σ, q·u/|h|) − T(|h|/σ, p·u/|h|)], with u the edge's
    direction, h = p × u its signed distance from 0 and T Owen's T function.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    pair, p, vector = oriented_edges(geoms)
    if not pair.size:
        return np.zeros(n)
    q = p + vector
    u = vector / np.hypot(vector[:, 0], vector[:, 1])[:, None]
    h = p[:, 0] * u[:, 1] - p[:, 1] * u[:, 0]
    angle = np.arctan2(p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0], p[:, 0] * q[:, 0] + p[:, 1] * q[:, 1])
    distance = np.abs(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_p = np.where(distance > 0, np.sum(p * u, axis=1) / distance, 0.0)
        t_q = np.where(distance > 0, np.sum(q * u, axis=1) / distance, 0.0)
    scaled = distance / sigma[pair]
    wedge = angle / (2.0 * math.pi) - np.sign(h) * (owens_t(scaled, t_q) - owens_t(scaled, t_p))
    wedge = np.where(distance > 0, wedge, 0.0)  # an edge through 0 bounds a triangle of no area
    return np.clip(np.bincount(pair, wedge, minlength=n), 0.0, 1.0)


def _first_exterior_vertices(geoms):
    """(parts (m,), owner (m,), first vertex of each part's exterior (m, 2)) of (n,) polygons."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    first = shapely.get_coordinates(shapely.get_point(shapely.get_exterior_ring(parts), 0))
    return parts, owner, first


def overlap_shift_sets(a, b, reach):
    """(n,) polygons {x ∈ [−r, r]² : A ∩ (B + x) has an interior}, r = ``reach`` (n,) metres.

    The union, clipped to the square, of the parallelograms e ⊕ (−f) of every edge e of A and f of B that
    come within the square (where the boundaries meet), of A − b_P for each part P of B and of a_Q − B for
    each part Q of A (b_P, a_Q a vertex of the part's exterior: where a part lies inside the other
    polygon). One GEOS union per pair.
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(a)
    reach = np.broadcast_to(np.asarray(reach, dtype=float), (n,))
    square = shapely.box(-reach, -reach, reach, reach)
    pair_a, start_a, vector_a = oriented_edges(a)
    pair_b, start_b, vector_b = oriented_edges(b)
    order_a, order_b = np.argsort(pair_a, kind="stable"), np.argsort(pair_b, kind="stable")
    pair_a, start_a, vector_a = pair_a[order_a], start_a[order_a], vector_a[order_a]
    pair_b, start_b, vector_b = pair_b[order_b], start_b[order_b], vector_b[order_b]
    low_a, high_a = np.minimum(start_a, start_a + vector_a), np.maximum(start_a, start_a + vector_a)
    low_b, high_b = np.minimum(start_b, start_b + vector_b), np.maximum(start_b, start_b + vector_b)
    first_a, count_a = _first_and_count(pair_a, n)
    first_b, count_b = _first_and_count(pair_b, n)
    pieces, owners = [], []
    product = count_a * count_b
    for rows in (np.flatnonzero((product > 0) & (product <= DENSE_PRODUCT)), np.flatnonzero(product > DENSE_PRODUCT)):
        for group in ([rows] if rows.size and product[rows].max() <= DENSE_PRODUCT else [[r] for r in rows]):
            group = np.asarray(group, dtype=np.int64)
            if len(group) == 1 and product[group[0]] > DENSE_PRODUCT:  # a large pair: an STRtree of A's edges
                p = group[0]
                ra = np.arange(first_a[p], first_a[p] + count_a[p])
                rb = np.arange(first_b[p], first_b[p] + count_b[p])
                tree = shapely.STRtree(shapely.box(low_a[ra, 0], low_a[ra, 1], high_a[ra, 0], high_a[ra, 1]))
                r = reach[p]
                jb, ja = tree.query(shapely.box(low_b[rb, 0] - r, low_b[rb, 1] - r, high_b[rb, 0] + r,
                                                high_b[rb, 1] + r))
                pair, ia, ib = np.full(ja.size, p), ra[ja], rb[jb]
            else:
                reps = product[group]
                pair = np.repeat(group, reps)
                within = index_runs(np.zeros_like(reps), reps)
                ia = first_a[pair] + within // count_b[pair]
                ib = first_b[pair] + within % count_b[pair]
            r = reach[pair][:, None]
            # a − b ∈ [−r, r]² for some a on e, b on f: the difference box meets the square.
            near = np.all((low_a[ia] - high_b[ib] <= r) & (high_a[ia] - low_b[ib] >= -r), axis=1)
            pair, ia, ib = pair[near], ia[near], ib[near]
            p0, p1 = start_a[ia], start_a[ia] + vector_a[ia]
            q0, q1 = start_b[ib], start_b[ib] + vector_b[ib]
            ring = np.stack([p0 - q0, p1 - q0, p1 - q1, p0 - q1, p0 - q0], axis=1)
            area = np.abs(vector_a[ia, 0] * vector_b[ib, 1] - vector_a[ia, 1] * vector_b[ib, 0])
            solid = area > 0.0  # parallel edges sweep a segment, no area
            pieces.append(shapely.polygons(ring[solid]))
            owners.append(pair[solid])
    _, owner_b, vertex_b = _first_exterior_vertices(b)
    _, owner_a, vertex_a = _first_exterior_vertices(a)
    pieces.append(translate(a[owner_b], -vertex_b))  # A − b_P
    owners.append(owner_b)
    pieces.append(translate(shapely.transform(b[owner_a], lambda xy: -xy), vertex_a))  # a_Q − B: −B moved by a_Q
    owners.append(owner_a)
    pieces = np.concatenate(pieces)
    owners = np.concatenate(owners)
    pieces = shapely.intersection(pieces, square[owners])
    out = np.empty(n, dtype=object)
    order = np.argsort(owners, kind="stable")
    pieces, owners = pieces[order], owners[order]
    first, count = _first_and_count(owners, n)
    for size in np.unique(count[count > 0]):  # pairs with as many pieces: one padded union per size
        rows = np.flatnonzero(count == size)
        grid = pieces[first[rows][:, None] + np.arange(size)]
        out[rows] = shapely.union_all(grid, axis=1)
    out[count == 0] = shapely.Polygon()
    return out


def overlap_atoms(a, b, sigma, reach=REACH_SIGMAS):
    """(P(no overlap), P(contained)), each (n,), for B shifted by d ~ N(0, σ²I₂).

    P(no overlap) = P(|A ∩ (B + d)| = 0); P(contained) = P(the smaller of A and B lies inside the other
    after the shift), i.e. |A ∩ (B + d)| = min(|A|, |B|). Exact up to GEOS rounding and the Gaussian mass
    outside [−reach σ, reach σ]² (< 4Φ(−reach), 2.5e-15 at 8): each is the Gaussian measure
    (:func:`gaussian_measure`) of a set of shifts built by :func:`overlap_shift_sets`. The containment set is
    the complement, in the square, of the shifts where the smaller meets the outside of the larger (a box
    around both, less the larger). σ = 0 gives the indicators of the pair as it lies.
    """
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    area_a, area_b = polygon_areas(a), polygon_areas(b)
    empty = (area_a <= 0) | (area_b <= 0)
    none, contained = np.ones(n), np.zeros(n)
    still = ~empty & (sigma <= 0)
    if still.any():
        inter = overlap_at_shifts(a[still], b[still], np.zeros((int(still.sum()), 1, 2)))[:, 0]
        none[still] = (inter <= 0).astype(float)
        contained[still] = (inter >= np.minimum(area_a, area_b)[still] * (1 - 1e-12)).astype(float)
    rows = np.flatnonzero(~empty & (sigma > 0))
    if not rows.size:
        return none, contained
    s = sigma[rows]
    r = reach * s
    square_mass = (1.0 - 2.0 * normal_cdf(-reach)) ** 2
    none[rows] = 1.0 - gaussian_measure(overlap_shift_sets(a[rows], b[rows], r), s)
    # The smaller one moves inside the larger: B + d ⊆ A, or A ⊆ B + d (the same measure as A + d ⊆ B).
    b_smaller = area_b[rows] <= area_a[rows]
    container = np.where(b_smaller, a[rows], b[rows])
    mover = np.where(b_smaller, b[rows], a[rows])
    low = np.minimum(shapely.bounds(container)[:, :2], shapely.bounds(mover)[:, :2]) - 2 * r[:, None] - 1.0
    high = np.maximum(shapely.bounds(container)[:, 2:], shapely.bounds(mover)[:, 2:]) + 2 * r[:, None] + 1.0
    outside = shapely.difference(shapely.box(low[:, 0], low[:, 1], high[:, 0], high[:, 1]), container)
    escapes = gaussian_measure(overlap_shift_sets(outside, mover, r), s)
    contained[rows] = np.clip(square_mass - escapes, 0.0, 1.0)
    return none, contained
