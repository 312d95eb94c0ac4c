"""Vectorised shape primitives and geometry edits for the synthetic training pairs.

Everything here works in a local metric frame (metres, x east, y north) on
whole (n,) object arrays of shapely geometries: coordinates are built as NumPy
arrays (regular ``(n, k, 2)`` or ragged with an owner index) and turned into
geometries with ``shapely.polygons`` / ``linearrings`` / ``multipolygons``;
edits go through ``get_coordinates`` / ``set_coordinates``.  Python loops run
over shape families, parts or iterations, never over shapes.

Shape families (:data:`FAMILY_NAMES`; a family's code is its index):

* buildings: ``rectangle``, ``l_shape``, ``t_shape``, ``u_shape``,
  ``courtyard`` (one rectangular hole), ``multipart`` (main block and 1-2
  detached annexes, a MultiPolygon);
* parcels: ``convex_quad``, ``concave_quad`` (a dart), ``convex_polygon``
  (5-8 vertices), and ``l_shape`` at parcel size (flag lots);
* administrative-unit-like (``complex``): ``blob`` (smooth radial Fourier
  shape), ``star`` (spiky radial shape), ``multi_blob`` (2-4 disjoint blobs,
  a MultiPolygon), ``blob_with_hole`` (an enclave); 50-2000 vertices each.

Builders return shapes of arbitrary scale; :func:`normalise` then centres each
on its bounding-box centre and scales it so that the longer side of the box is
the requested size.  Every radial shape is star-shaped about its centre with
strictly increasing vertex angles, hence a valid simple polygon.

This module is plain NumPy/shapely (no TensorFlow).
"""
from __future__ import annotations

import numpy as np
import shapely

from ..frame import repair_polygonal
from ..overlap import translate  # noqa: F401 (one home, in the core; the edits read it from here)

__all__ = [
    "BUILDERS",
    "FAMILY_CODES",
    "FAMILY_NAMES",
    "affine",
    "densify",
    "normalise",
    "rotate",
    "simplify",
    "snap_to_grid",
    "translate",
    "vertex_noise",
    "vertex_radius",
]

FAMILY_NAMES = (
    "rectangle",
    "l_shape",
    "t_shape",
    "u_shape",
    "courtyard",
    "multipart",
    "convex_quad",
    "concave_quad",
    "convex_polygon",
    "blob",
    "star",
    "multi_blob",
    "blob_with_hole",
)
FAMILY_CODES = {name: code for code, name in enumerate(FAMILY_NAMES)}


# --------------------------------------------------------------------------
# Coordinate-level helpers.
# --------------------------------------------------------------------------
def _object_array(geoms):
    out = np.empty(len(geoms), dtype=object)
    out[:] = list(geoms)
    return out


def _closed(xy):
    """(n, k, 2) open rings -> (n, k + 1, 2) closed rings."""
    return np.concatenate([xy, xy[:, :1]], axis=1)


def _segment_reduce(values, owner, n, ufunc, empty):
    """Per-owner reduction of (V,) ``values`` with sorted (V,) ``owner`` -> (n,)."""
    out = np.full(n, empty, dtype=np.float64)
    if values.size:
        owners, starts = np.unique(owner, return_index=True)
        out[owners] = ufunc.reduceat(values, starts)
    return out


def affine(geoms, a, b, c, d, tx, ty):
    """Per-geometry affine map ``(x, y) -> (a x + b y + tx, c x + d y + ty)``.

    ``geoms``: (n,) geometries (metres); ``a .. ty``: scalars or (n,) arrays.
    Returns a new (n,) array; None stays None.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    coefs = [np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (a, b, c, d, tx, ty)]
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    a, b, c, d, tx, ty = (v[owner] for v in coefs)
    x, y = xy[:, 0], xy[:, 1]
    new = np.column_stack([a * x + b * y + tx, c * x + d * y + ty])
    return shapely.set_coordinates(geoms.copy(), new)


def rotate(geoms, angle_rad, scale=1.0):
    """(n,) geometries rotated counter-clockwise about the origin by (n,) radians, times ``scale``."""
    cos, sin = np.cos(angle_rad) * scale, np.sin(angle_rad) * scale
    return affine(geoms, cos, -sin, sin, cos, 0.0, 0.0)


def vertex_radius(geoms):
    """(n,) largest distance of any vertex from the origin (metres); 0 for empty/None."""
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    return _segment_reduce(np.hypot(xy[:, 0], xy[:, 1]), owner, len(geoms), np.maximum, 0.0)


def normalise(geoms, size):
    """Centre (n,) geometries on their bounding-box centre and scale the box's longer side to ``size``.

    ``size``: (n,) metres.  Returns a new (n,) array.
    """
    bounds = shapely.bounds(geoms)
    cx = 0.5 * (bounds[:, 0] + bounds[:, 2])
    cy = 0.5 * (bounds[:, 1] + bounds[:, 3])
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    k = np.asarray(size, np.float64) / extent
    return affine(geoms, k, 0.0, 0.0, k, -k * cx, -k * cy)


def _ring_ends(geoms):
    """Positions (in ``get_coordinates`` order) of the first and the closing vertex of every ring."""
    parts = shapely.get_parts(geoms)
    rings = shapely.get_rings(parts)
    counts = shapely.get_num_coordinates(rings)
    ends = np.cumsum(counts)
    return ends - counts, ends - 1


# --------------------------------------------------------------------------
# Generalisation (the same object as another source would draw it).
# --------------------------------------------------------------------------
def simplify(geoms, tolerance):
    """Douglas-Peucker with topology preservation; ``tolerance`` (n,) metres."""
    out = shapely.simplify(geoms, tolerance, preserve_topology=True)
    repair_polygonal(out)
    return out


def densify(geoms, max_segment):
    """Insert vertices so that no edge is longer than ``max_segment`` ((n,) metres); same shape."""
    return shapely.segmentize(geoms, max_segment)


def vertex_noise(rng, geoms, sd):
    """Move every vertex by independent N(0, sd^2) noise per axis (``sd``: (n,) metres), then repair.

    Ring closing vertices move with their ring's first vertex, so rings stay closed.
    """
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    noise = rng.standard_normal(xy.shape) * np.asarray(sd, np.float64)[owner, None]
    first, last = _ring_ends(geoms)
    noise[last] = noise[first]
    out = shapely.set_coordinates(np.asarray(geoms, dtype=object).copy(), xy + noise)
    repair_polygonal(out)
    return out


def snap_to_grid(geoms, grid):
    """Round coordinates to a grid of ``grid`` ((n,) metres) with a valid result (GEOS precision model)."""
    return shapely.set_precision(geoms, grid)


# --------------------------------------------------------------------------
# Building and parcel builders: (rng, n, params) -> (n,) geometries, any scale.
# --------------------------------------------------------------------------
def _u(rng, bounds, n):
    return rng.uniform(bounds[0], bounds[1], n)


def _scaled_unit(xy, aspect):
    """Unit-square outlines (n, k, 2) -> long side 1, short side ``aspect`` (n,), closed polygons."""
    xy = xy.copy()
    xy[..., 1] *= aspect[:, None]
    return shapely.polygons(_closed(xy))


def _rectangle(rng, n, p):
    aspect = _u(rng, p["aspect"], n)
    unit = np.broadcast_to(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64), (n, 4, 2))
    return _scaled_unit(unit, aspect)


def _l_shape(rng, n, p):
    aspect = _u(rng, p["aspect"], n)
    w = _u(rng, p["l_keep"], n)  # kept fraction of the notched top edge
    h = _u(rng, p["l_keep"], n)
    o, i = np.zeros(n), np.ones(n)
    xy = np.stack(
        [np.column_stack(v) for v in ((o, o), (i, o), (i, h), (w, h), (w, i), (o, i))], axis=1
    )
    return _scaled_unit(xy, aspect)


def _t_shape(rng, n, p):
    aspect = _u(rng, p["aspect"], n)
    stem = _u(rng, p["t_stem"], n)  # stem width, fraction of the length
    centre = 0.5 + (1.0 - stem - 0.1) * rng.uniform(-0.5, 0.5, n)
    x0, x1 = centre - 0.5 * stem, centre + 0.5 * stem
    h = _u(rng, p["t_stem_height"], n)
    o, i = np.zeros(n), np.ones(n)
    xy = np.stack(
        [np.column_stack(v) for v in ((x0, o), (x1, o), (x1, h), (i, h), (i, i), (o, i), (o, h), (x0, h))],
        axis=1,
    )
    return _scaled_unit(xy, aspect)


def _u_shape(rng, n, p):
    aspect = _u(rng, p["aspect"], n)
    arm = _u(rng, p["u_arm"], n)
    base = _u(rng, p["u_base"], n)
    o, i = np.zeros(n), np.ones(n)
    xy = np.stack(
        [np.column_stack(v) for v in ((o, o), (i, o), (i, i), (1 - arm, i), (1 - arm, base), (arm, base),
                                       (arm, i), (o, i))],
        axis=1,
    )
    return _scaled_unit(xy, aspect)


def _courtyard(rng, n, p):
    aspect = _u(rng, p["courtyard_aspect"], n)
    fx = _u(rng, p["courtyard_hole"], n)
    fy = _u(rng, p["courtyard_hole"], n)
    # Hole box inside the unit box, walls at least 5 % of each side thick.
    x0 = 0.05 + (0.9 - fx) * rng.uniform(0.0, 1.0, n)
    y0 = 0.05 + (0.9 - fy) * rng.uniform(0.0, 1.0, n)
    o, i = np.zeros(n), np.ones(n)
    shell = np.stack([np.column_stack(v) for v in ((o, o), (i, o), (i, i), (o, i))], axis=1)
    hole = np.stack(
        [np.column_stack(v) for v in ((x0, y0), (x0, y0 + fy), (x0 + fx, y0 + fy), (x0 + fx, y0))], axis=1
    )
    shell[..., 1] *= aspect[:, None]
    hole[..., 1] *= aspect[:, None]
    return shapely.polygons(shapely.linearrings(_closed(shell)), holes=shapely.linearrings(_closed(hole))[:, None])


def _box_coords(x0, y0, x1, y1):
    return np.stack([np.column_stack(v) for v in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], axis=1)


def _multipart(rng, n, p):
    """Main block [0, 1] x [0, aspect] and an annex to its right; a second annex on the left for some."""
    aspect = _u(rng, p["aspect"], n)
    sizes = [(_u(rng, p["annex_size"], n), _u(rng, p["annex_size"], n) * aspect) for _ in range(2)]
    gaps = [_u(rng, p["annex_gap"], n) for _ in range(2)]
    offsets = [rng.uniform(0.0, 1.0, n) * (aspect - s[1]) for s in sizes]
    third = rng.uniform(0.0, 1.0, n) < p["annex_third_share"]
    main = _box_coords(np.zeros(n), np.zeros(n), np.ones(n), aspect)
    right = _box_coords(1 + gaps[0], offsets[0], 1 + gaps[0] + sizes[0][0], offsets[0] + sizes[0][1])
    left = _box_coords(-gaps[1] - sizes[1][0], offsets[1], -gaps[1], offsets[1] + sizes[1][1])
    polys = shapely.polygons(_closed(np.concatenate([main, right, left[third]])))
    owner = np.concatenate([np.arange(n), np.arange(n), np.flatnonzero(third)])
    order = np.argsort(owner, kind="stable")
    out = np.empty(n, dtype=object)
    return shapely.multipolygons(polys[order], indices=owner[order], out=out)


def _ellipse_points(rng, n, k, p):
    """(n, k, 2) points in angular order on ellipses of semi-axes (1, aspect): a convex k-gon."""
    aspect = _u(rng, p["aspect"], n)
    step = 2.0 * np.pi / k
    jitter = np.clip(rng.normal(0.0, p["polygon_angle_jitter"], (n, k)), -0.45, 0.45) * step
    angle = rng.uniform(0.0, 2.0 * np.pi, n)[:, None] + step * (np.arange(k) + 0.5) + jitter
    return np.stack([np.cos(angle), aspect[:, None] * np.sin(angle)], axis=-1)


def _convex_quad(rng, n, p):
    return shapely.polygons(_closed(_ellipse_points(rng, n, 4, p)))


def _concave_quad(rng, n, p):
    """A dart: vertex 0 of a convex quad pulled past the diagonal 1-3, toward vertex 2."""
    xy = _ellipse_points(rng, n, 4, p)
    mid = 0.5 * (xy[:, 1] + xy[:, 3])
    alpha = _u(rng, p["dart_depth"], n)[:, None]
    xy[:, 0] = mid + alpha * (xy[:, 2] - mid)
    return shapely.polygons(_closed(xy))


def _convex_polygon(rng, n, p):
    k = rng.integers(p["polygon_vertices"][0], p["polygon_vertices"][1] + 1, n)
    out = np.empty(n, dtype=object)
    for count in np.unique(k):
        sel = np.flatnonzero(k == count)
        out[sel] = shapely.polygons(_closed(_ellipse_points(rng, sel.size, int(count), p)))
    return out


# --------------------------------------------------------------------------
# Administrative-unit-like builders (ragged vertex counts).
# --------------------------------------------------------------------------
def _log_uniform_int(rng, bounds, n):
    lo, hi = np.log(bounds[0]), np.log(bounds[1] + 1)
    return np.minimum(np.floor(np.exp(rng.uniform(lo, hi, n))).astype(np.int64), bounds[1])


def _radial_rings(rng, vertices, smooth_amp, spikes, spike_amp, jitter):
    """Star-shaped rings about the origin, one per entry of ``vertices`` ((m,) ints >= 3).

    Log-radius = smooth Fourier series (12 harmonics, amplitude ``smooth_amp`` (m,)
    decaying as h^-1.3) + one spike harmonic (``spikes`` (m,) ints, amplitude
    ``spike_amp`` (m,)) + per-vertex N(0, jitter^2) roughness.  Angles are a
    jittered regular grid, so they strictly increase.  Returns ((m,) linearrings,
    (m,) smallest vertex radius, (m,) largest vertex radius).
    """
    m = len(vertices)
    owner = np.repeat(np.arange(m), vertices)
    start = np.cumsum(vertices) - vertices
    j = np.arange(owner.size) - start[owner]
    theta = 2.0 * np.pi * (j + rng.uniform(-0.4, 0.4, owner.size)) / vertices[owner]
    theta += rng.uniform(0.0, 2.0 * np.pi, m)[owner]
    log_r = np.zeros(owner.size)
    for h in range(1, 13):
        amp = rng.standard_normal(m) * smooth_amp * h**-1.3
        phase = rng.uniform(0.0, 2.0 * np.pi, m)
        log_r += amp[owner] * np.cos(h * theta + phase[owner])
    phase = rng.uniform(0.0, 2.0 * np.pi, m)
    log_r += spike_amp[owner] * np.cos(spikes[owner] * theta + phase[owner])
    log_r += rng.standard_normal(owner.size) * jitter[owner]
    r = np.exp(log_r)
    rings = shapely.linearrings(np.column_stack([r * np.cos(theta), r * np.sin(theta)]), indices=owner)
    return rings, _segment_reduce(r, owner, m, np.minimum, 0.0), _segment_reduce(r, owner, m, np.maximum, 0.0)


def _radial_params(rng, n, p, kind):
    if kind == "star":
        spikes = rng.integers(p["star_spikes"][0], p["star_spikes"][1] + 1, n)
        return np.zeros(n) + p["blob_amplitude"] * 0.3, spikes, _u(rng, p["star_amplitude"], n), _u(rng, p["star_jitter"], n)
    return np.full(n, p["blob_amplitude"]), np.zeros(n, np.int64), np.zeros(n), _u(rng, p["blob_jitter"], n)


def _radial_polygons(rng, n, p, kind, vertices=None):
    if vertices is None:
        vertices = _log_uniform_int(rng, p["complex_vertices"], n)
    rings, r_min, r_max = _radial_rings(rng, vertices, *_radial_params(rng, n, p, kind))
    return shapely.polygons(rings), r_min, r_max


def _blob(rng, n, p):
    return _radial_polygons(rng, n, p, "blob")[0]


def _star(rng, n, p):
    return _radial_polygons(rng, n, p, "star")[0]


def _multi_blob(rng, n, p):
    """2-4 blobs whose bounding discs are disjoint: centres at increasing abscissae, apart by the sum of radii plus a gap."""
    parts = rng.integers(p["multi_blob_parts"][0], p["multi_blob_parts"][1] + 1, n)
    owner = np.repeat(np.arange(n), parts)
    total = _log_uniform_int(rng, p["complex_vertices"], n)
    share = rng.uniform(0.2, 1.0, owner.size)
    share /= np.bincount(owner, weights=share, minlength=n)[owner]
    vertices = np.maximum(np.round(total[owner] * share).astype(np.int64), 12)
    polys, _, r_max = _radial_polygons(rng, owner.size, p, "blob", vertices)
    scale = np.exp(rng.uniform(*np.log(p["multi_blob_part_size"]), owner.size))
    first = np.r_[True, owner[1:] != owner[:-1]]
    scale[first] = 1.0
    radius = r_max * scale
    gap = _u(rng, p["multi_blob_gap"], owner.size)
    step = np.where(first, 0.0, radius + np.r_[0.0, radius[:-1]] + gap)
    x = np.cumsum(step)
    x -= np.maximum.accumulate(np.where(first, x, -np.inf))  # restart at 0 for each shape
    y = rng.uniform(-1.0, 1.0, owner.size)
    polys = affine(polys, scale, 0.0, 0.0, scale, x, y)
    out = np.empty(n, dtype=object)
    return shapely.multipolygons(polys, indices=owner, out=out)


def _blob_with_hole(rng, n, p):
    """A blob with a smaller blob-shaped hole, kept inside the outer ring's smallest radius."""
    shell, r_min, _ = _radial_rings(rng, _log_uniform_int(rng, p["complex_vertices"], n),
                                    *_radial_params(rng, n, p, "blob"))
    hole_vertices = np.maximum(_log_uniform_int(rng, p["complex_vertices"], n) // 8, 12)
    hole, _, hole_max = _radial_rings(rng, hole_vertices, *_radial_params(rng, n, p, "blob"))
    fraction = _u(rng, p["hole_size"], n)  # hole radius as a fraction of the shell's smallest radius
    k = fraction * r_min / hole_max
    room = np.maximum(0.95 * r_min - fraction * r_min, 0.0)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    shift = room * rng.uniform(0.0, 1.0, n)
    hole = affine(hole, k, 0.0, 0.0, k, shift * np.cos(angle), shift * np.sin(angle))
    return shapely.polygons(shell, holes=hole[:, None])


BUILDERS = {
    "rectangle": _rectangle,
    "l_shape": _l_shape,
    "t_shape": _t_shape,
    "u_shape": _u_shape,
    "courtyard": _courtyard,
    "multipart": _multipart,
    "convex_quad": _convex_quad,
    "concave_quad": _concave_quad,
    "convex_polygon": _convex_polygon,
    "blob": _blob,
    "star": _star,
    "multi_blob": _multi_blob,
    "blob_with_hole": _blob_with_hole,
}
"""Family name -> builder ``(rng, n, params) -> (n,) geometries`` (any scale; see :func:`normalise`)."""
