"""Held-out evaluation of the overlap model: ``python -m overlap_relevance.model.training.evaluate``.

Writes ``model/MODEL_CARD.md`` and the machine-readable ``model/evaluation.json``
(``make evaluate``). Plain NumPy / shapely / pyproj / GDAL: no QGIS import, and
TensorFlow only for the optional seed-convergence runs (``--seeds``), so this
never shares a process with QGIS.

What is measured (every random choice is seeded; nothing here is tuned on it):

* **Held-out synthetic pairs** (:func:`.synthetic.generate_pairs` with seed
  :data:`HELD_OUT_SEED` = 3; training uses 1 and validation 2), at least
  20,000 pairs: for σ = 0 the MAE of the predicted mean IoU and of the two mean
  coverage fractions against the exact labels, and the intersection-centroid
  error relative to the pair scale; for σ > 0 the NLL of the overlap mixture
  at the (one-displacement) labels.
* **Monte-Carlo truth** for a seeded subset of σ > 0 pairs
  (:func:`.synthetic.monte_carlo_overlap`, 512 displacements per pair): the
  coverage of the model's central 90 % IoU interval, the randomised-PIT
  coverage, the CRPS of the model's IoU distribution next to the "oracle" CRPS
  of the Monte-Carlo distribution itself (split-half estimate), and the NLL
  averaged over the Monte-Carlo samples.
* **Best match** on a held-out matching set (:func:`matching_set`): groups of
  candidates around one input feature, the share of groups whose predicted
  best candidate (highest mean IoU) is the exact best.
* **Real layers the recipe never saw**: QGIS's ``world_map.gpkg``
  (``states_provinces`` × ``countries``) and the bundled building sample, through
  the plugin's own path (:func:`..frame.layer_to_lonlat`,
  :func:`..pairs.iter_pair_chunks`, :meth:`..scoring.OverlapModel.predict_frames`).
* **Convergence** over 5 training seeds (short runs with :func:`.train.fit`).
* Throughput of ``predict_frames`` and error tables by pair kind, σ bucket and
  vertex count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import shapely

from ..encoding import pair_scale_and_centre
from ..frame import layer_to_lonlat, repair_polygonal
from ..overlap import exact_overlap
from ..scoring import QMC_SEED, iou_from_covers, load_model, summarise_overlap

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = PACKAGE_ROOT / "model"
CACHE = PACKAGE_ROOT / "build" / "evaluation-data"
ARCHITECTURE_RESULTS = MODEL_DIR / "training" / "architecture_results.md"
WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")
SAMPLE_DIR = PACKAGE_ROOT / "resources" / "sample"

#: Seed of the held-out synthetic set (training uses 1, validation 2).
HELD_OUT_SEED = 3
#: Spawn keys of the independent random streams drawn from HELD_OUT_SEED.
STREAMS = {"mc_subset": 1, "mc_displacements": 2, "matching": 3, "pit": 4}
#: Seeds of the convergence runs.
CONVERGENCE_SEEDS = (11, 12, 13, 14, 15)

DEFAULTS = {"pairs": 20_000, "mc_pairs": 2_000, "mc_samples": 512, "model_samples": 1024, "groups": 3_000,
            "seeds": 5, "seed_pairs": 30_000, "seed_validation_pairs": 4_000, "seed_epochs": 6,
            "workers": min(2, os.cpu_count() or 1)}

INTERVAL_LEVEL = 0.9
TIE_TOLERANCE = 1e-6
#: Groups whose two best exact IoUs differ by less than this are reported apart as close calls.
CLOSE_MARGIN = 0.02
#: Search distances (metres) for the real-layer candidates.
ADMIN_SEARCH_M = 0.0
BUILDING_SEARCH_M = 5.0
#: Bucket edges: σ in metres (0 is its own bucket) and vertices of A plus B.
SIGMA_EDGES = (0.2, 1.0, 3.0)
VERTEX_EDGES = (16, 64, 256, 1024)

#: Targets, fixed before measuring: (key, description, kind, bound(s)).
TARGETS = {
    "iou_mae_sigma0": ("σ = 0: MAE of the mean IoU", "max", 0.02),
    "matching_agreement": ("σ = 0: best-match agreement (synthetic groups)", "min", 0.99),
    "interval_coverage": ("σ > 0: coverage of the central 90 % IoU interval", "range", (0.85, 0.95)),
    "pit_coverage": ("σ > 0: PIT coverage of the central 90 %", "range", (0.85, 0.95)),
    "centroid_median_pct": ("σ = 0: centroid error, median (% of pair scale)", "max", 2.0),
    "seed_nan_runs": ("5 seeds: runs with a NaN loss", "max", 0),
    "seed_spread": ("5 seeds: spread of the final validation NLL", "max", 0.10),
    "buildings_agreement": ("Real: best-match agreement, building footprints", "min", 0.99),
    "admin_agreement": ("Real: best-match agreement, administrative units", "min", 0.95),
}


# ==========================================================================
# Metrics (pure NumPy, vectorised).
# ==========================================================================
def mean_absolute_error(predicted, truth):
    """Mean of |predicted - truth| (NaN for no items)."""
    predicted, truth = np.asarray(predicted, float), np.asarray(truth, float)
    return float(np.mean(np.abs(predicted - truth))) if predicted.size else float("nan")


def group_ranking(group, values):
    """Per group (ids of any integers): the position of the largest value, the largest and the second largest.

    Returns (ids (G,), best_index (G,) into the input, best (G,), second (G,)); second is -inf for
    a group of one. Ties keep the earlier position.
    """
    group = np.asarray(group)
    values = np.asarray(values, float)
    order = np.lexsort((np.arange(len(values)), -values, group))
    ids, first, counts = np.unique(group[order], return_index=True, return_counts=True)
    best_index = order[first]
    second = np.where(counts > 1, values[order[np.minimum(first + 1, len(order) - 1)]], -np.inf)
    return ids, best_index, values[best_index], second


def best_match_agreement(group, exact, predicted, tie_tolerance=TIE_TOLERANCE, close_margin=CLOSE_MARGIN):
    """Share of groups whose predicted best candidate is the exact best.

    group : (N,) group id of each candidate (the input feature it belongs to);
    exact, predicted : (N,) IoU of each candidate.
    Groups whose exact best IoU is 0, or whose two best exact IoUs tie within
    ``tie_tolerance``, are left out. Also returns the mean exact-IoU regret (exact best
    minus the exact IoU of the predicted best) over the groups used, and the agreement on
    close calls (groups whose two best exact IoUs differ by less than ``close_margin``).
    """
    exact = np.asarray(exact, float)
    ids, exact_best, best, second = group_ranking(group, exact)
    _, predicted_best, _, _ = group_ranking(group, predicted)
    zero = best <= 0.0
    tied = ~zero & (best - second <= tie_tolerance)
    used = ~(zero | tied)
    hit = predicted_best[used] == exact_best[used]
    regret = best[used] - exact[predicted_best[used]]
    close = (best - second)[used] < close_margin
    return {
        "groups": len(ids), "used": int(used.sum()), "excluded_zero": int(zero.sum()),
        "excluded_tie": int(tied.sum()), "agreement": float(hit.mean()) if hit.size else float("nan"),
        "mismatches": int((~hit).sum()), "mean_regret": float(regret.mean()) if regret.size else float("nan"),
        "close_margin": close_margin, "close_calls": int(close.sum()),
        "close_call_agreement": float(hit[close].mean()) if close.any() else None,
        "_used_groups": ids[used], "_exact_best": exact_best[used], "_predicted_best": predicted_best[used],
    }


def _rowwise_search(sorted_rows, values, side):
    """np.searchsorted of each row of ``values`` (n, j) in the same row of ``sorted_rows`` (n, m), vectorised.

    Rows are shifted apart by more than the data's range, so one global search serves all rows.
    Returns (n, j) counts in 0..m.
    """
    sorted_rows = np.asarray(sorted_rows, float)
    values = np.asarray(values, float)
    n, m = sorted_rows.shape
    low = min(sorted_rows.min(initial=0.0), values.min(initial=0.0))
    width = max(sorted_rows.max(initial=0.0), values.max(initial=0.0)) - low + 1.0
    offset = (np.arange(n) * width)[:, None]
    flat = (sorted_rows - low + offset).ravel()
    found = np.searchsorted(flat, (values - low + offset).ravel(), side=side).reshape(values.shape)
    return found - (np.arange(n) * m)[:, None]


def central_interval(samples, level=INTERVAL_LEVEL):
    """(lower, upper) (n,) of the central ``level`` interval of each row of ``samples`` (n, m)."""
    alpha = (1.0 - level) / 2.0
    lower, upper = np.quantile(samples, [alpha, 1.0 - alpha], axis=1)
    return lower, upper


def interval_coverage(forecast, observations, level=INTERVAL_LEVEL):
    """(n,) share of each row's observations (n, j) inside the central interval of the forecast samples (n, m).

    The interval is closed, so a forecast and an observation that are both an atom (e.g.
    IoU = 0 for every displacement) count as covered.
    """
    lower, upper = central_interval(forecast, level)
    observations = np.asarray(observations, float)
    return np.mean((observations >= lower[:, None]) & (observations <= upper[:, None]), axis=1)


def randomised_pit(forecast, observations, rng):
    """(n, j) randomised probability integral transform of observations under the forecast samples' CDF.

    u = F(y-) + V (F(y) - F(y-)), V ~ U(0, 1): uniform for a calibrated forecast even
    where the distribution has atoms (IoU = 0 or 1).
    """
    forecast = np.sort(np.asarray(forecast, float), axis=1)
    m = forecast.shape[1]
    below = _rowwise_search(forecast, observations, "left") / m
    at_most = _rowwise_search(forecast, observations, "right") / m
    return below + rng.uniform(0.0, 1.0, below.shape) * (at_most - below)


def pit_coverage(pit, level=INTERVAL_LEVEL):
    """(n,) share of each row's PIT values inside [(1 - level) / 2, (1 + level) / 2]."""
    alpha = (1.0 - level) / 2.0
    return np.mean((pit >= alpha) & (pit <= 1.0 - alpha), axis=1)


def crps_from_samples(forecast, observations):
    """(n,) CRPS of each row's empirical forecast (n, m samples), averaged over its observations (n, j).

    CRPS(F, y) = E|X - y| - E|X - X'| / 2 with F the empirical distribution of the
    forecast samples; exact for that distribution (sorted prefix sums, no m x j matrix).
    """
    x = np.sort(np.asarray(forecast, float), axis=1)
    n, m = x.shape
    observations = np.asarray(observations, float)
    prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)  # (n, m + 1)
    k = _rowwise_search(x, observations, "right")  # samples <= y
    below_sum = np.take_along_axis(prefix, k, axis=1)
    to_observation = ((2 * k - m) * observations + prefix[:, -1:] - 2.0 * below_sum) / m
    rank = 2.0 * np.arange(1, m + 1) - m - 1.0
    spread = 2.0 * (x @ rank) / m**2  # E|X - X'|
    return to_observation.mean(axis=1) - 0.5 * spread


def oracle_crps(samples):
    """(n,) split-half CRPS of the Monte-Carlo distribution against itself (n, m samples).

    Each half forecasts the other and the two scores are averaged: the score a forecast
    equal to the true distribution gets, up to the sampling noise of m / 2 samples.
    """
    samples = np.asarray(samples, float)
    half = samples.shape[1] // 2
    first, second = samples[:, :half], samples[:, half:2 * half]
    return 0.5 * (crps_from_samples(first, second) + crps_from_samples(second, first))


def relative_distance(predicted, truth, scale):
    """(n,) Euclidean distance between (n, 2) points, divided by (n,) scale."""
    return np.linalg.norm(np.asarray(predicted) - np.asarray(truth), axis=1) / np.asarray(scale)


def bucket_codes(values, edges):
    """(n,) bucket index of each value: 0 for values <= edges[0], ..., len(edges) above the last."""
    return np.searchsorted(np.asarray(edges, float), np.asarray(values, float), side="left")


def bucket_labels(edges, unit=""):
    """Labels of the buckets of :func:`bucket_codes`."""
    edges = list(edges)
    labels = [f"≤ {_fmt_number(edges[0])}{unit}"]
    labels += [f"{_fmt_number(lo)}–{_fmt_number(hi)}{unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    return labels + [f"> {_fmt_number(edges[-1])}{unit}"]


def sigma_bucket_codes(sigma):
    """(n,) 0 for σ = 0, then 1 + :func:`bucket_codes` over :data:`SIGMA_EDGES`."""
    sigma = np.asarray(sigma, float)
    return np.where(sigma > 0, 1 + bucket_codes(sigma, SIGMA_EDGES), 0)


def sigma_bucket_labels():
    edges = (0.0,) + SIGMA_EDGES
    return ["σ = 0"] + [f"{_fmt_number(lo)} < σ ≤ {_fmt_number(hi)} m" for lo, hi in zip(edges[:-1], edges[1:])] + [
        f"σ > {_fmt_number(SIGMA_EDGES[-1])} m"]


def grouped_means(codes, labels, columns):
    """Rows {label, n, <column>: mean over the valid items of that group} for each group code.

    codes : (n,) ints in 0..len(labels) - 1; columns : {name: (values (n,), valid (n,) bool)}.
    A column whose name starts with ``median`` / ``p90`` / ``count`` gives that statistic instead.
    """
    codes = np.asarray(codes)
    rows = []
    for code, label in enumerate(labels):  # one pass per bucket (a handful), not per item
        in_group = codes == code
        row = {"group": label, "n": int(in_group.sum())}
        for name, (values, valid) in columns.items():
            sel = in_group & valid
            row[name] = _statistic(name, np.asarray(values, float)[sel])
        rows.append(row)
    return rows


def _statistic(name, values):
    if name.startswith("count"):
        return int(values.size)
    if not values.size:
        return None
    if name.startswith("median"):
        return float(np.median(values))
    if name.startswith("p90"):
        return float(np.quantile(values, 0.9))
    return float(values.mean())


def target_status(key, value):
    """'met' / 'missed' / 'not measured' for a :data:`TARGETS` key."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not measured"
    _, kind, bound = TARGETS[key]
    if kind == "max":
        ok = value <= bound
    elif kind == "min":
        ok = value >= bound
    else:
        ok = bound[0] <= value <= bound[1]
    return "met" if ok else "missed"


# ==========================================================================
# Data.
# ==========================================================================
def _stream(seed, name):
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
    from .synthetic import SyntheticPairs

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
    from .synthetic import SyntheticPairs, generator_fingerprint, iter_synthetic_chunks, recipe_hash

    name = f"heldout_{n}_{seed}_{recipe_hash()[:12]}_{generator_fingerprint()[:8]}.npz"
    path = None if cache is None else Path(cache) / name
    if path is not None and path.is_file():
        return _load_pairs(path)
    bar = _progress(total=n, desc=f"held-out pairs (seed {seed})", disable=not progress)
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
    from . import shapes as S
    from .synthetic import KIND_CODES

    rng = _stream(seed, "matching")
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
    from . import shapes as S

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


def read_layer(path, layer_name, name_field=None):
    """(geometries (n,), CRS string, names (n,) or None) of one vector layer, read with GDAL (no QGIS)."""
    from osgeo import ogr

    dataset = ogr.Open(str(path))
    if dataset is None:
        raise FileNotFoundError(f"cannot open {path}")
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    srs = layer.GetSpatialRef()
    code = srs.GetAuthorityCode(None) if srs is not None else None
    crs = f"{srs.GetAuthorityName(None)}:{code}" if code else srs.ExportToWkt()
    wkb, names = [], []
    for feature in layer:  # reading features is inherently one call per feature
        geometry = feature.GetGeometryRef()
        wkb.append(None if geometry is None else bytes(geometry.ExportToIsoWkb()))
        if name_field:
            names.append(feature.GetField(name_field))
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    return geoms, crs, (np.asarray(names, dtype=object) if name_field else None)


# ==========================================================================
# Evaluation steps.
# ==========================================================================
def predict(model, a, b, sigma):
    """Model outputs for aligned pairs in their frames, with timings: dict of arrays and mixtures."""
    started = time.perf_counter()
    overlap, centroid = model.predict_frames(a, b, sigma)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = summarise_overlap(overlap)
    summary_seconds = time.perf_counter() - started
    return {"overlap": overlap, "centroid": centroid, "iou_mean": summary.iou_mean, "iou_sd": summary.iou_sd,
            "cover_a_mean": summary.cover_a_mean, "cover_b_mean": summary.cover_b_mean,
            "predict_seconds": predict_seconds, "summary_seconds": summary_seconds}


def model_iou_samples(overlap, m, seed=QMC_SEED):
    """(n, m) IoU values of the overlap mixtures' quasi-random points (covers clipped to [0, 1])."""
    points = overlap.quasi_samples(m, seed)  # (m, n, 2)
    return iou_from_covers(points[..., 0], points[..., 1]).T


def evaluate_sigma0(pairs, out, sigma0):
    """MAE of mean IoU and coverages at σ = 0."""
    return {
        "n": int(sigma0.sum()),
        "iou_mae": mean_absolute_error(out["iou_mean"][sigma0], pairs.iou[sigma0]),
        "cover_a_mae": mean_absolute_error(out["cover_a_mean"][sigma0], pairs.cover_a[sigma0]),
        "cover_b_mae": mean_absolute_error(out["cover_b_mean"][sigma0], pairs.cover_b[sigma0]),
        "iou_max_error": float(np.max(np.abs(out["iou_mean"][sigma0] - pairs.iou[sigma0]), initial=0.0)),
    }


def overlap_nll(overlap, pairs):
    """(n,) negative log density of the overlap mixture at the labels (cover_a, cover_b)."""
    return -overlap.log_prob(np.column_stack([pairs.cover_a, pairs.cover_b]))


def centroid_errors(pairs, centroid):
    """Relative centroid errors (mean and mode of the centroid mixture) where the label exists, and the mask."""
    has = np.all(np.isfinite(pairs.centroid), axis=1)
    scale, _ = pair_scale_and_centre(pairs.a, pairs.b)
    mean_error = np.full(len(pairs), np.nan)
    mode_error = np.full(len(pairs), np.nan)
    if has.any():
        rows = np.flatnonzero(has)
        mean_error[rows] = relative_distance(centroid[rows].mean(), pairs.centroid[rows], scale[rows])
        mode_error[rows] = relative_distance(centroid[rows].mode(), pairs.centroid[rows], scale[rows])
    return mean_error, mode_error, has


def monte_carlo_truth(pairs, rows, m, seed=HELD_OUT_SEED, batch_pairs=100, progress=True):
    """(len(rows), m) Monte-Carlo IoU, cover_a and cover_b of the pairs ``rows`` (seeded per batch)."""
    from .synthetic import monte_carlo_overlap

    out = {key: np.empty((len(rows), m)) for key in ("iou", "cover_a", "cover_b")}
    bar = _progress(total=len(rows), desc=f"Monte-Carlo truth ({m} displacements)", disable=not progress)
    for k, start in enumerate(range(0, len(rows), batch_pairs)):
        sel = rows[start:start + batch_pairs]
        batch_seed = int(np.random.SeedSequence(seed, spawn_key=(STREAMS["mc_displacements"], k)).generate_state(1)[0])
        mc = monte_carlo_overlap(pairs.a[sel], pairs.b[sel], pairs.sigma[sel], m, seed=batch_seed)
        for key, values in out.items():
            values[start:start + len(sel)] = getattr(mc, key)
        bar.update(len(sel))
    bar.close()
    return out


def evaluate_uncertainty(pairs, out, rows, mc, model_samples, seed=HELD_OUT_SEED):
    """Calibration of the IoU distribution against Monte-Carlo truth on ``rows`` (σ > 0). Per-pair arrays + means."""
    overlap = out["overlap"][rows]
    forecast = model_iou_samples(overlap, model_samples)
    truth = mc["iou"]
    coverage = interval_coverage(forecast, truth)
    pit = randomised_pit(forecast, truth, _stream(seed, "pit"))
    pit_cover = pit_coverage(pit)
    crps_model = crps_from_samples(forecast, truth)
    crps_oracle = oracle_crps(truth)
    iou0 = exact_overlap(pairs.a[rows], pairs.b[rows], assume_valid=True).iou
    crps_static = np.mean(np.abs(truth - iou0[:, None]), axis=1)  # a point forecast ignoring σ
    mc_points = np.stack([mc["cover_a"].T, mc["cover_b"].T], axis=-1)  # (m, n, 2)
    nll_mc = -overlap.log_prob(mc_points).mean(axis=0)
    degenerate = np.ptp(truth, axis=1) <= 1e-9
    per_pair = {"coverage": coverage, "pit_coverage": pit_cover, "crps_model": crps_model,
                "crps_oracle": crps_oracle, "crps_static": crps_static, "nll_mc": nll_mc,
                "iou_mean_error": np.abs(out["iou_mean"][rows] - truth.mean(axis=1)),
                "degenerate": degenerate}
    varied = ~degenerate
    summary = {
        "n": len(rows), "mc_samples": int(truth.shape[1]), "model_samples": int(model_samples),
        "n_nondegenerate": int(varied.sum()),
        "interval_coverage": float(coverage.mean()),
        "interval_coverage_nondegenerate": float(coverage[varied].mean()) if varied.any() else None,
        "pit_coverage": float(pit_cover.mean()),
        "pit_coverage_nondegenerate": float(pit_cover[varied].mean()) if varied.any() else None,
        "pit_histogram": np.histogram(pit.ravel(), bins=10, range=(0.0, 1.0))[0].tolist(),
        "crps_model": float(crps_model.mean()), "crps_oracle": float(crps_oracle.mean()),
        "crps_static": float(crps_static.mean()),
        "nll_mc": float(nll_mc.mean()),
        "iou_mae_vs_mc_mean": float(per_pair["iou_mean_error"].mean()),
    }
    return summary, per_pair


def evaluate_matching(model, pool, n_groups, seed=HELD_OUT_SEED):
    """Best-match agreement on the synthetic matching set (σ = 0)."""
    groups = matching_set(pool, n_groups, seed)
    out = predict(model, groups.a, groups.b, 0.0)
    exact = exact_overlap(groups.a, groups.b).iou
    result = best_match_agreement(groups.group, exact, out["iou_mean"])
    exact_best_role = groups.role[result.pop("_exact_best")]
    predicted_best_role = groups.role[result.pop("_predicted_best")]
    result.pop("_used_groups")
    result["candidates_per_group"] = len(CANDIDATE_ROLES)
    result["exact_best_roles"] = {name: int(np.sum(exact_best_role == code))
                                  for code, name in enumerate(CANDIDATE_ROLES)}
    result["mismatch_predicted_roles"] = {
        name: int(np.sum((predicted_best_role == code) & (predicted_best_role != exact_best_role)))
        for code, name in enumerate(CANDIDATE_ROLES)}
    result["iou_mae"] = mean_absolute_error(out["iou_mean"], exact)
    return result


def evaluate_real_layers(model, input_spec, reference_spec, search_distance_m, label, progress=True):
    """Best-match agreement with exact on two real layers, through the plugin's own pair path.

    ``*_spec``: (path, layer name, name field or None). Returns the summary dict.
    """
    from ..pairs import iter_pair_chunks

    started = time.perf_counter()
    geoms_a, crs_a, names_a = read_layer(*input_spec)
    geoms_b, crs_b, names_b = read_layer(*reference_spec)
    lonlat_a, lonlat_b = layer_to_lonlat(geoms_a, crs_a), layer_to_lonlat(geoms_b, crs_b)
    index_a, index_b, exact, predicted = [], [], [], []
    bar = _progress(desc=f"{label}: candidate chunks", disable=not progress)
    for chunk in iter_pair_chunks(lonlat_a, lonlat_b, search_distance_m):
        out = predict(model, chunk.frames.a, chunk.frames.b, 0.0)
        exact.append(exact_overlap(chunk.frames.a, chunk.frames.b, assume_valid=True).iou)
        predicted.append(out["iou_mean"])
        index_a.append(chunk.index_a)
        index_b.append(chunk.index_b)
        bar.update(1)
    bar.close()
    index_a, index_b = np.concatenate(index_a), np.concatenate(index_b)
    exact, predicted = np.concatenate(exact), np.concatenate(predicted)
    result = best_match_agreement(index_a, exact, predicted)
    result.pop("_used_groups")
    exact_best, predicted_best = result.pop("_exact_best"), result.pop("_predicted_best")
    wrong = np.flatnonzero(exact_best != predicted_best)
    result.update({
        "label": label, "input": f"{Path(input_spec[0]).name}:{input_spec[1]} ({crs_a})",
        "reference": f"{Path(reference_spec[0]).name}:{reference_spec[1]} ({crs_b})",
        "inputs": len(geoms_a), "references": len(geoms_b), "candidate_pairs": len(exact),
        "inputs_without_candidates": int(len(geoms_a) - result["groups"]),
        "search_distance_m": search_distance_m, "iou_mae": mean_absolute_error(predicted, exact),
        "seconds": round(time.perf_counter() - started, 1),
        "examples_of_mismatch": [
            {"input": _name(names_a, index_a[exact_best[i]]),
             "exact_best": _name(names_b, index_b[exact_best[i]]),
             "exact_best_iou": float(exact[exact_best[i]]),
             "exact_best_predicted_iou": float(predicted[exact_best[i]]),
             "predicted_best": _name(names_b, index_b[predicted_best[i]]),
             "predicted_best_iou": float(predicted[predicted_best[i]]),
             "predicted_best_exact_iou": float(exact[predicted_best[i]])}
            for i in wrong[:10]],
    })
    return result


def _name(names, index):
    return str(names[index]) if names is not None else f"feature {int(index)}"


def _training_rows(n, seed, full_n):
    """The first ``n`` rows of the cached training arrays of ``full_n`` pairs (seed ``seed``) or, without that
    cache, ``train.dataset(n, seed)`` (generated and cached)."""
    from . import train as T
    from .synthetic import recipe_hash

    cached = T.CACHE / f"pairs_{full_n}_{seed}_{recipe_hash()[:12]}_{T._encoding_hash()}.npz"
    if full_n and full_n >= n and cached.is_file():
        arrays = T.dataset(full_n, seed)
        return {key: value[:n] for key, value in arrays.items()}, f"first {n:,} of the cached {full_n:,} (seed {seed})"
    return T.dataset(n, seed), f"{n:,} pairs (seed {seed})"


def convergence_across_seeds(config, n_seeds, n_pairs, n_validation, epochs, progress=True):
    """Final validation NLL of ``n_seeds`` short trainings (seeds 11, 12, ...) of the evaluated architecture."""
    from . import train as T

    training = config.get("training", {})
    network = config["network"]
    train, train_source = _training_rows(n_pairs, training.get("train_seed", T.DEFAULTS["seed"]),
                                         training.get("train_pairs", 0))
    validation, validation_source = _training_rows(
        n_validation, training.get("validation_seed", T.DEFAULTS["validation_seed"]),
        training.get("validation_pairs", 0))
    seeds = list(range(CONVERGENCE_SEEDS[0], CONVERGENCE_SEEDS[0] + n_seeds))
    runs = []
    for seed in _progress(seeds, desc="convergence seeds", disable=not progress):
        started = time.perf_counter()
        _, history, _, _ = T.fit(
            train, validation, epochs=epochs, batch_size=training.get("batch_size", T.DEFAULTS["batch_size"]),
            learning_rate=training.get("learning_rate", T.DEFAULTS["learning_rate"]), seed=seed,
            hidden=tuple(network["hidden"]), activation=network["activation"],
            components=network["overlap_components"], verbose=0)
        values = np.concatenate([np.asarray(v, float) for v in history.values()])
        runs.append({"seed": seed, "final_val_loss": history["val_loss"][-1],
                     "final_val_overlap_loss": history.get("val_overlap_loss", [None])[-1],
                     "final_val_centroid_loss": history.get("val_centroid_loss", [None])[-1],
                     "nan": bool(not np.all(np.isfinite(values))),
                     "seconds": round(time.perf_counter() - started, 1)})
    return summarise_seed_runs(runs) | {"train": train_source, "validation": validation_source,
                                        "epochs": epochs}


def summarise_seed_runs(runs):
    """Spread (max - min) / |mean| of the final validation NLLs, and NaN count, of convergence runs."""
    final = np.asarray([r["final_val_loss"] for r in runs], float)
    overlap = np.asarray([r["final_val_overlap_loss"] if r["final_val_overlap_loss"] is not None else np.nan
                          for r in runs], float)
    finite = np.isfinite(final)

    def spread(values):
        values = values[np.isfinite(values)]
        if not values.size or values.mean() == 0:
            return None
        return float((values.max() - values.min()) / abs(values.mean()))

    return {"runs": runs, "seeds": [r["seed"] for r in runs],
            "nan_runs": int(sum(r["nan"] for r in runs) + np.sum(~finite & ~np.array([r["nan"] for r in runs]))),
            "spread": spread(final), "spread_overlap": spread(overlap),
            "range": float(np.ptp(final[finite])) if finite.any() else None,
            "mean": float(final[finite].mean()) if finite.any() else None}


# ==========================================================================
# Orchestration.
# ==========================================================================
def evaluate(model_path=None, pairs=DEFAULTS["pairs"], mc_pairs=DEFAULTS["mc_pairs"],
             mc_samples=DEFAULTS["mc_samples"], model_samples=DEFAULTS["model_samples"], groups=DEFAULTS["groups"],
             seeds=DEFAULTS["seeds"], seed_pairs=DEFAULTS["seed_pairs"],
             seed_validation_pairs=DEFAULTS["seed_validation_pairs"], seed_epochs=DEFAULTS["seed_epochs"],
             real_layers=True, workers=DEFAULTS["workers"], progress=True, cache=CACHE):
    """Run every step; returns the results dict that :func:`render_card` turns into the model card."""
    from .synthetic import KIND_NAMES, RECIPE, generator_fingerprint, recipe_hash

    started = time.perf_counter()
    model = load_model(model_path)
    config = model.config
    results = {"model": _model_summary(model), "settings": {
        "held_out_seed": HELD_OUT_SEED, "pairs": pairs, "mc_pairs": mc_pairs, "mc_samples": mc_samples,
        "model_samples": model_samples, "groups": groups, "seeds": seeds, "seed_pairs": seed_pairs,
        "seed_validation_pairs": seed_validation_pairs, "seed_epochs": seed_epochs, "interval_level": INTERVAL_LEVEL,
        "tie_tolerance": TIE_TOLERANCE}}
    step = time.perf_counter()
    data = held_out_pairs(pairs, HELD_OUT_SEED, workers=workers, progress=progress, cache=cache)
    results["data"] = {"recipe_hash": recipe_hash(), "recipe_version": RECIPE["version"],
                       "generator_sha256": generator_fingerprint(), "pairs": len(data),
                       "seed": HELD_OUT_SEED, "seconds": round(time.perf_counter() - step, 1),
                       "kinds": {name: int(np.sum(data.kind == code)) for code, name in enumerate(KIND_NAMES)},
                       "sigma0": int(np.sum(data.sigma == 0))}

    out = predict(model, data.a, data.b, data.sigma)
    results["timing"] = {"pairs": len(data), "predict_frames_seconds": round(out["predict_seconds"], 2),
                         "predict_frames_pairs_per_s": len(data) / max(out["predict_seconds"], 1e-9),
                         "summarise_seconds": round(out["summary_seconds"], 2),
                         "predict_and_summarise_pairs_per_s":
                             len(data) / max(out["predict_seconds"] + out["summary_seconds"], 1e-9),
                         "machine": _machine()}
    sigma0 = data.sigma == 0
    results["sigma0"] = evaluate_sigma0(data, out, sigma0)
    nll = overlap_nll(out["overlap"], data)
    positive = ~sigma0
    results["sigma_positive"] = {"n": int(positive.sum()), "nll_mean": float(nll[positive].mean()),
                                 "nll_median": float(np.median(nll[positive])),
                                 "nll_sigma0_mean": float(nll[sigma0].mean()),
                                 "iou_mae_vs_label": mean_absolute_error(out["iou_mean"][positive], data.iou[positive])}

    mean_error, mode_error, has_centroid = centroid_errors(data.subset(sigma0), out["centroid"][np.flatnonzero(sigma0)])
    ce_mean, ce_mode = 100 * mean_error[has_centroid], 100 * mode_error[has_centroid]
    results["centroid"] = {"n": int(has_centroid.sum()),
                           "mean_median_pct": float(np.median(ce_mean)), "mean_p90_pct": float(np.quantile(ce_mean, 0.9)),
                           "mode_median_pct": float(np.median(ce_mode)), "mode_p90_pct": float(np.quantile(ce_mode, 0.9))}

    candidates = np.flatnonzero(positive)
    rows = np.sort(_stream(HELD_OUT_SEED, "mc_subset").choice(candidates, min(mc_pairs, candidates.size),
                                                                replace=False))
    step = time.perf_counter()
    mc = monte_carlo_truth(data, rows, mc_samples, progress=progress)
    uncertainty, per_pair = evaluate_uncertainty(data, out, rows, mc, model_samples)
    uncertainty["seconds"] = round(time.perf_counter() - step, 1)
    results["uncertainty"] = uncertainty

    step = time.perf_counter()
    results["matching"] = evaluate_matching(model, data, groups)
    results["matching"]["seconds"] = round(time.perf_counter() - step, 1)

    results["tables"] = _tables(data, out, nll, sigma0, mean_error, has_centroid, rows, per_pair)

    results["real_layers"] = {}
    if real_layers:
        specs = {
            "buildings": ((SAMPLE_DIR / "buildings_mapping.gpkg", "buildings_mapping", "map_id"),
                          (SAMPLE_DIR / "buildings_cadastre.gpkg", "buildings_cadastre", "building_id"),
                          BUILDING_SEARCH_M, "building footprints"),
            "admin": ((WORLD_MAP, "states_provinces", "name"), (WORLD_MAP, "countries", "NAME"),
                      ADMIN_SEARCH_M, "administrative units"),
        }
        for key, (input_spec, reference_spec, distance, label) in specs.items():
            if not Path(input_spec[0]).is_file() or not Path(reference_spec[0]).is_file():
                results["real_layers"][key] = {"label": label, "skipped": f"{input_spec[0]} not found"}
                continue
            results["real_layers"][key] = evaluate_real_layers(model, input_spec, reference_spec, distance, label,
                                                               progress)

    results["seeds"] = None
    if seeds:
        step = time.perf_counter()
        results["seeds"] = convergence_across_seeds(config, seeds, seed_pairs, seed_validation_pairs, seed_epochs,
                                                    progress)
        results["seeds"]["seconds"] = round(time.perf_counter() - step, 1)

    results["targets"] = _target_rows(results)
    results["runtime_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _tables(data, out, nll, sigma0, centroid_error, has_centroid, rows, per_pair):
    """Error tables by pair kind, σ bucket and vertex count (dicts of row lists)."""
    from .synthetic import KIND_NAMES

    n = len(data)
    iou_error = np.abs(out["iou_mean"] - data.iou)
    cover_error = 0.5 * (np.abs(out["cover_a_mean"] - data.cover_a) + np.abs(out["cover_b_mean"] - data.cover_b))
    positive = ~sigma0
    centroid_all = np.full(n, np.nan)
    centroid_all[np.flatnonzero(sigma0)] = 100 * centroid_error
    has_all = np.zeros(n, bool)
    has_all[np.flatnonzero(sigma0)] = has_centroid
    in_mc = np.zeros(n, bool)
    in_mc[rows] = True

    def spread_mc(name):
        values = np.full(n, np.nan)
        values[rows] = per_pair[name]
        return values, in_mc

    columns = {
        "iou_mae_sigma0": (iou_error, sigma0),
        "cover_mae_sigma0": (cover_error, sigma0),
        "iou_mae_sigma_pos_vs_label": (iou_error, positive),
        "nll_sigma_pos": (nll, positive),
        "median_centroid_pct": (centroid_all, has_all),
        "count_mc": (np.ones(n), in_mc),
        "mc_iou_mae_vs_mean": spread_mc("iou_mean_error"),
        "mc_coverage": spread_mc("coverage"),
        "mc_pit_coverage": spread_mc("pit_coverage"),
        "mc_crps_model": spread_mc("crps_model"),
        "mc_crps_oracle": spread_mc("crps_oracle"),
    }
    vertices = shapely.get_num_coordinates(data.a) + shapely.get_num_coordinates(data.b)
    tables = {
        "kind": grouped_means(data.kind, list(KIND_NAMES), columns),
        "sigma": grouped_means(sigma_bucket_codes(data.sigma), sigma_bucket_labels(), columns),
        "vertices": grouped_means(bucket_codes(vertices, VERTEX_EDGES), bucket_labels(VERTEX_EDGES), columns),
    }
    return tables


def _target_rows(results):
    seeds = results.get("seeds") or {}
    real = results.get("real_layers", {})
    values = {
        "iou_mae_sigma0": results["sigma0"]["iou_mae"],
        "matching_agreement": results["matching"]["agreement"],
        "interval_coverage": results["uncertainty"]["interval_coverage"],
        "pit_coverage": results["uncertainty"]["pit_coverage"],
        "centroid_median_pct": results["centroid"]["mean_median_pct"],
        "seed_nan_runs": seeds.get("nan_runs"),
        "seed_spread": seeds.get("spread"),
        "buildings_agreement": real.get("buildings", {}).get("agreement"),
        "admin_agreement": real.get("admin", {}).get("agreement"),
    }
    return [{"key": key, "metric": TARGETS[key][0], "value": values[key], "target": _target_text(key),
             "status": target_status(key, values[key])} for key in TARGETS]


def _target_text(key):
    _, kind, bound = TARGETS[key]
    if kind == "max":
        return f"≤ {_format_value(key, bound)}"
    if kind == "min":
        return f"≥ {_format_value(key, bound)}"
    return f"[{_format_value(key, bound[0])}, {_format_value(key, bound[1])}]"


def _model_summary(model):
    config = model.config
    weights_shapes = {name: tuple(np.shape(w)) for name, w in _weights_of(model).items()}
    parameters = int(sum(int(np.prod(s)) for name, s in weights_shapes.items() if name not in ("input_mean",
                                                                                              "input_std")))
    return {"path": _display_path(model.path), "file": Path(model.path).name, "network": config["network"],
            "encoding": config.get("encoding", {}), "training": {k: v for k, v in config.get("training", {}).items()
                                                                 if k != "history"},
            "final_history": {k: v[-1] for k, v in config.get("training", {}).get("history", {}).items() if v},
            "weights_sha256": config.get("weights_sha256"), "parameters": parameters}


def _weights_of(model):
    from ..network import load_model_file

    return load_model_file(model.path)[1]


def _machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, **kwargs)


# ==========================================================================
# The model card.
# ==========================================================================
def _display_path(path):
    try:
        return str(Path(path).resolve().relative_to(PACKAGE_ROOT))
    except ValueError:
        return str(path)


def _fmt_number(x):
    return f"{x:g}"


def _format_value(key, value):
    if value is None:
        return "—"
    if key in ("matching_agreement", "buildings_agreement", "admin_agreement"):
        return f"{100 * value:.2f} %"
    if key in ("interval_coverage", "pit_coverage"):
        return f"{value:.3f}"
    if key == "centroid_median_pct":
        return f"{value:.3f} %"
    if key == "seed_spread":
        return f"{100 * value:.1f} %"
    if key == "seed_nan_runs":
        return f"{int(value)}"
    return f"{value:.4f}"


def _cell(value, digits=4):
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def _markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _architecture_choice():
    if ARCHITECTURE_RESULTS.is_file():
        return ARCHITECTURE_RESULTS.read_text(encoding="utf-8").strip()
    return "Not measured yet (`model/training/architecture_results.md` does not exist)."


def render_card(results):
    """The model card (Markdown) for a results dict of :func:`evaluate`."""
    from .synthetic import RECIPE

    m = results["model"]
    net, training = m["network"], m["training"]
    data, s0, sp, unc = results["data"], results["sigma0"], results["sigma_positive"], results["uncertainty"]
    cen, match, timing = results["centroid"], results["matching"], results["timing"]
    settings = results["settings"]
    recipe_note = ""
    if training.get("recipe_hash") and training["recipe_hash"] != data["recipe_hash"]:
        recipe_note = (f"\n\n**Warning:** the model was trained on recipe `{training['recipe_hash'][:12]}`, "
                       f"the held-out set is drawn from recipe `{data['recipe_hash'][:12]}`.")
    kinds = ", ".join(f"{name} {100 * share:.0f} %" for name, share in RECIPE["kind_shares"].items())
    sizes = ", ".join(f"{cls} {lo:g}–{hi:g} m" for cls, (lo, hi) in RECIPE["size_m"].items())
    sigma = RECIPE["sigma"]
    out = []
    out.append("# Model card: overlap_relevance overlap model\n")
    out.append(f"Generated by `make evaluate` (`python -m overlap_relevance.model.training.evaluate`) for "
               f"`{_display_path(m['path'])}` (weights SHA-256 `{(m['weights_sha256'] or '')[:16]}…`). "
               f"Do not edit by hand: rerun `make evaluate`.\n")

    out.append("## Model summary\n")
    out.append(
        "For a pair of polygons (A, B) and a positional uncertainty σ, the model predicts the joint distribution "
        "of the two coverage fractions (cover_a = |A∩B|/|A|, cover_b = |A∩B|/|B|) as a Gaussian mixture, from "
        "which the IoU distribution follows (IoU = ca·cb / (ca + cb − ca·cb)), and the distribution of the "
        "intersection centroid (a second Gaussian mixture, in the pair's local frame, metres).\n\n"
        "**σ** is the standard deviation, per axis and in metres, of a rigid translation of B relative to A: "
        "d ~ N(0, σ²I₂). σ = 0 means the positions are taken as exact; the distributions are then those of the "
        "overlap of the (simplified) model geometries, sharpened around the exact values.\n")

    out.append("## Intended use and limitations\n")
    out.append(
        "* Intended use: ranking and thresholding candidate matches between two polygon layers (building "
        "footprints, parcels, administrative units) in QGIS or Python, with an honest spread when the sources "
        "are only known to within σ metres.\n"
        "* Only a **rigid translation** is modelled. Rotation, scale errors and independent vertex noise of the "
        "sources are not part of σ (they are part of the training shapes, as differences between the sources).\n"
        f"* Training covered σ = 0 and σ log-uniform in [{sigma['log_uniform_m'][0]:g}, {sigma['log_uniform_m'][1]:g}] m "
        f"and feature sizes ({sizes}); outside these ranges the model extrapolates.\n"
        f"* Geometries with more than {m['encoding'].get('max_model_vertices', '?')} vertices are simplified before "
        "the network sees them; at σ = 0 the prediction is the overlap of the simplified shapes plus a learned "
        "correction, so very detailed shapes can be off by the simplification error.\n"
        "* Trained on synthetic pairs only; the real-layer checks below are the evidence for transfer. When "
        "exact numbers matter at σ = 0, use the exact overlap algorithm instead.\n")

    out.append("## Training data\n")
    out.append(
        f"Synthetic pairs from `model/training/synthetic.py`, recipe version {RECIPE['version']}, recipe hash "
        f"`{training.get('recipe_hash', '?')}`. Pair kinds: {kinds}. σ = 0 for "
        f"{100 * sigma['zero_share']:.0f} % of pairs, otherwise log-uniform in "
        f"[{sigma['log_uniform_m'][0]:g}, {sigma['log_uniform_m'][1]:g}] m; labels after one displacement "
        f"d ~ N(0, σ²I₂) of B. Sizes (longer side): {sizes}. Each side is delivered in its own CRS and brought "
        f"back through the plugin's frame code.\n\n"
        f"Training set: {training.get('train_pairs', '?'):,} pairs (seed {training.get('train_seed', '?')}); "
        f"validation: {training.get('validation_pairs', '?'):,} pairs (seed {training.get('validation_seed', '?')}); "
        f"held-out evaluation: {data['pairs']:,} pairs (seed {data['seed']}), recipe `{data['recipe_hash'][:12]}`."
        f"{recipe_note}\n")

    out.append("## Architecture\n")
    inputs = net.get("inputs", [])
    out.append(
        f"{len(inputs)} pair descriptors (overlap of the model geometries at zero displacement, areas and shape "
        f"measures relative to the pair scale, σ relative to the pair scale and the features, gap and boundary "
        f"rates; see `model/encoding.py`) → standardisation → MLP with hidden layers "
        f"{' × '.join(str(h) for h in net.get('hidden', []))} ({net.get('activation')}) → two mixture-density "
        f"heads: overlap, a {net.get('overlap_components')}-component 2D Gaussian mixture over (cover_a, cover_b) "
        f"whose component means are offsets from the descriptors {', '.join(net.get('residual_means', []))}; "
        f"centroid, a {net.get('centroid_components')}-component 2D Gaussian mixture in units of the pair scale "
        f"around a reference point. {m['parameters']:,} parameters. Inference is NumPy only "
        f"(`model/network.py`).\n\nDescriptors: `{'`, `'.join(inputs)}`.\n")

    out.append("## Architecture choice\n")
    out.append("<!-- Filled from model/training/architecture_results.md by make evaluate. -->\n")
    out.append(_architecture_choice() + "\n")

    out.append("## Training\n")
    final = m["final_history"]
    out.append(_markdown_table(["Item", "Value"], [
        ["Epochs × batch size", f"{training.get('epochs', '?')} × {training.get('batch_size', '?')}"],
        ["Learning rate (cosine decay)", training.get("learning_rate", "?")],
        ["Data generation", f"{training.get('data_seconds', '?')} s"],
        ["Training (fit)", f"{training.get('fit_seconds', '?')} s"],
        ["Machine", training.get("machine", "?")],
        ["Final training loss", _cell(final.get("loss"))],
        ["Final validation loss (overlap + centroid NLL)", _cell(final.get("val_loss"))],
        ["Final validation overlap NLL", _cell(final.get("val_overlap_loss"))],
        ["Final validation centroid NLL", _cell(final.get("val_centroid_loss"))],
    ]) + "\n")

    out.append("## Metrics against targets\n")
    out.append(f"Held-out synthetic set: {data['pairs']:,} pairs, seed {data['seed']} ({data['sigma0']:,} with σ = 0). "
               "Targets were fixed before measuring; nothing was tuned on this set.\n")
    out.append(_markdown_table(["Metric", "Measured", "Target", "Status"], [
        [row["metric"], _format_value(row["key"], row["value"]), row["target"], row["status"]]
        for row in results["targets"]]) + "\n")

    out.append("Reading the σ = 0 rows: the descriptors already hold the exact overlap of the model geometries "
               "(`cover_a0`, `cover_b0`, `iou0`) and the overlap head predicts offsets from it, and the centroid head "
               "is centred on the model geometries' overlap centroid; so at σ = 0 these rows mainly check that this "
               "path is intact and what simplifying shapes with many vertices costs. The learned part is the "
               "σ > 0 distribution, checked against Monte-Carlo truth.\n")
    out.append("### Further measurements\n")
    seeds = results.get("seeds")
    extra = [
        ["σ = 0: MAE of mean cover_a / cover_b", f"{s0['cover_a_mae']:.4f} / {s0['cover_b_mae']:.4f}",
         f"{s0['n']:,} pairs"],
        ["σ = 0: largest IoU error", f"{s0['iou_max_error']:.4f}", ""],
        ["σ > 0: NLL of the overlap mixture at the labels, mean / median",
         f"{sp['nll_mean']:.3f} / {sp['nll_median']:.3f} nats", f"{sp['n']:,} pairs; density over (cover_a, cover_b)"],
        ["σ = 0: NLL at the labels, mean", f"{sp['nll_sigma0_mean']:.3f} nats", ""],
        ["σ > 0: NLL averaged over the Monte-Carlo samples", f"{unc['nll_mc']:.3f} nats", f"{unc['n']:,} pairs"],
        ["σ > 0: MAE of mean IoU vs Monte-Carlo mean", f"{unc['iou_mae_vs_mc_mean']:.4f}", ""],
        ["σ > 0: MAE of mean IoU vs the one-displacement label", f"{sp['iou_mae_vs_label']:.4f}",
         "includes the label's own randomness"],
        ["σ > 0: 90 % interval coverage, pairs whose MC IoU varies",
         _cell(unc["interval_coverage_nondegenerate"], 3), f"{unc['n_nondegenerate']:,} of {unc['n']:,} pairs"],
        ["σ > 0: PIT coverage, pairs whose MC IoU varies", _cell(unc["pit_coverage_nondegenerate"], 3), ""],
        ["σ > 0: CRPS of the IoU distribution, model / oracle",
         f"{unc['crps_model']:.4f} / {unc['crps_oracle']:.4f}",
         "oracle: split-half CRPS of the Monte-Carlo sample against itself"],
        ["σ > 0: CRPS of a point forecast at the undisplaced IoU", f"{unc['crps_static']:.4f}",
         "baseline that ignores σ"],
        ["σ = 0: centroid error via the mixture mean, median / p90",
         f"{cen['mean_median_pct']:.3f} % / {cen['mean_p90_pct']:.3f} %", f"{cen['n']:,} overlapping pairs"],
        ["σ = 0: centroid error via the mixture mode, median / p90",
         f"{cen['mode_median_pct']:.3f} % / {cen['mode_p90_pct']:.3f} %", ""],
        ["Matching set: MAE of mean IoU over all candidates", f"{match['iou_mae']:.4f}",
         f"{match['used']:,} groups used of {match['groups']:,}"],
        ["Matching set: mean exact-IoU regret of the predicted best", f"{match['mean_regret']:.5f}", ""],
    ]
    out.append(_markdown_table(["Measurement", "Value", "Note"], extra) + "\n")
    out.append(f"PIT histogram (10 bins, all Monte-Carlo samples; flat when calibrated): "
               f"{', '.join(str(c) for c in unc['pit_histogram'])}.\n")

    out.append("### Throughput\n")
    out.append(f"`OverlapModel.predict_frames` on the {timing['pairs']:,} held-out pairs (descriptors, model "
               f"geometry simplification and the network): {timing['predict_frames_pairs_per_s']:,.0f} pairs/s "
               f"({timing['predict_frames_seconds']} s); with `summarise_overlap` (IoU mean/SD by QMC): "
               f"{timing['predict_and_summarise_pairs_per_s']:,.0f} pairs/s. Machine: {timing['machine']} "
               f"(single process; the machine may have been shared with other jobs).\n")

    out.append(_render_tables(results["tables"]))
    out.append(_render_matching(match, settings))
    out.append(_render_real(results.get("real_layers", {})))
    out.append(_render_seeds(seeds))

    out.append("## How the metrics are computed\n")
    out.append(
        f"* Held-out set: `generate_pairs({settings['pairs']}, seed={settings['held_out_seed']})` (training seed 1, "
        "validation seed 2). Predicted mean IoU and coverages are `summarise_overlap` of the overlap mixture "
        "(256 scrambled-Halton points).\n"
        f"* Monte-Carlo truth: {settings['mc_pairs']:,} pairs with σ > 0 drawn with a seeded generator, "
        f"{settings['mc_samples']} displacements each (`monte_carlo_overlap`). The model's IoU distribution is "
        f"represented by {settings['model_samples']} quasi-random points of the mixture mapped to IoU. Interval "
        "coverage: share of Monte-Carlo IoU samples inside the model's closed [5 %, 95 %] quantile interval, "
        "averaged over pairs (an atom, e.g. IoU = 0 for every displacement, predicted as an atom counts as "
        "covered). PIT coverage: share of randomised PIT values (u = F(y−) + V·(F(y) − F(y−))) in [0.05, 0.95]. "
        "CRPS: exact CRPS of the empirical model distribution averaged over the Monte-Carlo samples; oracle: the "
        "two halves of the Monte-Carlo sample scoring each other.\n"
        "* Centroid error: distance between the centroid mixture's mean (target) or mode and the exact "
        "intersection centroid, divided by the pair scale (larger side of the bounding box of A ∪ B), for σ = 0 "
        "pairs whose intersection has area.\n"
        "* Best match: per input feature, the candidate with the highest predicted mean IoU against the one with "
        f"the highest exact IoU; inputs whose exact best IoU is 0, or whose two best exact IoUs tie within "
        f"{settings['tie_tolerance']:g}, are left out.\n"
        "* Seeds: short trainings of the evaluated architecture on the first pairs of the training data, seeds "
        "11–15; spread = (max − min) / |mean| of the final validation loss (overlap + centroid NLL).\n")

    out.append("## Reproduction\n")
    out.append("```sh\nmake train      # writes model/overlap_mdn.npz and model/overlap_mdn.keras (seeded)\n"
               "make evaluate   # writes model/MODEL_CARD.md and model/evaluation.json\n```\n\n"
               f"Options: `python -m overlap_relevance.model.training.evaluate --help` (e.g. `--seeds 0` skips the "
               f"convergence runs, `--model PATH` evaluates another model file). Evaluation runtime: "
               f"{results['runtime_seconds']:.0f} s.\n")
    return "\n".join(out)


_TABLE_COLUMNS = [
    ("n", "pairs", 0), ("iou_mae_sigma0", "IoU MAE σ=0", 4), ("cover_mae_sigma0", "cover MAE σ=0", 4),
    ("median_centroid_pct", "centroid median % σ=0", 3), ("iou_mae_sigma_pos_vs_label", "IoU MAE σ>0 (label)", 4),
    ("nll_sigma_pos", "NLL σ>0", 2), ("count_mc", "MC pairs", 0), ("mc_iou_mae_vs_mean", "IoU MAE vs MC mean", 4),
    ("mc_coverage", "90 % coverage", 3), ("mc_pit_coverage", "PIT coverage", 3),
    ("mc_crps_model", "CRPS model", 4), ("mc_crps_oracle", "CRPS oracle", 4),
]


def _render_tables(tables):
    titles = {"kind": "By pair kind", "sigma": "By σ bucket", "vertices": "By vertex count (A + B)"}
    out = ["## Error tables\n", "MAE against the exact labels; the MC columns use the Monte-Carlo subset.\n"]
    for key, title in titles.items():
        rows = [[row["group"]] + [_cell(row[name], digits) if name not in ("n", "count_mc") else _cell(row[name])
                                  for name, _, digits in _TABLE_COLUMNS] for row in tables[key]]
        out.append(f"### {title}\n")
        out.append(_markdown_table(["group"] + [label for _, label, _ in _TABLE_COLUMNS], rows) + "\n")
    return "\n".join(out)


def _render_matching(match, settings):
    roles = ", ".join(f"{name} {count:,}" for name, count in match["exact_best_roles"].items())
    wrong = ", ".join(f"{name} {count:,}" for name, count in match["mismatch_predicted_roles"].items() if count)
    return (
        "## Synthetic matching set\n\n"
        f"{match['groups']:,} groups of {match['candidates_per_group']} candidates, built from held-out "
        "`same_object` pairs (`evaluate.matching_set`): the true counterpart B, B shifted by 5–50 % of A's size, "
        "a touching or near neighbour, a partial overlap, a shape inside A or around it, and a disjoint shape "
        "(donor shapes of similar size from other held-out pairs, rotated and rescaled). "
        f"{match['used']:,} groups used ({match['excluded_zero']:,} with exact best IoU 0 and "
        f"{match['excluded_tie']:,} ties left out); agreement {100 * match['agreement']:.2f} % "
        f"({match['mismatches']:,} mismatches); on the {match['close_calls']:,} close calls (two best exact IoUs "
        f"within {match['close_margin']:g}): {_percent(match['close_call_agreement'])}. Exact best by role: {roles}. "
        f"Predicted best in mismatches: {wrong or 'none'}.\n"
    )


def _percent(value):
    return "—" if value is None else f"{100 * value:.2f} %"


def _render_real(real):
    out = ["## Real layers\n",
           ("Layers the training recipe never saw, through the plugin's path (`layer_to_lonlat` → "
            "`iter_pair_chunks` → `predict_frames` + `summarise_overlap`, exact from `exact_overlap` on the same "
            "frames), σ = 0. Best match = candidate with the highest IoU per input feature; inputs whose exact best "
            "IoU is 0 (or tied) are left out.\n")]
    rows = []
    for result in real.values():
        if "skipped" in result:
            rows.append([result["label"], "skipped", result["skipped"], "", "", "", "", "", ""])
            continue
        rows.append([result["label"], result["input"], result["reference"], f"{result['search_distance_m']:g} m",
                     f"{result['candidate_pairs']:,}", f"{result['used']:,} of {result['inputs']:,}",
                     f"{100 * result['agreement']:.2f} % ({result['mismatches']} wrong)",
                     (f"{_percent(result['close_call_agreement'])} of {result['close_calls']:,}"
                      if result["close_calls"] else "none"),
                     f"{result['iou_mae']:.4f}"])
    if not rows:
        return "\n".join(out + ["Not run.\n"])
    out.append(_markdown_table(["Layers", "Input", "Reference", "Search distance", "Candidate pairs",
                                "Inputs used", "Agreement", "Close calls", "IoU MAE"], rows) + "\n")
    for result in real.values():
        if result.get("examples_of_mismatch"):
            out.append(f"Mismatches ({result['label']}, first {len(result['examples_of_mismatch'])}):\n")
            out.append(_markdown_table(
                ["Input", "Exact best (IoU, predicted)", "Predicted best (predicted, exact IoU)"],
                [[e["input"], f"{e['exact_best']} ({e['exact_best_iou']:.3g}, {e['exact_best_predicted_iou']:.3g})",
                  f"{e['predicted_best']} ({e['predicted_best_iou']:.3g}, {e['predicted_best_exact_iou']:.3g})"]
                 for e in result["examples_of_mismatch"]]) + "\n")
    return "\n".join(out)


def _render_seeds(seeds):
    out = ["## Convergence across training seeds\n"]
    if not seeds:
        out.append("Not run (`--seeds 0`).\n")
        return "\n".join(out)
    out.append(f"Training data: {seeds['train']}; validation: {seeds['validation']}; {seeds['epochs']} epochs each, "
               f"architecture and optimiser settings of the evaluated model.\n")
    out.append(_markdown_table(["Seed", "Final val. loss", "Overlap NLL", "Centroid NLL", "NaN", "Seconds"], [
        [r["seed"], _cell(r["final_val_loss"]), _cell(r["final_val_overlap_loss"]), _cell(r["final_val_centroid_loss"]),
         "yes" if r["nan"] else "no", r["seconds"]] for r in seeds["runs"]]) + "\n")
    spread = "—" if seeds["spread"] is None else f"{100 * seeds['spread']:.1f} %"
    spread_overlap = "—" if seeds["spread_overlap"] is None else f"{100 * seeds['spread_overlap']:.1f} %"
    out.append(f"Spread (max − min) / |mean| of the final validation loss: {spread} (range {_cell(seeds['range'])} "
               f"nats); of the overlap NLL alone: {spread_overlap}.\n")
    return "\n".join(out)


# ==========================================================================
# Entry point.
# ==========================================================================
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_outputs(results, card_path, json_path):
    """Write the model card and the JSON results."""
    card_path, json_path = Path(card_path), Path(json_path)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=_json_default, allow_nan=True) + "\n",
                         encoding="utf-8")
    card_path.write_text(render_card(results), encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--pairs", type=int, default=DEFAULTS["pairs"], help="held-out pairs (seed 3)")
    parser.add_argument("--mc-pairs", type=int, default=DEFAULTS["mc_pairs"], help="σ > 0 pairs with Monte-Carlo truth")
    parser.add_argument("--mc-samples", type=int, default=DEFAULTS["mc_samples"], help="displacements per MC pair")
    parser.add_argument("--model-samples", type=int, default=DEFAULTS["model_samples"],
                        help="quasi-random points of the model's distribution per MC pair")
    parser.add_argument("--groups", type=int, default=DEFAULTS["groups"], help="synthetic best-match groups")
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"],
                        help="convergence runs over training seeds 11, 12, ... (0: skip; needs TensorFlow)")
    parser.add_argument("--seed-pairs", type=int, default=DEFAULTS["seed_pairs"])
    parser.add_argument("--seed-validation-pairs", type=int, default=DEFAULTS["seed_validation_pairs"])
    parser.add_argument("--seed-epochs", type=int, default=DEFAULTS["seed_epochs"])
    parser.add_argument("--no-real-layers", action="store_true", help="skip world_map.gpkg and the building sample")
    parser.add_argument("--workers", type=int, default=DEFAULTS["workers"], help="processes generating pairs")
    parser.add_argument("--card", type=Path, default=MODEL_DIR / "MODEL_CARD.md")
    parser.add_argument("--json", type=Path, default=MODEL_DIR / "evaluation.json")
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite the card from an existing --json (e.g. after architecture_results.md changed)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write build/evaluation-data/")
    args = parser.parse_args(argv)
    if args.card_only:
        results = json.loads(args.json.read_text(encoding="utf-8"))
        args.card.write_text(render_card(results), encoding="utf-8")
        print(f"Model card rewritten: {args.card}")
        return results
    results = evaluate(args.model, pairs=args.pairs, mc_pairs=args.mc_pairs, mc_samples=args.mc_samples,
                       model_samples=args.model_samples, groups=args.groups, seeds=args.seeds,
                       seed_pairs=args.seed_pairs, seed_validation_pairs=args.seed_validation_pairs,
                       seed_epochs=args.seed_epochs,
                       real_layers=not args.no_real_layers, workers=args.workers,
                       cache=None if args.no_cache else CACHE)
    write_outputs(results, args.card, args.json)
    print(f"Model card: {args.card}; results: {args.json} ({results['runtime_seconds']:.0f} s)")
    for row in results["targets"]:
        print(f"  {row['metric']}: {_format_value(row['key'], row['value'])} (target {row['target']}) {row['status']}")
    return results


if __name__ == "__main__":
    main()
