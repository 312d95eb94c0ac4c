"""Synthetic polygon pairs with exact overlap labels under positional uncertainty.

Pipeline for every pair (all steps batched over pairs with NumPy / shapely 2):

1. **Shapes in local metres** (:mod:`.shapes`): buildings (rectangles, L/T/U,
   courtyards with a hole, multipart), parcels (convex and concave quads,
   convex 5-8-gons, flag lots) and administrative-unit-like shapes (smooth or
   spiky radial shapes with 50-2000 vertices, multi-part, with enclaves),
   optionally generalised (simplified, densified, vertex noise, snapped).
2. **Pair kinds** (:data:`KIND_NAMES`, shares in ``RECIPE["kind_shares"]``):

   ======================  =====  =============================================
   kind                    share  construction
   ======================  =====  =============================================
   ``same_object``          35 %  one shape, B = A shifted / rotated / scaled,
                                  each side generalised independently
   ``containment``          15 %  a building in its parcel (or a parcel in an
                                  admin unit, a wing in a building); A in B or
                                  B in A with equal probability
   ``neighbours``           15 %  one shape cut in two along a line (shared
                                  boundary) or two independent aligned shapes;
                                  touching (half) or a gap of 0.05-20 m
   ``partial_overlap``      20 %  B put on A, then pushed along a random
                                  direction 5-95 % of the way to where they
                                  stop touching (interiors overlap, neither
                                  contains the other; same-class pairs often
                                  of similar size)
   ``disjoint``             15 %  two shapes at a gap of 2-200 % of the larger
                                  size (0.3 m .. 2 km), within the search
                                  distance
   ======================  =====  =============================================

   A and B are then swapped with probability 1/2, rotated together by a random
   angle and centred on their common bounding box.
3. **Location and delivery**: the pair is placed at a random lon/lat (10 %
   with the antimeridian running through it, 10 % at 70-89 deg latitude, the
   rest area-uniform up to +-89 deg) with :func:`..laea.laea_inverse`; each
   side is delivered in its own CRS (EPSG:4326; EPSG:3857 where |lat| < 85;
   the location's UTM zone; a regional grid where the location is inside its
   area), with one pyproj ``Transformer`` per CRS.
4. **The plugin path back**: :func:`..frame.layer_to_lonlat` per CRS and
   :func:`..frame.project_pairs` give the observed pair ``a``, ``b`` in its
   local LAEA frame, exactly as scoring sees it.
5. **Positional uncertainty and labels**: sigma = 0 for half of the pairs,
   otherwise log-uniform in [0.05, 10] m; one displacement d ~ N(0, sigma^2 I2)
   of B (frame metres); labels are :func:`..overlap.exact_overlap` of ``a`` and
   ``b + d``.  ``b`` itself is stored undisplaced.  The search distance a user
   would have set is the smallest "round" value (0, 0.5, 1, 2, 5, ... m) not
   below the observed distance between ``a`` and ``b``, sometimes a few steps
   larger.

Reproducibility: pairs are generated in blocks of ``RECIPE["block_size"]``,
block ``k`` drawing from ``SeedSequence(seed, spawn_key=(k,))``; delivery and
labels are deterministic functions of the block output.  So the same
``(n, seed, recipe)`` gives byte-identical arrays whatever the chunk size or
number of worker processes; dicts of the recipe are read in sorted key order,
so a recipe read back from its canonical JSON gives the same pairs.  Store
:func:`recipe_hash` with a model trained on these pairs.

Large runs: :func:`iter_synthetic_chunks` (bounded memory, optional worker
processes; with ``workers > 1`` the calling script needs the usual
``if __name__ == "__main__":`` guard of the "spawn" start method).
Evaluation: :func:`..overlap.monte_carlo_overlap` gives (n, m) samples of the overlap
under the pairs' sigma.

Plain NumPy / shapely / pyproj: no TensorFlow, usable in evaluation.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import pyproj
import shapely

from ..frame import layer_to_lonlat, project_pairs
from ..laea import laea_inverse
from ..overlap import exact_overlap
from . import shapes as S

__all__ = [
    "CLASS_NAMES",
    "FAMILY_NAMES",
    "KIND_CODES",
    "KIND_NAMES",
    "RECIPE",
    "SyntheticPairs",
    "generate_pairs",
    "iter_synthetic_chunks",
    "recipe_hash",
    "generator_fingerprint",
    "translate",
]

KIND_NAMES = ("same_object", "containment", "neighbours", "partial_overlap", "disjoint")
KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}
CLASS_NAMES = ("building", "parcel", "complex")
FAMILY_NAMES = S.FAMILY_NAMES
translate = S.translate

# Every constant of the generator.  Changing anything here changes recipe_hash().
RECIPE = {
    "version": 1,
    "block_size": 1024,
    "swap_share": 0.5,
    "bisection_steps": 30,
    "kind_shares": {
        "same_object": 0.35,
        "containment": 0.15,
        "neighbours": 0.15,
        "partial_overlap": 0.20,
        "disjoint": 0.15,
    },
    # sigma: per-axis standard deviation (m) of the rigid displacement of B.
    "sigma": {"zero_share": 0.5, "log_uniform_m": [0.05, 10.0]},
    # Longer side of the bounding box, log-uniform, metres.
    "size_m": {"building": [5.0, 80.0], "parcel": [20.0, 300.0], "complex": [300.0, 5000.0]},
    "families": {
        "building": {"rectangle": 0.40, "l_shape": 0.15, "t_shape": 0.10, "u_shape": 0.10,
                     "courtyard": 0.10, "multipart": 0.15},
        "parcel": {"convex_quad": 0.45, "concave_quad": 0.20, "convex_polygon": 0.20, "l_shape": 0.15},
        "complex": {"blob": 0.35, "star": 0.25, "multi_blob": 0.20, "blob_with_hole": 0.20},
    },
    # Builder parameters (fractions of the unit shape unless stated).
    "shape": {
        "aspect": [0.3, 1.0],
        "l_keep": [0.3, 0.7],
        "t_stem": [0.25, 0.6],
        "t_stem_height": [0.3, 0.7],
        "u_arm": [0.15, 0.4],
        "u_base": [0.2, 0.6],
        "courtyard_aspect": [0.5, 1.0],
        "courtyard_hole": [0.2, 0.6],
        "annex_size": [0.2, 0.6],
        "annex_gap": [0.05, 0.4],
        "annex_third_share": 0.3,
        "polygon_angle_jitter": 0.25,
        "dart_depth": [0.1, 0.6],
        "polygon_vertices": [5, 8],
        "complex_vertices": [50, 2000],
        "blob_amplitude": 0.35,
        "blob_jitter": [0.0, 0.03],
        "star_spikes": [3, 40],
        "star_amplitude": [0.15, 0.6],
        "star_jitter": [0.02, 0.15],
        "multi_blob_parts": [2, 4],
        "multi_blob_part_size": [0.15, 0.7],
        "multi_blob_gap": [0.05, 0.5],
        "hole_size": [0.1, 0.5],
    },
    # Edits; *_rel are fractions of the shape's size, log-uniform.
    "generalisation": {
        "simplify_rel": [0.003, 0.03],
        "densify_rel": [0.02, 0.25],
        "densify_max_vertices": 3000,
        "noise_rel": [0.001, 0.01],
        "snap_grid_m": [0.01, 0.05, 0.1, 0.5, 1.0],
        "snap_max_rel": 0.05,
    },
    # Any shape of any kind is generalised with this probability when it is made.
    "incidental_generalisation": {"share": 0.2, "ops": {"simplify": 0.25, "densify": 0.35, "noise": 0.2,
                                                        "snap": 0.2}},
    "same_object": {
        "classes": {"building": 0.65, "parcel": 0.25, "complex": 0.10},
        # Per side, independently.
        "source_ops": {"none": 0.4, "simplify": 0.15, "densify": 0.1, "noise": 0.15, "snap": 0.1,
                       "densify_noise": 0.1},
        "shift_rel": [0.001, 0.2],
        "rotation_sd_deg": 1.0,
        "scale_sd": 0.01,
    },
    "containment": {
        # [inner class, outer class, weight]
        "pairs": [["building", "parcel", 0.6], ["building", "building", 0.1], ["parcel", "complex", 0.2],
                  ["building", "complex", 0.1]],
        "outer_over_inner": [1.5, 8.0],
        # The inner shape's circumradius is at most this fraction of the outer's inscribed radius.
        "fill": [0.3, 0.95],
        "max_outer_growth": 3.0,
        "edge_try_share": 0.5,
    },
    "neighbours": {
        "cut_share": 0.5,
        "cut_classes": {"building": 0.4, "parcel": 0.45, "complex": 0.15},
        "pairs": [["building", "building", 0.7], ["parcel", "parcel", 0.3]],
        "touch_share": 0.5,
        "gap_m": [0.05, 20.0],
        "aligned_share": 0.7,
        "aligned_sd_deg": 3.0,
    },
    "partial_overlap": {
        "pairs": [["building", "building", 0.45], ["building", "parcel", 0.25], ["parcel", "parcel", 0.15],
                  ["complex", "complex", 0.10], ["parcel", "complex", 0.05]],
        # Where both sides are of one class, this share gets B's size = A's size * log-uniform ratio.
        "similar_size_share": 0.6,
        "size_ratio": [0.5, 2.0],
        # Offset as a fraction of the offset at which the shapes stop touching.
        "depth": [0.05, 0.95],
        "retry_depth": [0.85, 0.995],
        "retries": 3,
    },
    "disjoint": {
        "pairs": [["building", "building", 0.55], ["building", "parcel", 0.15], ["parcel", "parcel", 0.15],
                  ["complex", "complex", 0.10], ["parcel", "complex", 0.05]],
        "gap_rel": [0.02, 2.0],
        "gap_clip_m": [0.3, 2000.0],
    },
    "location": {
        "antimeridian_share": 0.1,
        "antimeridian_max_deg": 0.01,
        "high_latitude_share": 0.1,
        "high_latitude_deg": [70.0, 89.0],
        "max_latitude_deg": 89.0,
    },
    "crs": {
        "weights": {"EPSG:4326": 0.3, "EPSG:3857": 0.2, "utm": 0.3, "regional": 0.2},
        "web_mercator_max_lat": 85.0,
        # code -> [west, south, east, north] degrees (west > east: crosses the antimeridian).
        # All round-trip through pyproj to < 1e-6 m (same datum or a null transformation).
        "regional": {
            "EPSG:25832": [6.0, 38.76, 12.01, 84.33],
            "EPSG:3067": [19.08, 58.84, 31.59, 70.09],
            "EPSG:2180": [14.14, 49.0, 24.15, 55.93],
            "EPSG:2154": [-9.86, 41.15, 10.38, 51.56],
            "EPSG:4258": [-16.1, 32.88, 40.18, 84.73],
            "EPSG:5070": [-124.79, 24.41, -66.91, 49.38],
            "EPSG:4269": [167.65, 14.92, -40.73, 86.45],
            "EPSG:3577": [112.85, -43.7, 153.69, -9.86],
            "EPSG:2193": [166.37, -47.33, 178.63, -34.1],
            "EPSG:3413": [-180.0, 60.0, 180.0, 90.0],
            "EPSG:3995": [-180.0, 60.0, 180.0, 90.0],
            "EPSG:32661": [-180.0, 84.0, 180.0, 90.0],
            "EPSG:3031": [-180.0, -90.0, 180.0, -60.0],
            "EPSG:32761": [-180.0, -90.0, 180.0, -80.0],
            "EPSG:3395": [-180.0, -80.0, 180.0, 84.0],
        },
    },
    "search_distance": {
        "ladder_m": [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
                     10000.0],
        # Probability of choosing 0, 1, 2, 3 ladder steps above the smallest sufficient one.
        "extra_steps": [0.5, 0.25, 0.15, 0.1],
    },
}


GENERATOR_SOURCES = ("datasets/synthetic.py", "datasets/shapes.py", "frame.py", "overlap.py")


def generator_fingerprint() -> str:
    """sha256 (hex) of the source files that make the pairs: a code change there changes the pairs even
    when the recipe (and so :func:`recipe_hash`) stays the same. Stored with trained models and evaluations."""
    from pathlib import Path

    model_dir = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()


def recipe_hash(recipe=None) -> str:
    """sha256 (hex) of the canonical JSON of ``recipe`` (default :data:`RECIPE`): sorted keys, no spaces."""
    text = json.dumps(RECIPE if recipe is None else recipe, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------
# Output container.
# --------------------------------------------------------------------------
@dataclass
class SyntheticPairs:
    """n synthetic pairs in their local frames, with labels.  Every field is aligned on axis 0.

    a, b : (n,) object arrays of valid shapely (Multi)Polygons in the pair's
        local LAEA frame (metres), as observed: B is NOT displaced.
    sigma : (n,) float64, positional uncertainty, metres (per-axis standard
        deviation of the displacement of B; 0 for about half of the pairs).
    kind : (n,) int8 code into :data:`KIND_NAMES`.
    family_a, family_b : (n,) int8 codes into :data:`FAMILY_NAMES` (the
        shape family each side was built from; both cut halves of a
        ``neighbours`` pair carry their parent's family).
    displacement : (n, 2) float64 metres, the one draw d ~ N(0, sigma^2 I2)
        applied to B for the labels.
    cover_a, cover_b, iou : (n,) float64 labels, exact overlap of a and b + d.
    centroid : (n, 2) float64 centroid of a n (b + d) in the frame, metres;
        NaN where that intersection has no area.
    lon0, lat0 : (n,) float64 degrees, centres of the local frames.
    crs_a, crs_b : (n,) str arrays, the CRS each side was delivered in ("EPSG:xxxx").
    search_distance : (n,) float64 metres, a search distance a user would
        have set so that the pair is a candidate: >= shapely distance(a, b).
    """

    a: np.ndarray
    b: np.ndarray
    sigma: np.ndarray
    kind: np.ndarray
    family_a: np.ndarray
    family_b: np.ndarray
    displacement: np.ndarray
    cover_a: np.ndarray
    cover_b: np.ndarray
    iou: np.ndarray
    centroid: np.ndarray
    lon0: np.ndarray
    lat0: np.ndarray
    crs_a: np.ndarray
    crs_b: np.ndarray
    search_distance: np.ndarray

    def __len__(self):
        return len(self.a)

    @property
    def kind_name(self) -> np.ndarray:
        """(n,) str array of kind names."""
        return np.asarray(KIND_NAMES)[self.kind]

    def subset(self, keep) -> SyntheticPairs:
        """The pairs selected by a bool mask or an index array."""
        return SyntheticPairs(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts) -> SyntheticPairs:
        """One SyntheticPairs from a sequence of them (e.g. chunks)."""
        parts = list(parts)
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


# --------------------------------------------------------------------------
# Random helpers.
# --------------------------------------------------------------------------
def _log_uniform(rng, bounds, n):
    lo, hi = np.log(np.asarray(bounds[0], np.float64)), np.log(np.asarray(bounds[1], np.float64))
    return np.exp(lo + (hi - lo) * rng.uniform(0.0, 1.0, n))


def _choose(rng, weights, n):
    """n codes drawn with the given weights (normalised)."""
    w = np.asarray(weights, np.float64)
    return rng.choice(len(w), size=n, p=w / w.sum())


def _choose_named(rng, table, n):
    """n names drawn from a {name: weight} dict as an (n,) str array.

    Names are taken in sorted order, so a recipe read back from its canonical
    JSON (sorted keys) draws exactly the same stream.
    """
    names = sorted(table)
    return np.asarray(names)[_choose(rng, [table[k] for k in names], n)]


def _choose_pairs(rng, table, n):
    """n (class_a, class_b) drawn from [[class_a, class_b, weight], ...] -> two (n,) str arrays."""
    idx = _choose(rng, [row[2] for row in table], n)
    names = np.asarray([[row[0], row[1]] for row in table])
    return names[idx, 0], names[idx, 1]


def _unit(angle):
    return np.column_stack([np.cos(angle), np.sin(angle)])


# --------------------------------------------------------------------------
# Shapes and edits with the recipe's parameters.
# --------------------------------------------------------------------------
def _segment(rng, geoms, size, g):
    """Densification step (m): a fraction of the size, but never more than ``densify_max_vertices`` per shape."""
    return np.maximum(size * _log_uniform(rng, g["densify_rel"], len(geoms)),
                      shapely.length(geoms) / g["densify_max_vertices"])


def _generalise(rng, geoms, size, ops, recipe):
    """Apply per-shape edits; ``ops``: (m,) names among none/simplify/densify/noise/snap/densify_noise."""
    g = recipe["generalisation"]
    out = geoms.copy()
    for op in ("simplify", "densify", "noise", "snap", "densify_noise"):
        sel = np.flatnonzero(ops == op)
        if not sel.size:
            continue
        s = size[sel]
        if op == "simplify":
            out[sel] = S.simplify(out[sel], s * _log_uniform(rng, g["simplify_rel"], sel.size))
        elif op == "densify":
            out[sel] = S.densify(out[sel], _segment(rng, out[sel], s, g))
        elif op == "noise":
            out[sel] = S.vertex_noise(rng, out[sel], s * _log_uniform(rng, g["noise_rel"], sel.size))
        elif op == "snap":
            grids = np.asarray(g["snap_grid_m"], np.float64)
            allowed = np.maximum(np.searchsorted(grids, g["snap_max_rel"] * s, side="right"), 1)
            pick = np.floor(rng.uniform(0.0, 1.0, sel.size) * allowed).astype(np.int64)
            out[sel] = S.snap_to_grid(out[sel], grids[pick])
        else:
            dense = S.densify(out[sel], _segment(rng, out[sel], s, g))
            out[sel] = S.vertex_noise(rng, dense, s * _log_uniform(rng, g["noise_rel"], sel.size))
    return out


def _make_shapes(rng, classes, recipe, size=None, incidental=True):
    """Shapes centred on the origin, one per entry of ``classes`` ((m,) class names).

    ``size``: optional (m,) metres (longer side of the bounding box); drawn
    log-uniformly from ``recipe["size_m"]`` per class where not given.
    Returns ((m,) geometries, (m,) int8 family codes, (m,) sizes in metres).
    """
    m = len(classes)
    geoms = np.empty(m, dtype=object)
    family = np.zeros(m, np.int8)
    size = np.full(m, np.nan) if size is None else np.asarray(size, np.float64).copy()
    for cls in CLASS_NAMES:
        sel = np.flatnonzero(classes == cls)
        if not sel.size:
            continue
        missing = np.isnan(size[sel])
        size[sel[missing]] = _log_uniform(rng, recipe["size_m"][cls], int(missing.sum()))
        table = recipe["families"][cls]
        names = _choose_named(rng, table, sel.size)
        for name in sorted(table):
            sub = sel[names == name]
            if sub.size:
                geoms[sub] = S.normalise(S.BUILDERS[name](rng, sub.size, recipe["shape"]), size[sub])
                family[sub] = S.FAMILY_CODES[name]
    if incidental:
        inc = recipe["incidental_generalisation"]
        ops = np.where(rng.uniform(0.0, 1.0, m) < inc["share"], _choose_named(rng, inc["ops"], m), "none")
        geoms = _generalise(rng, geoms, size, ops, recipe)
    return geoms, family, size


def _push_apart(a, b, direction, gap, steps):
    """Offsets that move b along ``direction`` until it is just more than ``gap`` from a.

    a, b : (m,) geometries (metres); direction (m, 2) unit vectors; gap (m,)
    metres (0: just not intersecting).  B is first moved so that an interior
    point of B lies on an interior point of A (so they overlap), then pushed by
    t * direction with t found by bisection.  Returns (m, 2) offsets d such
    that ``distance(a, b + d) > gap`` (the far end of the bracket; the gap is
    met exactly for shapes whose distance grows with t).
    """
    inside_a = shapely.get_coordinates(shapely.point_on_surface(a))
    inside_b = shapely.get_coordinates(shapely.point_on_surface(b))
    start = inside_a - inside_b
    t_hi = (S.vertex_radius(a) + S.vertex_radius(b) + np.hypot(*inside_a.T) + np.hypot(*inside_b.T) + gap) * 1.001
    t_hi += 1e-3
    shapely.prepare(a)
    lo, hi = np.zeros(len(a)), t_hi
    xy, owner = shapely.get_coordinates(b, return_index=True)
    buffer = b.copy()
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        moved = shapely.set_coordinates(buffer, xy + (start + mid[:, None] * direction)[owner])
        far = ~shapely.dwithin(a, moved, gap)
        hi = np.where(far, mid, hi)
        lo = np.where(far, lo, mid)
    shapely.destroy_prepared(a)
    return start, hi


# --------------------------------------------------------------------------
# Pair kinds: (rng, m, recipe) -> a, b (local metres), family_a, family_b.
# --------------------------------------------------------------------------
def _same_object(rng, m, recipe):
    p = recipe["same_object"]
    base, family, size = _make_shapes(rng, _choose_named(rng, p["classes"], m), recipe, incidental=False)
    angle = np.deg2rad(rng.normal(0.0, p["rotation_sd_deg"], m))
    scale = 1.0 + rng.normal(0.0, p["scale_sd"], m)
    shift = rng.standard_normal((m, 2)) * (size * _log_uniform(rng, p["shift_rel"], m))[:, None]
    moved = S.translate(S.rotate(base, angle, scale), shift)
    a = _generalise(rng, base, size, _choose_named(rng, p["source_ops"], m), recipe)
    b = _generalise(rng, moved, size, _choose_named(rng, p["source_ops"], m), recipe)
    return a, b, family, family.copy()


def _containment(rng, m, recipe):
    p = recipe["containment"]
    inner_cls, outer_cls = _choose_pairs(rng, p["pairs"], m)
    inner, family_in, size_in = _make_shapes(rng, inner_cls, recipe)
    ratio = _log_uniform(rng, p["outer_over_inner"], m)
    complex_size = _log_uniform(rng, recipe["size_m"]["complex"], m)
    size_out = np.where(outer_cls == "complex", np.maximum(complex_size, 1.5 * size_in), ratio * size_in)
    outer, family_out, _ = _make_shapes(rng, outer_cls, recipe, size=size_out)
    inner = S.rotate(inner, rng.uniform(0.0, 2.0 * np.pi, m))

    circle = shapely.maximum_inscribed_circle(outer)
    ends = shapely.get_coordinates(circle).reshape(m, 2, 2)
    centre, radius = ends[:, 0], np.hypot(*(ends[:, 1] - ends[:, 0]).T)
    r_in = S.vertex_radius(inner)
    # Fit the inner shape into fill * the inscribed radius: grow the outer (up to
    # max_outer_growth times), then shrink the inner if that is not enough.
    need = r_in / (rng.uniform(*p["fill"], m) * radius)
    grow = np.clip(need, 1.0, p["max_outer_growth"])
    outer = S.rotate(outer, 0.0, grow)
    centre, radius = centre * grow[:, None], radius * grow
    k = np.minimum(1.0, grow / need)
    room = np.maximum(0.97 * radius - k * r_in, 0.0)
    direction = _unit(rng.uniform(0.0, 2.0 * np.pi, m))
    safe = centre + direction * (room * np.sqrt(rng.uniform(0.0, 1.0, m)))[:, None]
    inner = S.affine(inner, k, 0.0, 0.0, k, safe[:, 0], safe[:, 1])
    # Some try a spot nearer the boundary and keep it if it is still inside.
    bold = rng.uniform(0.0, 1.0, m) < p["edge_try_share"]
    extra = (k * r_in + radius) * rng.uniform(0.0, 1.0, m)
    trial = S.translate(inner, direction * np.where(bold, extra, 0.0)[:, None])
    keep = bold & shapely.contains_properly(outer, trial)
    inner[keep] = trial[keep]
    return inner, outer, family_in, family_out


def _neighbours(rng, m, recipe):
    p = recipe["neighbours"]
    cut = rng.uniform(0.0, 1.0, m) < p["cut_share"]
    gap = np.where(rng.uniform(0.0, 1.0, m) < p["touch_share"], 0.0, _log_uniform(rng, p["gap_m"], m))
    a = np.empty(m, dtype=object)
    b = np.empty(m, dtype=object)
    fam_a = np.zeros(m, np.int8)
    fam_b = np.zeros(m, np.int8)

    sel = np.flatnonzero(cut)
    if sel.size:
        shape, family, size = _make_shapes(rng, _choose_named(rng, p["cut_classes"], sel.size), recipe)
        normal = _unit(rng.uniform(0.0, 2.0 * np.pi, sel.size))
        xy, owner = shapely.get_coordinates(shape, return_index=True)
        along = np.einsum("ij,ij->i", xy, normal[owner])
        lo = S._segment_reduce(along, owner, sel.size, np.minimum, 0.0)
        hi = S._segment_reduce(along, owner, sel.size, np.maximum, 0.0)
        c = lo + (hi - lo) * rng.uniform(0.3, 0.7, sel.size)
        tangent = np.column_stack([-normal[:, 1], normal[:, 0]])
        big = 4.0 * size
        base = c[:, None] * normal
        far = (c + big)[:, None] * normal
        side = big[:, None] * tangent
        # The half-plane {x . normal >= c} clipped to a box much larger than the shape.
        corners = np.stack([base - side, base + side, far + side, far - side], axis=1)
        half = shapely.polygons(np.concatenate([corners, corners[:, :1]], axis=1))
        piece_a, piece_b = shapely.intersection(shape, half), shapely.difference(shape, half)
        # A cut through the gap between the parts of a multipart shape leaves pieces
        # that do not touch: cut those again through an interior point of the largest part.
        apart = ~shapely.intersects(piece_a, piece_b) | shapely.is_empty(piece_a) | shapely.is_empty(piece_b)
        if apart.any():
            idx = np.flatnonzero(apart)
            parts, owner = shapely.get_parts(shape[idx], return_index=True)
            order = np.lexsort((-shapely.area(parts), owner))
            first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
            inside = shapely.get_coordinates(shapely.point_on_surface(parts[first]))
            shift = (np.einsum("ij,ij->i", inside, normal[idx]) - c[idx])[:, None] * normal[idx]
            moved_half = S.translate(half[idx], shift)
            piece_a[idx] = shapely.intersection(shape[idx], moved_half)
            piece_b[idx] = shapely.difference(shape[idx], moved_half)
        a[sel] = piece_a
        b[sel] = S.translate(piece_b, -normal * gap[sel, None])
        fam_a[sel] = family
        fam_b[sel] = family

    sel = np.flatnonzero(~cut)
    if sel.size:
        cls_a, cls_b = _choose_pairs(rng, p["pairs"], sel.size)
        ga, fa, _ = _make_shapes(rng, cls_a, recipe)
        gb, fb, _ = _make_shapes(rng, cls_b, recipe)
        aligned = rng.uniform(0.0, 1.0, sel.size) < p["aligned_share"]
        wobble = np.deg2rad(rng.normal(0.0, p["aligned_sd_deg"], (2, sel.size)))
        free = rng.uniform(0.0, 2.0 * np.pi, (2, sel.size))
        gb = S.rotate(gb, np.where(aligned, wobble[0], free[0]))
        side = rng.integers(0, 4, sel.size) * (0.5 * np.pi)
        direction = _unit(np.where(aligned, side + wobble[1], free[1]))
        start, t = _push_apart(ga, gb, direction, gap[sel], recipe["bisection_steps"])
        a[sel] = ga
        b[sel] = S.translate(gb, start + direction * t[:, None])
        fam_a[sel] = fa
        fam_b[sel] = fb
    return a, b, fam_a, fam_b


def _partial_overlap(rng, m, recipe):
    p = recipe["partial_overlap"]
    cls_a, cls_b = _choose_pairs(rng, p["pairs"], m)
    a, fam_a, size_a = _make_shapes(rng, cls_a, recipe)
    similar = (cls_a == cls_b) & (rng.uniform(0.0, 1.0, m) < p["similar_size_share"])
    size_b = np.where(similar, size_a * _log_uniform(rng, p["size_ratio"], m), np.nan)
    b, fam_b, _ = _make_shapes(rng, cls_b, recipe, size=size_b)
    b = S.rotate(b, rng.uniform(0.0, 2.0 * np.pi, m))
    direction = _unit(rng.uniform(0.0, 2.0 * np.pi, m))
    start, touch = _push_apart(a, b, direction, np.zeros(m), recipe["bisection_steps"])
    depth = rng.uniform(*p["depth"], m)
    todo = np.arange(m)
    placed = np.empty(m, dtype=object)
    for attempt in range(p["retries"] + 1):
        offset = start[todo] + direction[todo] * (touch[todo] * depth[todo])[:, None]
        placed[todo] = S.translate(b[todo], offset)
        bad = ~shapely.overlaps(a[todo], placed[todo])
        todo = todo[bad]
        if not todo.size or attempt == p["retries"]:
            break
        depth[todo] = rng.uniform(*p["retry_depth"], todo.size)
    return a, placed, fam_a, fam_b


def _disjoint(rng, m, recipe):
    p = recipe["disjoint"]
    cls_a, cls_b = _choose_pairs(rng, p["pairs"], m)
    a, fam_a, size_a = _make_shapes(rng, cls_a, recipe)
    b, fam_b, size_b = _make_shapes(rng, cls_b, recipe)
    b = S.rotate(b, rng.uniform(0.0, 2.0 * np.pi, m))
    gap = np.clip(np.maximum(size_a, size_b) * _log_uniform(rng, p["gap_rel"], m), *p["gap_clip_m"])
    direction = _unit(rng.uniform(0.0, 2.0 * np.pi, m))
    start, t = _push_apart(a, b, direction, gap, recipe["bisection_steps"])
    return a, S.translate(b, start + direction * t[:, None]), fam_a, fam_b


_KIND_BUILDERS = {
    "same_object": _same_object,
    "containment": _containment,
    "neighbours": _neighbours,
    "partial_overlap": _partial_overlap,
    "disjoint": _disjoint,
}


# --------------------------------------------------------------------------
# Locations and delivery CRSs.
# --------------------------------------------------------------------------
def _locations(rng, bounds, recipe):
    """(lon, lat) degrees of m pair centres; ``bounds`` (m, 4) of the centred pairs in metres."""
    p = recipe["location"]
    m = len(bounds)
    group = _choose(rng, [p["antimeridian_share"], p["high_latitude_share"],
                          1.0 - p["antimeridian_share"] - p["high_latitude_share"]], m)
    s = np.sin(np.deg2rad(p["max_latitude_deg"]))
    lat = np.rad2deg(np.arcsin(rng.uniform(-s, s, m)))  # area-uniform
    high = np.deg2rad(np.asarray(p["high_latitude_deg"]))
    high_lat = np.rad2deg(np.arcsin(rng.uniform(np.sin(high[0]), np.sin(high[1]), m)))
    high_lat *= np.where(rng.uniform(0.0, 1.0, m) < 0.5, -1.0, 1.0)
    lat = np.where(group == 1, high_lat, lat)
    lon = rng.uniform(-180.0, 180.0, m)
    # Antimeridian: the meridian 180 runs through the pair's box (x in its middle 80 %).
    x_cross = bounds[:, 0] + (bounds[:, 2] - bounds[:, 0]) * rng.uniform(0.1, 0.9, m)
    metres_per_degree = 111_320.0 * np.cos(np.deg2rad(lat))
    dlon = np.clip(x_cross / metres_per_degree, -p["antimeridian_max_deg"], p["antimeridian_max_deg"])
    lon = np.where(group == 0, np.remainder(180.0 - dlon + 180.0, 360.0) - 180.0, lon)
    return lon, lat


def _utm_code(lon, lat):
    zone = np.floor((np.asarray(lon) + 180.0) / 6.0).astype(np.int64) % 60 + 1
    return np.char.add("EPSG:", (np.where(lat >= 0.0, 32600, 32700) + zone).astype(str))


def _inside(lon, lat, box):
    west, south, east, north = box
    in_lon = (lon >= west) & (lon <= east) if west <= east else (lon >= west) | (lon <= east)
    return in_lon & (lat >= south) & (lat <= north)


def _delivery_crs(rng, lon, lat, recipe):
    """(m,) CRS strings for one side: a weighted choice among those valid at each location."""
    p = recipe["crs"]
    m = len(lon)
    regional_codes = sorted(p["regional"])
    member = np.stack([_inside(lon, lat, p["regional"][c]) for c in regional_codes], axis=1)
    pick = np.argmax(np.where(member, rng.uniform(0.0, 1.0, member.shape), -1.0), axis=1)
    regional = np.asarray(regional_codes)[pick]
    w = p["weights"]
    weights = np.column_stack([
        np.full(m, w["EPSG:4326"]),
        np.where(np.abs(lat) < p["web_mercator_max_lat"], w["EPSG:3857"], 0.0),
        np.full(m, w["utm"]),
        np.where(member.any(axis=1), w["regional"], 0.0),
    ])
    cum = np.cumsum(weights, axis=1)
    choice = np.sum(cum < (rng.uniform(0.0, 1.0, m) * cum[:, -1])[:, None], axis=1)
    options = np.stack([np.full(m, "EPSG:4326"), np.full(m, "EPSG:3857"), _utm_code(lon, lat), regional], axis=1)
    return options[np.arange(m), choice].astype("U11")


_TRANSFORMERS = threading.local()


def _from_lonlat(code):
    """Cached WGS84 lon/lat -> ``code`` Transformer (always_xy), one per thread."""
    cache = getattr(_TRANSFORMERS, "cache", None)
    if cache is None:
        cache = _TRANSFORMERS.cache = {}
    if code not in cache:
        cache[code] = pyproj.Transformer.from_crs("EPSG:4326", code, always_xy=True)
    return cache[code]


def _deliver(local_a, local_b, lon, lat, crs_a, crs_b):
    """Local shapes -> lon/lat -> delivery CRSs -> the plugin's layer_to_lonlat / project_pairs.

    local_a, local_b : (n,) geometries in metres around (lon, lat) ((n,) degrees).
    crs_a, crs_b : (n,) CRS strings.  Returns the :class:`..frame.PairFrames`.
    """
    n = len(local_a)
    geoms = np.concatenate([local_a, local_b])
    crs = np.concatenate([crs_a, crs_b])
    pair = np.tile(np.arange(n), 2)
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    vlon, vlat = laea_inverse(xy[:, 0], xy[:, 1], lon[pair][owner], lat[pair][owner])
    codes, crs_index = np.unique(crs, return_inverse=True)
    vertex_crs = crs_index[owner]
    order = np.argsort(vertex_crs, kind="stable")
    splits = np.cumsum(np.bincount(vertex_crs, minlength=len(codes)))[:-1]
    out = np.empty_like(xy)
    codes = [str(c) for c in codes]  # pyproj 3.4 misreads numpy str_ ("EPSG:EPSG:...")
    for code, idx in zip(codes, np.split(order, splits)):
        if code == "EPSG:4326":
            out[idx, 0], out[idx, 1] = vlon[idx], vlat[idx]
        else:
            out[idx, 0], out[idx, 1] = _from_lonlat(code).transform(vlon[idx], vlat[idx], errcheck=False)
    delivered = shapely.set_coordinates(geoms.copy(), out)
    lonlat = np.empty(2 * n, dtype=object)
    for k, code in enumerate(codes):
        sel = crs_index == k
        lonlat[sel] = layer_to_lonlat(delivered[sel], code).geoms
    return project_pairs(lonlat[:n], lonlat[n:], np.arange(n), np.arange(n))


# --------------------------------------------------------------------------
# Blocks and chunks.
# --------------------------------------------------------------------------
def _fallback_rectangles(geoms, bad):
    """Replace unusable local shapes by a 10 m square (a safety net; not expected to trigger)."""
    geoms[bad] = shapely.box(-5.0, -5.0, 5.0, 5.0)


def _block(seed, index, m, recipe):
    """Everything random about pairs [index * block_size, +m): local shapes, location, CRSs, sigma, noise."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    names = list(KIND_NAMES)
    kind = _choose(rng, [recipe["kind_shares"][k] for k in names], m).astype(np.int8)
    a = np.empty(m, dtype=object)
    b = np.empty(m, dtype=object)
    fam_a = np.zeros(m, np.int8)
    fam_b = np.zeros(m, np.int8)
    for code, name in enumerate(names):
        sel = np.flatnonzero(kind == code)
        if sel.size:
            a[sel], b[sel], fam_a[sel], fam_b[sel] = _KIND_BUILDERS[name](rng, sel.size, recipe)
    for g in (a, b):
        _fallback_rectangles(g, shapely.is_missing(g) | ~(shapely.area(g) > 0.0) | ~shapely.is_valid(g))

    swap = rng.uniform(0.0, 1.0, m) < recipe["swap_share"]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    fam_a, fam_b = np.where(swap, fam_b, fam_a), np.where(swap, fam_a, fam_b)
    angle = rng.uniform(0.0, 2.0 * np.pi, m)
    a, b = S.rotate(a, angle), S.rotate(b, angle)
    ba, bb = shapely.bounds(a), shapely.bounds(b)
    lo = np.minimum(ba[:, :2], bb[:, :2])
    hi = np.maximum(ba[:, 2:], bb[:, 2:])
    centre = 0.5 * (lo + hi)
    a, b = S.translate(a, -centre), S.translate(b, -centre)
    bounds = np.column_stack([lo - centre, hi - centre])

    lon, lat = _locations(rng, bounds, recipe)
    crs_a = _delivery_crs(rng, lon, lat, recipe)
    crs_b = _delivery_crs(rng, lon, lat, recipe)

    sp = recipe["sigma"]
    sigma = np.where(rng.uniform(0.0, 1.0, m) < sp["zero_share"], 0.0, _log_uniform(rng, sp["log_uniform_m"], m))
    noise = rng.standard_normal((m, 2))
    steps = _choose(rng, recipe["search_distance"]["extra_steps"], m)
    return {"a": a, "b": b, "kind": kind, "family_a": fam_a.astype(np.int8), "family_b": fam_b.astype(np.int8),
            "lon": lon, "lat": lat, "crs_a": crs_a, "crs_b": crs_b, "sigma": sigma, "noise": noise, "steps": steps}


def _search_distance(distance, steps, recipe):
    ladder = np.asarray(recipe["search_distance"]["ladder_m"], np.float64)
    i = np.minimum(np.searchsorted(ladder, distance, side="left") + steps, len(ladder) - 1)
    return np.where(distance > ladder[-1], np.ceil(distance), ladder[i])


def _finish(block, recipe):
    """Deliver, project back, displace and label one batch of block outputs."""
    n = len(block["a"])
    crs_a, crs_b = block["crs_a"].copy(), block["crs_b"].copy()
    frames = _deliver(block["a"], block["b"], block["lon"], block["lat"], crs_a, crs_b)
    bad = np.zeros(n, bool)
    for g in (frames.a, frames.b):
        bad |= shapely.is_missing(g) | ~(shapely.area(g) > 0.0)
    if bad.any():  # safety net: deliver those pairs in lon/lat instead
        idx = np.flatnonzero(bad)
        crs_a[idx] = crs_b[idx] = "EPSG:4326"
        redo = _deliver(block["a"][idx], block["b"][idx], block["lon"][idx], block["lat"][idx],
                        crs_a[idx], crs_b[idx])
        frames.a[idx], frames.b[idx] = redo.a, redo.b
        frames.lon0[idx], frames.lat0[idx] = redo.lon0, redo.lat0
    a, b = frames.a, frames.b
    displacement = block["sigma"][:, None] * block["noise"]
    labels = exact_overlap(a, S.translate(b, displacement))
    distance = shapely.distance(a, b)
    return SyntheticPairs(
        a=a, b=b, sigma=block["sigma"], kind=block["kind"], family_a=block["family_a"],
        family_b=block["family_b"], displacement=displacement, cover_a=labels.cover_a,
        cover_b=labels.cover_b, iou=labels.iou,
        centroid=np.column_stack([labels.centroid_x, labels.centroid_y]),
        lon0=np.asarray(frames.lon0, np.float64), lat0=np.asarray(frames.lat0, np.float64),
        crs_a=crs_a, crs_b=crs_b, search_distance=_search_distance(distance, block["steps"], recipe),
    )


def _chunk(n, seed, recipe, first, stop):
    """Pairs of blocks [first, stop) of a run of n pairs, finished (delivered and labelled)."""
    block_size = int(recipe["block_size"])
    blocks = [_block(seed, k, min(block_size, n - k * block_size), recipe) for k in range(first, stop)]
    merged = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    return _finish(merged, recipe)


def iter_synthetic_chunks(n, seed, recipe=None, chunk_pairs=8192, workers=1):
    """Yield :class:`SyntheticPairs` chunks that together are ``generate_pairs(n, seed, recipe)``.

    Parameters
    ----------
    n : total number of pairs.
    seed : int, the root seed.
    recipe : dict like :data:`RECIPE` (default: RECIPE itself).
    chunk_pairs : pairs per chunk (rounded up to whole blocks).  Peak memory
        is about 60 kB per pair of a chunk (~0.5 GB for 8192) per worker.
    workers : processes generating chunks in parallel ("spawn" context, at
        most ``workers + 1`` chunks in flight); 1 runs in this process.  The
        result does not depend on ``chunk_pairs`` or ``workers``.
    """
    recipe = RECIPE if recipe is None else recipe
    block_size = int(recipe["block_size"])
    per_chunk = max(1, -(-int(chunk_pairs) // block_size))
    n_blocks = -(-int(n) // block_size)
    jobs = [(n, seed, recipe, first, min(first + per_chunk, n_blocks)) for first in range(0, n_blocks, per_chunk)]
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _chunk(*job)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(int(workers), mp_context=context) as pool:
        pending = deque()
        queue = iter(jobs)
        for job in itertools.islice(queue, int(workers) + 1):
            pending.append(pool.submit(_chunk, *job))
        while pending:
            result = pending.popleft().result()
            for job in itertools.islice(queue, 1):
                pending.append(pool.submit(_chunk, *job))
            yield result


def generate_pairs(n, seed, recipe=None, chunk_pairs=8192, workers=1) -> SyntheticPairs:
    """n synthetic labelled pairs (see the module docstring); the same (n, seed, recipe) gives identical arrays."""
    return SyntheticPairs.concatenate(iter_synthetic_chunks(n, seed, recipe, chunk_pairs, workers))
