"""Held-out data and its truth: the synthetic pairs (seed 3), the matching set, real layers, Monte Carlo.

Every random choice is drawn from :data:`HELD_OUT_SEED` through named streams, so nothing
here shares a draw with training (seeds 1 and 2). Pairs are cached under build/evaluation-data/.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import shapely

from ..frame import repair_polygonal
from ..overlap import monte_carlo_overlap

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = PACKAGE_ROOT / "model"
CACHE = PACKAGE_ROOT / "build" / "evaluation-data"
WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")
SAMPLE_DIR = PACKAGE_ROOT / "resources" / "sample"

#: Seed of the held-out synthetic set (training uses 1, validation 2).
HELD_OUT_SEED = 3
#: Spawn keys of the independent random streams drawn from HELD_OUT_SEED.
STREAMS = {"mc_subset": 1, "mc_displacements": 2, "matching": 3, "pit": 4, "yardstick": 5, "yardstick_samplers": 6}
#: Search distances (metres) for the real-layer candidates.
ADMIN_SEARCH_M = 0.0
BUILDING_SEARCH_M = 5.0


# ==========================================================================
# Data.
# ==========================================================================
def random_stream(seed, name):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[name],)))


def _save_pairs(path, pairs):
    """SyntheticPairs -> .npz without pickles (geometries as one WKB buffer with lengths)."""
    arrays = {}
    for f in fields(pairs):
        value = getattr(pairs, f.name)
        if value.dtype == object:
            wkb = shapely.to_wkb(value)
            arrays[f"{f.name}__wkb"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
            arrays[f"{f.name}__length"] = np.fromiter(map(len, wkb), dtype=np.int64, count=len(wkb))
        else:
            arrays[f.name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load_pairs(path):
    from ..datasets.synthetic import SyntheticPairs

    values = {}
    with np.load(path, allow_pickle=False) as archive:
        for f in fields(SyntheticPairs):
            if f"{f.name}__wkb" in archive.files:
                buffer = archive[f"{f.name}__wkb"].tobytes()
                ends = np.cumsum(archive[f"{f.name}__length"])
                starts = ends - archive[f"{f.name}__length"]
                values[f.name] = shapely.from_wkb([buffer[s:e] for s, e in zip(starts, ends)])
            else:
                values[f.name] = archive[f.name]
    return SyntheticPairs(**values)


def held_out_pairs(n, seed=HELD_OUT_SEED, workers=1, progress=True, cache=CACHE):
    """``generate_pairs(n, seed)``, cached (WKB) under build/evaluation-data/ by n, seed, recipe hash and the
    generator's source (:func:`generator_fingerprint`)."""
    from ..datasets.synthetic import SyntheticPairs, generator_fingerprint, iter_synthetic_chunks, recipe_hash

    name = f"heldout_{n}_{seed}_{recipe_hash()[:12]}_{generator_fingerprint()[:8]}.npz"
    path = None if cache is None else Path(cache) / name
    if path is not None and path.is_file():
        return _load_pairs(path)
    bar = progress_bar(total=n, desc=f"held-out pairs (seed {seed})", disable=not progress)
    parts = []
    for chunk in iter_synthetic_chunks(n, seed, chunk_pairs=4096, workers=workers):
        parts.append(chunk)
        bar.update(len(chunk))
    bar.close()
    pairs = SyntheticPairs.concatenate(parts)
    if path is not None:
        _save_pairs(path, pairs)
    return pairs


@dataclass
class MatchingSet:
    """Groups of candidate B's around one input feature A each; every field is aligned on axis 0.

    group : (N,) int, the group (input feature) of each candidate.
    a, b : (N,) geometries in the group's frame (metres); ``a`` repeats within a group.
    role : (N,) int8 code into :data:`CANDIDATE_ROLES`.
    """

    group: np.ndarray
    a: np.ndarray
    b: np.ndarray
    role: np.ndarray

    def __len__(self):
        return len(self.group)


CANDIDATE_ROLES = ("counterpart", "shifted_counterpart", "neighbour", "partial_overlap", "inside_or_around",
                   "disjoint")


def matching_set(pool, n_groups, seed=HELD_OUT_SEED):
    """Held-out best-match groups built from the ``same_object`` pairs of ``pool`` (:class:`.synthetic.SyntheticPairs`).

    For each of up to ``n_groups`` anchors (A, B) -- one object as two sources deliver it,
    in the pair's local frame -- the candidates are, all in A's frame:

    * ``counterpart``: B itself;
    * ``shifted_counterpart``: B moved by 5-50 % of A's size in a random direction (the same
      object from a badly registered source);
    * ``neighbour``: a donor shape (size 0.5-2 x A's) touching A (half) or at a gap of
      0.2-10 % of A's size;
    * ``partial_overlap``: a donor pushed into A to 5-95 % of the touching offset;
    * ``inside_or_around``: a donor at 20-50 % of A's size at a point inside A, or at 2-4 x A's
      size centred on A (a part, or the parcel around it);
    * ``disjoint``: a donor at a gap of 10-200 % of A's size.

    Donors are shapes (side A) of other pool pairs of similar size (nearby in size rank),
    re-centred, randomly rotated and rescaled, so groups mix buildings with buildings and
    admin-like shapes with admin-like shapes, as real layers do. Seeded by ``seed``.
    """
    from ..datasets import shapes as S
    from ..datasets.synthetic import KIND_CODES

    rng = random_stream(seed, "matching")
    anchors = np.flatnonzero(pool.kind == KIND_CODES["same_object"])
    anchors = np.sort(rng.choice(anchors, size=min(int(n_groups), anchors.size), replace=False))
    g = anchors.size
    a, b = pool.a[anchors], pool.b[anchors]
    bounds = shapely.bounds(a)
    centre = 0.5 * (bounds[:, :2] + bounds[:, 2:])
    size = np.max(bounds[:, 2:] - bounds[:, :2], axis=1)
    a0, b0 = S.translate(a, -centre), S.translate(b, -centre)

    pool_bounds = shapely.bounds(pool.a)
    pool_size = np.max(pool_bounds[:, 2:] - pool_bounds[:, :2], axis=1)
    by_size = np.argsort(pool_size, kind="stable")
    rank = np.searchsorted(pool_size[by_size], size)

    def donor(scale_factor):
        pick = np.clip(rank + rng.integers(-100, 101, g), 0, len(by_size) - 1)
        shape = S.normalise(pool.a[by_size[pick]], size * scale_factor)
        return S.rotate(shape, rng.uniform(0.0, 2.0 * np.pi, g))

    def log_uniform(low, high):
        return np.exp(rng.uniform(np.log(low), np.log(high), g))

    def direction():
        angle = rng.uniform(0.0, 2.0 * np.pi, g)
        return np.column_stack([np.cos(angle), np.sin(angle)])

    shifted = S.translate(b0, direction() * (size * rng.uniform(0.05, 0.5, g))[:, None])

    neighbour, u = donor(log_uniform(0.5, 2.0)), direction()
    gap = np.where(rng.uniform(0.0, 1.0, g) < 0.5, 0.0, size * log_uniform(0.002, 0.1))
    start, t = offset_to_gap(a0, neighbour, u, gap)
    neighbour = S.translate(neighbour, start + u * t[:, None])

    partial, u = donor(log_uniform(0.5, 2.0)), direction()
    start, touch = offset_to_gap(a0, partial, u, np.zeros(g))
    partial = S.translate(partial, start + u * (touch * rng.uniform(0.05, 0.95, g))[:, None])

    inside = rng.uniform(0.0, 1.0, g) < 0.5
    around = np.where(inside, donor(rng.uniform(0.2, 0.5, g)), donor(rng.uniform(2.0, 4.0, g)))
    spot = np.where(inside[:, None], shapely.get_coordinates(shapely.point_on_surface(a0)), 0.0)
    around = S.translate(around, spot)

    disjoint, u = donor(log_uniform(0.5, 2.0)), direction()
    start, t = offset_to_gap(a0, disjoint, u, size * log_uniform(0.1, 2.0))
    disjoint = S.translate(disjoint, start + u * t[:, None])

    candidates = np.stack([b0, shifted, neighbour, partial, around, disjoint])  # (roles, g)
    n_roles = len(CANDIDATE_ROLES)
    b_all = S.translate(candidates.T.ravel(), np.repeat(centre, n_roles, axis=0))
    repair_polygonal(b_all)
    return MatchingSet(
        group=np.repeat(np.arange(g), n_roles),
        a=np.repeat(a, n_roles),
        b=b_all,
        role=np.tile(np.arange(n_roles, dtype=np.int8), g),
    )


def offset_to_gap(a, b, direction, gap, steps=30):
    """Where to move (n,) geometries b along (n, 2) unit ``direction`` to be just over (n,) ``gap`` metres from a.

    b is first moved by ``start`` so that an interior point of b lies on an interior point
    of a (they overlap), then along the direction by t, found by bisection (``steps``
    halvings) as the smallest t with distance(a, b + start + t * direction) > gap (exact
    where the distance grows with t). Returns (start (n, 2), t (n,)).
    """
    from ..datasets import shapes as S

    inside_a = shapely.get_coordinates(shapely.point_on_surface(a))
    inside_b = shapely.get_coordinates(shapely.point_on_surface(b))
    start = inside_a - inside_b
    b_start = S.translate(b, start)
    reach = S.vertex_radius(a) + S.vertex_radius(b_start)
    low, high = np.zeros(len(a)), 2.0 * reach + gap + 1e-3
    xy, owner = shapely.get_coordinates(b_start, return_index=True)
    shapely.prepare(a)
    for _ in range(steps):  # one vectorised bisection step over all pairs
        mid = 0.5 * (low + high)
        moved = shapely.set_coordinates(b_start.copy(), xy + (mid[:, None] * direction)[owner])
        far = ~shapely.dwithin(a, moved, gap)
        high = np.where(far, mid, high)
        low = np.where(far, low, mid)
    return start, high


def monte_carlo_truth(pairs, rows, m, seed=HELD_OUT_SEED, batch_pairs=100, progress=True):
    """(len(rows), m) Monte-Carlo IoU, cover_a and cover_b of the pairs ``rows`` (seeded per batch)."""
    out = {key: np.empty((len(rows), m)) for key in ("iou", "cover_a", "cover_b")}
    bar = progress_bar(total=len(rows), desc=f"Monte-Carlo truth ({m} displacements)", disable=not progress)
    for k, start in enumerate(range(0, len(rows), batch_pairs)):
        sel = rows[start:start + batch_pairs]
        batch_seed = int(np.random.SeedSequence(seed, spawn_key=(STREAMS["mc_displacements"], k)).generate_state(1)[0])
        mc = monte_carlo_overlap(pairs.a[sel], pairs.b[sel], pairs.sigma[sel], m, seed=batch_seed)
        for key, values in out.items():
            values[start:start + len(sel)] = getattr(mc, key)
        bar.update(len(sel))
    bar.close()
    return out


def progress_bar(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, **kwargs)
