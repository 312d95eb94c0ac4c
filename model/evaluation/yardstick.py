"""The yardstick: the model against the exact samplers one would write instead, at equal cost.

``python -m overlap_relevance.model.evaluation.yardstick`` writes ``model/yardstick.json``,
``model/yardstick.md`` and ``docs/yardstick.png``; ``make evaluate`` runs it too, and the model
card shows it (read from ``model/yardstick.json`` when the evaluation did not run it).

* **Data** (held out, σ > 0 only): synthetic pairs of seed :data:`.heldout.HELD_OUT_SEED`, as many
  for every pair kind × σ band; candidate pairs of the bundled building sample at σ = 0.5, 2 and
  5 m and of ``world_map.gpkg`` (states_provinces × countries) at σ = 1, 5 and 20 km, found and
  projected as the plugin does (candidates within max(search distance, 3σ)).
* **Truth**: plain Monte Carlo, ``truth_draws`` displacements per pair, from :data:`TRUTH_SEED`.
* **Contestants** (:mod:`.samplers`): the model; randomised QMC and plain MC with k = 1 … 256
  exact overlays per pair; the boundary-sweep surrogate the model reads (:mod:`..sweep`) on its own
  at 256 QMC points ("sweep"), and with 2 or 4 of those points overlaid exactly as control variates
  of its mean IoU and P ("sweep+CV-k"); the exact-kernel QMC-k, k = 8 … 1,024 (the same Sobol' shifts,
  the overlap at each from :mod:`..shift_overlap` without GEOS), alone ("exact-QMC-k") and with the exact
  expected overlap as a control variate ("exact-QMC-k+CV"). Each runs on all pairs of a data set
  at once and is timed in this process, the median of ``repeats`` runs: seconds per pair, and exact
  overlays per pair (the time of one batched A ∩ B overlay per pair, measured in the same run on the
  same pairs).
* **Measures**: MAE of the mean IoU and of P(IoU ≥ 0.5) against the truth's; CRPS against the
  truth draws; coverage of the central 90 % interval. From them the equivalent k (the largest k
  no more accurate than the model) and the speed ratio at equal accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..scoring import load_model, search_distances, summarise_overlap
from ..gdal_layer import read_layer
from .heldout import (
    ADMIN_SEARCH_M,
    BUILDING_SEARCH_M,
    CACHE,
    HELD_OUT_SEED,
    MODEL_DIR,
    PACKAGE_ROOT,
    SAMPLE_DIR,
    STREAMS,
    WORLD_MAP,
    held_out_pairs,
    monte_carlo_truth,
    progress_bar,
    random_stream,
)
from .metrics import (
    INTERVAL_LEVEL,
    SIGMA_EDGES,
    YARDSTICK_TARGETS,
    crps_from_samples,
    grouped_means,
    interval_coverage,
    oracle_crps,
    sigma_bucket_codes,
    sigma_bucket_labels,
    target_status,
)
from .samplers import EXACT_K_VALUES, K_VALUES, THRESHOLD, default_contestants, exact_iou

DEFAULTS = {"pairs": 600, "sample_pairs": 150, "world_pairs": 60, "truth_draws": 2048, "model_samples": 1024,
            "repeats": 3}
#: Root seed of the truth draws: not training's (1, 2), the held-out set's (3) or the convergence runs' (11-15).
TRUTH_SEED = 31
BUILDING_SIGMAS_M = (0.5, 2.0, 5.0)
#: world_map's units are 10-10,000 km across: σ of a few metres leaves their IoU unchanged.
WORLD_SIGMAS_M = (1000.0, 5000.0, 20000.0)
#: world_map pairs with more vertices (A + B) are left out, to bound the samplers' run time.
WORLD_MAX_VERTICES = 5000
REAL_KINDS = ("buildings", "world_map")
MEASURES = {"mae_mean": "MAE of mean IoU", "mae_p": "MAE of P(IoU ≥ 0.5)", "crps": "CRPS"}
BAND_CONTESTANTS = ("QMC-8", "QMC-64")
#: The methods without the network that the network's own overlap head must beat at equal accuracy.
WITHOUT_NETWORK = ("qmc", "mc", "sweep", "exact", "exact_cv")
TARGET_REFERENCE = "QMC-256"
JSON_PATH = MODEL_DIR / "yardstick.json"
MARKDOWN_PATH = MODEL_DIR / "yardstick.md"
PLOT_PATH = PACKAGE_ROOT / "docs" / "yardstick.png"


# ==========================================================================
# Data.
# ==========================================================================
@dataclass
class PairSet:
    """Pairs of one data set in their local frames, σ > 0; every array is aligned on axis 0.

    a, b : (n,) valid polygons (metres); sigma : (n,) metres; kind : (n,) codes into :func:`kind_names`;
    lonlat_a, lonlat_b : (n,) the same features in EPSG:4326 (None for synthetic pairs).
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    sigma: np.ndarray
    kind: np.ndarray
    lonlat_a: np.ndarray = None
    lonlat_b: np.ndarray = None

    def __len__(self):
        return len(self.a)


def kind_names():
    from ..datasets.synthetic import KIND_NAMES

    return tuple(KIND_NAMES) + REAL_KINDS


def synthetic_set(n, rng, progress=True, cache=CACHE):
    """About n held-out synthetic pairs with σ > 0, the same number (or all there are) per kind × σ band."""
    from ..datasets.synthetic import KIND_NAMES

    bands = len(SIGMA_EDGES) + 1
    per_stratum = -(-int(n) // (len(KIND_NAMES) * bands))
    # The rarest stratum holds about 1.4 % of the pairs.
    pool = held_out_pairs(max(4096, 1024 * -(-int(per_stratum / 0.012) // 1024)), progress=progress, cache=cache)
    stratum = np.where(pool.sigma > 0, pool.kind * bands + sigma_bucket_codes(pool.sigma) - 1, -1)
    rows = np.sort(np.concatenate([  # one draw per stratum (20), not per pair
        rng.choice(members, min(per_stratum, members.size), replace=False)
        for members in (np.flatnonzero(stratum == s) for s in range(len(KIND_NAMES) * bands))]))
    return PairSet("synthetic", pool.a[rows], pool.b[rows], pool.sigma[rows], pool.kind[rows].astype(np.int64))


def real_set(name, input_spec, reference_spec, search_m, sigmas, n, rng, max_vertices=None):
    """n candidate pairs of two layers (``*_spec``: path, layer), split evenly over ``sigmas``.

    Candidates as the plugin finds them (within max(search_m, 3σ)), drawn at random, projected
    into their frames with :func:`..frame.project_pairs`; pairs of more than ``max_vertices``
    vertices (A + B) are left out.
    """
    import shapely

    from ..candidates import boxes_within
    from ..frame import layer_to_lonlat, project_pairs
    from ..pairs import plan_pair_chunks

    (geoms_a, crs_a, _), (geoms_b, crs_b, _) = read_layer(*input_spec), read_layer(*reference_spec)
    lonlat_a, lonlat_b = layer_to_lonlat(geoms_a, crs_a), layer_to_lonlat(geoms_b, crs_b)
    vertices_a, vertices_b = shapely.get_num_coordinates(lonlat_a.geoms), shapely.get_num_coordinates(lonlat_b.geoms)
    counts = np.diff(np.round(np.linspace(0, n, len(sigmas) + 1)).astype(int))
    parts = []
    for sigma, count in zip(sigmas, counts):  # one candidate search per σ
        distance = float(search_distances(search_m, sigma))
        plan = plan_pair_chunks(lonlat_a, lonlat_b, distance)
        index_a = np.concatenate([chunk[0] for chunk in plan])
        index_b = np.concatenate([chunk[1] for chunk in plan])
        if max_vertices:
            small = vertices_a[index_a] + vertices_b[index_b] <= max_vertices
            index_a, index_b = index_a[small], index_b[small]
        pick = rng.permutation(len(index_a))[:3 * count]  # the fine filter drops some
        frames = project_pairs(lonlat_a, lonlat_b, index_a[pick], index_b[pick])
        keep = np.flatnonzero(boxes_within(frames.a, frames.b, distance))[:count]
        parts.append((frames.a[keep], frames.b[keep], np.full(keep.size, sigma),
                      lonlat_a.geoms[index_a[pick][keep]], lonlat_b.geoms[index_b[pick][keep]]))
    a, b, sigma, geo_a, geo_b = (np.concatenate(column) for column in zip(*parts))
    return PairSet(name, a, b, sigma, np.full(len(a), kind_names().index(name)), geo_a, geo_b)


def yardstick_sets(pairs, sample_pairs, world_pairs, seed=HELD_OUT_SEED, progress=True, cache=CACHE):
    """The data sets (synthetic, buildings, world_map; a real one is left out when its file is missing)."""
    rng = random_stream(seed, "yardstick")
    sets = [synthetic_set(pairs, rng, progress, cache)] if pairs else []
    specs = [("buildings", (SAMPLE_DIR / "buildings_mapping.gpkg", "buildings_mapping"),
              (SAMPLE_DIR / "buildings_cadastre.gpkg", "buildings_cadastre"), BUILDING_SEARCH_M, BUILDING_SIGMAS_M,
              sample_pairs, None),
             ("world_map", (WORLD_MAP, "states_provinces"), (WORLD_MAP, "countries"), ADMIN_SEARCH_M, WORLD_SIGMAS_M,
              world_pairs, WORLD_MAX_VERTICES)]
    for name, input_spec, reference_spec, search_m, sigmas, n, max_vertices in specs:
        if n and Path(input_spec[0]).is_file() and Path(reference_spec[0]).is_file():
            sets.append(real_set(name, input_spec, reference_spec, search_m, sigmas, n, rng, max_vertices))
    return sets


def contestant_rng(name, set_index, seed=HELD_OUT_SEED):
    """The random stream of one contestant on one data set (keyed by its name, so adding contestants changes none)."""
    key = (STREAMS["yardstick_samplers"], zlib.crc32(name.encode()), set_index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ==========================================================================
# Timing and measures.
# ==========================================================================
def timed(function, repeats):
    """(median seconds of ``repeats`` calls of ``function()``, the first call's result)."""
    seconds, result = [], None
    for _ in range(max(1, int(repeats))):
        started = time.perf_counter()
        out = function()
        seconds.append(time.perf_counter() - started)
        result = out if result is None else result
    return float(np.median(seconds)), result


def pair_measures(forecast, truth, threshold=THRESHOLD):
    """Per-pair errors (n,) of a :class:`.samplers.Forecast` against (n, m) truth IoU draws."""
    samples = forecast.iou_samples()
    return {"mae_mean": np.abs(forecast.iou_mean - truth.mean(axis=1)),
            "mae_p": np.abs(forecast.p_iou - (truth >= threshold).mean(axis=1)),
            "crps": crps_from_samples(samples, truth), "coverage": interval_coverage(samples, truth)}


def equivalent_k(ks, errors, model_error):
    """The largest k whose error is at least the model's (the sampler no more accurate); 0 when there is none."""
    ks, errors = np.asarray(ks), np.asarray(errors, float)
    worse = errors >= model_error
    return int(ks[worse].max()) if worse.any() else 0


def cost_at_error(costs, errors, target):
    """(cost, extrapolated) at which a frontier (costs, errors in order of k) reaches the ``target`` error.

    Log-log interpolation between the largest k whose error is at least ``target`` and the next k;
    outside the frontier, extrapolation of its first or last segment (``extrapolated`` True).
    None when that segment is flat.
    """
    costs, errors = np.asarray(costs, float), np.maximum(np.asarray(errors, float), 1e-300)
    worse = np.flatnonzero(errors >= target)
    last = int(worse.max()) if worse.size else -1
    start = min(max(last, 0), len(costs) - 2)
    x, y = np.log(costs[start:start + 2]), np.log(errors[start:start + 2])
    if y[0] == y[1]:
        return None, True
    t = (math.log(max(target, 1e-300)) - y[0]) / (y[1] - y[0])
    return float(math.exp(x[0] + t * (x[1] - x[0]))), not 0 <= last < len(costs) - 1


def frontier(contestants, family):
    """The rows of one sampler family, in order of k."""
    return sorted((c for c in contestants if c["family"] == family), key=lambda c: c["k"])


def equivalents(contestants, families=("qmc", "mc"), reference="model"):
    """Per measure: the ``reference`` family's value (the model, or the network), each family's equivalent k, and
    the speed ratio at equal accuracy (the strongest family's cost at the reference's accuracy ÷ the reference's)."""
    model = next(c for c in contestants if c["family"] == reference)
    out = {}
    for measure in MEASURES:
        row = {"model": model[measure], "families": {}}
        for family in families:
            rows = frontier(contestants, family)
            if len(rows) < 2:  # a frontier needs two points to interpolate along
                continue
            seconds, extrapolated = cost_at_error([r["seconds_per_pair"] for r in rows], [r[measure] for r in rows],
                                                  model[measure])
            row["families"][family] = {
                "equivalent_k": equivalent_k([r["k"] for r in rows], [r[measure] for r in rows], model[measure]),
                "seconds_per_pair_at_model_accuracy": seconds, "extrapolated": extrapolated,
                "cost_overlays_at_model_accuracy": None if seconds is None else seconds / model["overlay_seconds"]}
        usable = {f: v for f, v in row["families"].items() if v["seconds_per_pair_at_model_accuracy"] is not None}
        if usable:
            best = min(usable, key=lambda f: usable[f]["seconds_per_pair_at_model_accuracy"])
            row.update(strongest=best, extrapolated=usable[best]["extrapolated"],
                       speed_ratio=usable[best]["seconds_per_pair_at_model_accuracy"] / model["seconds_per_pair"])
        out[measure] = row
    return out


def _summary(per_pair, rows=slice(None)):
    values = {name: float(np.mean(v[rows])) for name, v in per_pair.items()}
    values["coverage_error"] = abs(values["coverage"] - INTERVAL_LEVEL)
    return values


# ==========================================================================
# The run.
# ==========================================================================
def run_yardstick(model_path=None, pairs=DEFAULTS["pairs"], sample_pairs=DEFAULTS["sample_pairs"],
                  world_pairs=DEFAULTS["world_pairs"], truth_draws=DEFAULTS["truth_draws"],
                  model_samples=DEFAULTS["model_samples"], repeats=DEFAULTS["repeats"], ks=K_VALUES,
                  contestants=None, progress=True, cache=CACHE, sets=None, exact_ks=EXACT_K_VALUES):
    """Measure the model and the samplers on the held-out pairs; returns a JSON-able dict.

    ``contestants`` : a list of :class:`.samplers.Contestant` (default: the model, QMC-k and MC-k for
    k in ``ks``, the sweep, and the exact-kernel QMC-k with and without control for k in ``exact_ks``);
    ``sets`` : a list of :class:`PairSet` instead of the default data.
    """
    started = time.perf_counter()
    model = load_model(model_path)
    contestants = contestants or default_contestants(model, ks, model_samples, exact_ks=exact_ks)
    sets = sets if sets is not None else yardstick_sets(pairs, sample_pairs, world_pairs, progress=progress,
                                                        cache=cache)
    step = time.perf_counter()
    truth = [monte_carlo_truth(s, np.arange(len(s)), truth_draws, seed=TRUTH_SEED, progress=progress)["iou"]
             for s in sets]
    truth_seconds = time.perf_counter() - step
    overlay = [timed(lambda s=s: exact_iou(s.a, s.b), repeats)[0] for s in sets]
    sizes = np.array([len(s) for s in sets])

    per_pair, seconds = {}, {}
    bar = progress_bar(total=len(contestants) * len(sets), desc="yardstick contestants", disable=not progress)
    for c in contestants:  # one batched run (× repeats) per contestant and data set
        parts = []
        for index, s in enumerate(sets):
            t, forecast = timed(lambda c=c, s=s, i=index: c.predict(s.a, s.b, s.sigma, contestant_rng(c.name, i)),
                                repeats)
            seconds.setdefault(c.name, []).append(t)
            parts.append(pair_measures(forecast, truth[index]))
            bar.update(1)
        per_pair[c.name] = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    bar.close()

    offsets = np.r_[0, np.cumsum(sizes)]
    total_overlay = float(np.sum(overlay))
    rows = []
    for c in contestants:
        total = float(np.sum(seconds[c.name]))
        row = {"name": c.name, "family": c.family, "k": c.overlays, "seconds_per_pair": total / sizes.sum(),
               "us_per_pair": 1e6 * total / sizes.sum(), "cost_overlays": total / total_overlay,
               "overlay_seconds": total_overlay / sizes.sum()} | _summary(per_pair[c.name])
        row["by_set"] = {s.name: {"us_per_pair": 1e6 * seconds[c.name][i] / len(s),
                                  "cost_overlays": seconds[c.name][i] / overlay[i]}
                         | _summary(per_pair[c.name], slice(offsets[i], offsets[i + 1])) for i, s in enumerate(sets)}
        rows.append(row)

    all_truth = np.concatenate(truth)
    kind = np.concatenate([s.kind for s in sets])
    sigma = np.concatenate([s.sigma for s in sets])
    results = {
        "settings": {"pairs": int(pairs), "sample_pairs": int(sample_pairs), "world_pairs": int(world_pairs),
                     "truth_draws": int(truth_draws), "truth_seed": TRUTH_SEED, "held_out_seed": HELD_OUT_SEED,
                     "model_samples": int(model_samples), "repeats": int(repeats), "ks": [int(k) for k in ks],
                     "exact_ks": [int(k) for k in exact_ks], "sigma_path": model.sigma_path, "model_centroid": False,
                     "threshold": THRESHOLD, "interval_level": INTERVAL_LEVEL,
                     "building_sigmas_m": list(BUILDING_SIGMAS_M), "world_sigmas_m": list(WORLD_SIGMAS_M),
                     "world_max_vertices": WORLD_MAX_VERTICES, "model": _display_path(model.path),
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"},
        "sets": {s.name: {"pairs": len(s), "sigma_m": sorted({float(v) for v in np.unique(s.sigma)})
                          if s.name != "synthetic" else [float(s.sigma.min()), float(s.sigma.max())],
                          "overlay_us_per_pair": 1e6 * overlay[i] / len(s)} for i, s in enumerate(sets)},
        "overlay_us_per_pair": 1e6 * total_overlay / sizes.sum(),
        "truth": _truth_summary(all_truth, truth_draws) | {"seconds": round(truth_seconds, 1)},
        "contestants": rows,
    }
    results["equivalents"] = equivalents(rows)
    results["exact_equivalents"] = equivalents(rows, ("exact", "exact_cv"))
    if any(c.family == "network" for c in contestants):
        results["network_equivalents"] = equivalents(rows, WITHOUT_NETWORK, reference="network")
    results["groups"] = _groups(per_pair, kind, sigma, all_truth, [c.name for c in contestants])
    results["model_parts"] = _model_parts(model, sets, repeats)
    names = [c.name for c in contestants]
    results["never_overlap"] = _error_share(per_pair, all_truth.max(axis=1) <= 0, names)
    results["constant_iou"] = _error_share(per_pair, np.ptp(all_truth, axis=1) <= 1e-12, names)
    results["model_api"] = _model_api(model, sets, overlay, repeats)
    results["targets"] = target_rows(results)
    results["runtime_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _truth_summary(truth, draws):
    mean_sd = truth.std(axis=1) / math.sqrt(draws)
    p = (truth >= THRESHOLD).mean(axis=1)
    return {"draws": int(draws), "seed": TRUTH_SEED, "oracle_crps": float(oracle_crps(truth).mean()),
            # The MAE a perfect forecast shows against a truth of this many draws (E|N(0, se²)| = se √(2/π)).
            "noise_floor_mae_mean": float(math.sqrt(2 / math.pi) * mean_sd.mean()),
            "noise_floor_mae_p": float(math.sqrt(2 / math.pi) * np.sqrt(p * (1 - p) / draws).mean()),
            "oracle_coverage": float(oracle_coverage(truth).mean()),
            "constant_share": float(np.mean(np.ptp(truth, axis=1) <= 1e-12))}


def oracle_coverage(truth, level=INTERVAL_LEVEL):
    """(n,) split-half coverage of the truth draws (n, m) by their own central interval: what a perfect forecast
    scores (above ``level`` where the IoU has an atom, e.g. 0, that the closed interval covers whole)."""
    half = truth.shape[1] // 2
    first, second = truth[:, :half], truth[:, half:2 * half]
    return 0.5 * (interval_coverage(first, second, level) + interval_coverage(second, first, level))


def _groups(per_pair, kind, sigma, truth, names):
    """Rows per σ band × kind: n, the oracle CRPS and each band contestant's (and the model's) means."""
    bands = len(SIGMA_EDGES) + 1
    kinds = kind_names()
    labels = [f"{k}, {b}" for k in kinds for b in sigma_bucket_labels()[1:]]
    codes = kind * bands + sigma_bucket_codes(sigma) - 1
    valid = np.ones(len(kind), bool)
    shown = ["model"] + [n for n in ("network",) + BAND_CONTESTANTS if n in names]
    columns = {f"{name}|{measure}": (values, valid) for name in shown for measure, values in per_pair[name].items()}
    columns["oracle_crps"] = (oracle_crps(truth), valid)
    columns["oracle_coverage"] = (oracle_coverage(truth), valid)
    out = []
    for row in grouped_means(codes, labels, columns):
        if row["n"]:
            kind_label, band = row["group"].split(", ", 1)
            out.append({"kind": kind_label, "band": band, "n": row["n"], "oracle_crps": row["oracle_crps"],
                        "oracle_coverage": row["oracle_coverage"],
                        **{name: {m: row[f"{name}|{m}"] for m in per_pair[name]} for name in shown}})
    return out


def _error_share(per_pair, mask, names):
    """How much of each contestant's MAE of the mean IoU the pairs ``mask`` (n,) carry (e.g. IoU 0 in every draw)."""
    out = {"pairs": int(mask.sum()), "share": float(mask.mean())}
    for name in ["model"] + [n for n in BAND_CONTESTANTS if n in names]:
        error = per_pair[name]["mae_mean"]
        out[name] = {"mae_mean": float(error[mask].mean()) if mask.any() else None,
                     "share_of_mae_mean": float(error[mask].sum() / max(error.sum(), 1e-300)),
                     "mae_mean_elsewhere": float(error[~mask].mean()) if (~mask).any() else None}
    return out


def _model_parts(model, sets, repeats):
    """Where the model's time goes per data set, µs per pair: simplification to model geometries (on the network
    path only: the exact path measures the geometries as given, so 0 there), the σ > 0 path on those
    (:meth:`..scoring.OverlapModel.predict_frames` without the centroid, as scores and matches are computed: on the
    exact path the overlap at the fixed shifts, no descriptors; on the network path descriptors, network and
    mixtures), the QMC summary."""
    from ..preparation import model_geometry

    out = {}
    for s in sets:
        if model.sigma_path == "exact":
            simplify, (a, b) = 0.0, (s.a, s.b)
        else:
            simplify, (a, b) = timed(lambda s=s: (model_geometry(s.a), model_geometry(s.b)), repeats)
        frames, (overlap, _) = timed(lambda a=a, b=b, s=s: model.predict_frames(a, b, s.sigma, True, centroid=False),
                                     repeats)
        summary, _ = timed(lambda overlap=overlap: summarise_overlap(overlap), repeats)
        out[s.name] = {name: 1e6 * value / len(s) for name, value in (
            ("simplify", simplify), ("predict", frames), ("summary", summary))}
    return out


def _display_path(path):
    try:
        return str(Path(path).resolve().relative_to(PACKAGE_ROOT))
    except ValueError:
        return str(path)


def _model_api(model, sets, overlay, repeats):
    """The model through ``OverlapModel.predict`` from EPSG:4326 geometries (real sets), µs and overlays per pair."""
    out = {}
    for index, s in enumerate(sets):
        if s.lonlat_a is None:
            continue
        seconds, _ = timed(lambda s=s: model.predict(s.lonlat_a, s.lonlat_b, "EPSG:4326", s.sigma), repeats)
        out[s.name] = {"us_per_pair": 1e6 * seconds / len(s), "cost_overlays": seconds / overlay[index]}
    return out


def target_rows(results):
    """Rows {key, metric, value, text, target, status} for :data:`.metrics.YARDSTICK_TARGETS`."""
    by_name = {c["name"]: c for c in results["contestants"]}
    model, reference = by_name["model"], by_name.get(TARGET_REFERENCE)
    if reference is None:  # a shorter run (tests, --ks): its largest GEOS QMC-k, named in the text
        reference = max((c for c in results["contestants"] if c["family"] == "qmc"), key=lambda c: c["k"],
                        default=None)
    values, texts = {}, {}
    for measure in MEASURES:
        key = f"yardstick_{measure}"
        if reference:
            values[key] = model[measure] / max(reference[measure], 1e-300)
            against = "" if reference["name"] == TARGET_REFERENCE else f", against {reference['name']}"
            texts[key] = f"{values[key]:.2f} ({model[measure]:.4f} vs {reference[measure]:.4f}{against})"
    values["yardstick_cost"] = model["cost_overlays"]
    texts["yardstick_cost"] = f"{model['cost_overlays']:.2f} ({model['us_per_pair']:.0f} µs per pair)"
    ratios = {m: e.get("speed_ratio") for m, e in results["equivalents"].items()}
    if ratios and all(r is not None for r in ratios.values()):
        worst = min(ratios, key=ratios.get)
        values["yardstick_speed"] = ratios[worst]
        texts["yardstick_speed"] = (f"{ratios[worst]:.1f}× ({MEASURES[worst]}; "
                                    + ", ".join(f"{MEASURES[m]} {r:.1f}×" for m, r in ratios.items() if m != worst)
                                    + ")")
    network = results.get("network_equivalents") or {}
    ratios = {m: e.get("speed_ratio") for m, e in network.items()}
    if ratios and all(r is not None for r in ratios.values()):
        worst = min(ratios, key=ratios.get)
        values["yardstick_network"] = ratios[worst]
        texts["yardstick_network"] = (f"{ratios[worst]:.2f}× ({MEASURES[worst]}, against "
                                      f"{network[worst].get('strongest', '—')}; "
                                      + ", ".join(f"{MEASURES[m]} {r:.2f}× against {network[m].get('strongest')}"
                                                  for m, r in ratios.items() if m != worst) + ")")
    coverage = np.array([g["model"]["coverage"] for g in results["groups"]])
    if coverage.size:
        low, high = YARDSTICK_TARGETS["yardstick_band_coverage"][2]
        oracle = np.array([g["oracle_coverage"] for g in results["groups"]])
        judged = (oracle >= low) & (oracle <= high)  # where a perfect forecast can meet the target at all
        outside = int(np.sum(judged & ((coverage < low) | (coverage > high))))
        if judged.any():
            furthest = float(coverage[judged][np.argmax(np.abs(coverage[judged] - INTERVAL_LEVEL))])
            values["yardstick_band_coverage"] = furthest
            texts["yardstick_band_coverage"] = (
                f"{furthest:.3f} ({int(judged.sum())} of {coverage.size} cells judged, where the truth's split-half "
                f"coverage lies in the target; {outside} of them outside; range over every cell "
                f"{coverage.min():.3f}–{coverage.max():.3f})")
    rows = []
    for key, (metric, kind, bound) in YARDSTICK_TARGETS.items():
        sign = "≤" if kind == "max" else "≥"
        target = f"[{bound[0]:g}, {bound[1]:g}]" if kind == "range" else f"{sign} {bound:g}"
        rows.append({"key": key, "metric": metric, "value": values.get(key), "text": texts.get(key, "—"),
                     "target": target, "status": target_status(key, values.get(key), YARDSTICK_TARGETS)})
    return rows


# ==========================================================================
# Markdown and plot.
# ==========================================================================
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _number(value, digits=4):
    return "—" if value is None or not math.isfinite(value) else f"{round(value, digits) + 0.0:.{digits}f}"


def render_section(results, heading="##", plot="../docs/yardstick.png"):
    """The yardstick as Markdown (targets, frontier, equivalents, per σ band × kind), under ``heading``."""
    s, truth, eq = results["settings"], results["truth"], results["equivalents"]
    sets = ", ".join(f"{name} {v['pairs']:,}" for name, v in results["sets"].items())
    out = [f"{heading} Yardstick: the model against exact sampling at equal cost\n"]
    buildings = ", ".join(f"{v:g}" for v in s["building_sigmas_m"])
    world = ", ".join(f"{v / 1000:g}" for v in s["world_sigmas_m"])
    described = {"synthetic": f"synthetic pairs of seed {s['held_out_seed']}, as many per pair kind × σ band",
                 "buildings": f"candidate pairs of the bundled building sample at σ = {buildings} m",
                 "world_map": f"candidate pairs of world_map (states_provinces × countries, at most "
                              f"{s['world_max_vertices']:,} vertices per pair) at σ = {world} km, where σ of metres "
                              f"would not move a province's IoU"}
    out.append(
        f"Written by `python -m overlap_relevance.model.evaluation.yardstick` (and `make evaluate`). Held-out pairs "
        f"with σ > 0 ({sets}): {'; '.join(described[name] for name in results['sets'] if name in described)}. "
        f"Truth: {truth['draws']:,} plain Monte-Carlo displacements per pair (seed "
        f"{truth['seed']}). QMC-k: k exact overlays at 2-D Sobol' points scrambled per pair (random linear matrix "
        f"and digital shift) through the inverse normal CDF; MC-k: k independent draws; both batched over all "
        f"pairs, skipping displacements whose bounding boxes do not meet. The model: `predict_frames`"
        + (" without the centroid (as scores and matches are computed; the overlap location's first moments are "
           "not timed)" if not s.get("model_centroid", True) else "") + " + "
        f"`summarise_overlap` (mean and P), its distribution from {s['model_samples']} QMC points of the mixture "
        f"(σ > 0 path: {s.get('sigma_path', 'network')}). network: the same with the network's own overlap head "
        f"(`sigma_path=\"network\"`), the ablation. "
        f"sweep: the boundary-sweep surrogate the model reads (`model/sweep.py`) alone at 256 QMC points; "
        f"sweep+CV-k: its mean IoU and P corrected by k exact overlays at the first k of those points. "
        f"exact-QMC-k: the QMC-k shifts with the overlap at each from the exact edge-pair kernel "
        f"(`model/shift_overlap.py`, no GEOS per shift; k = 8 … 1,024); exact-QMC-k+CV: the same with the exact "
        f"expected overlap as a control variate of the mean IoU and P (per-pair regression slope). "
        f"Cost: median of {s['repeats']} runs in one process ({s['machine']}), per pair, and in exact overlays (one "
        f"batched A ∩ B overlay per pair: {results['overlay_us_per_pair']:.0f} µs on these pairs).\n")
    out.append(_table(["Metric", "Measured", "Target", "Status"],
                      [[r["metric"], r["text"], r["target"], r["status"]] for r in results["targets"]]) + "\n")
    out.append(_table(["Contestant", "Cost (overlays)", "µs / pair", "MAE mean IoU", "MAE P(IoU ≥ 0.5)", "CRPS",
                       "90 % coverage"],
                      [[c["name"], _number(c["cost_overlays"], 2), f"{c['us_per_pair']:,.0f}", _number(c["mae_mean"]),
                        _number(c["mae_p"]), _number(c["crps"]), _number(c["coverage"], 3)]
                       for c in results["contestants"]]) + "\n")
    out.append(f"Floors: the truth's own noise gives a perfect forecast an MAE of about "
               f"{truth['noise_floor_mae_mean']:.4f} (mean IoU) and {truth['noise_floor_mae_p']:.4f} (P); the oracle "
               f"(split-half, the truth against itself) has a CRPS of {truth['oracle_crps']:.4f} and a 90 % coverage "
               f"of {truth['oracle_coverage']:.3f}: the closed interval covers an atom (IoU 0 or constant) whole, so "
               f"a perfect forecast covers more than 90 % where the IoU has one. "
               f"{100 * truth['constant_share']:.0f} % of the pairs have a constant IoU under displacement.\n")
    rows = []
    for measure, label in MEASURES.items():
        e = eq[measure]
        fam = e["families"]
        cost = fam.get(e.get("strongest"), {}).get("cost_overlays_at_model_accuracy")
        rows.append([label, _number(e["model"]), _equivalent(fam.get("qmc")), _equivalent(fam.get("mc")),
                     f"{e.get('strongest', '—').upper()}, {_number(cost, 1)} overlays"
                     + (" (extrapolated)" if e.get("extrapolated") else ""),
                     "—" if e.get("speed_ratio") is None else f"{e['speed_ratio']:.1f}×"])
    out.append("Equivalent overlays (the largest k no more accurate than the model) and the speed ratio at equal "
               "accuracy (the cost of the strongest sampler at the model's accuracy, log-log between the k's, ÷ the "
               "model's cost):\n")
    header = ["Measure", "Model", "QMC equivalent k", "MC equivalent k", "Strongest sampler at the model's accuracy",
              "Speed ratio"]
    out.append(_table(header, rows) + "\n")
    exact = results.get("exact_equivalents") or {}
    if any(e.get("families") for e in exact.values()):
        rows = []
        for measure, label in MEASURES.items():
            fam = exact[measure]["families"]
            cells = []
            for family in ("exact", "exact_cv"):
                f = fam.get(family)
                cells += (["—", "—"] if not f or f["cost_overlays_at_model_accuracy"] is None else
                          [_equivalent(f), _reach(f)])
            geos = eq[measure]["families"].get("qmc", {}).get("cost_overlays_at_model_accuracy")
            rows.append([label, _number(exact[measure]["model"]), *cells, _number(geos, 1)])
        out.append("The exact kernel at the model's accuracy (the largest k no more accurate than the model, and the "
                   "cost in overlays at which its frontier reaches the model's error, log-log between the k's), "
                   "against GEOS QMC's cost there:\n")
        out.append(_table(["Measure", "Model", "exact-QMC equivalent k", "exact-QMC overlays",
                           "exact-QMC+CV equivalent k", "exact-QMC+CV overlays", "GEOS QMC overlays"], rows) + "\n")
    network = results.get("network_equivalents") or {}
    if network:
        rows = []
        for measure, label in MEASURES.items():
            e = network[measure]
            cells = []
            for family in WITHOUT_NETWORK:
                f = e["families"].get(family)
                cells.append(_reach(f))
            rows.append([label, _number(e["model"]), *cells,
                         "—" if e.get("speed_ratio") is None else f"{e['speed_ratio']:.2f}×"])
        network_row = next(c for c in results["contestants"] if c["family"] == "network")
        out.append(f"The ablation: the network's own overlap head ({_number(network_row['cost_overlays'], 2)} overlays "
                   f"per pair) against each method without it, at the network's accuracy (cost in overlays where that "
                   f"method's frontier reaches the network's error, log-log between its k's); the ratio is the "
                   f"cheapest of them ÷ the network's cost (above 1, the network is faster):\n")
        out.append(_table(["Measure", "Network", "GEOS QMC", "GEOS MC", "sweep (+CV)", "exact-QMC", "exact-QMC+CV",
                           "Ratio"], rows) + "\n")
    api = results.get("model_api") or {}
    if api:
        out.append("Through the Python API from EPSG:4326 (`OverlapModel.predict`: frames, simplification, "
                   "the σ > 0 path, summaries): " + "; ".join(f"{name} {v['us_per_pair']:,.0f} µs per pair = "
                                                      f"{v['cost_overlays']:.2f} overlays" for name, v in api.items())
                   + ".\n")
    parts = results.get("model_parts") or {}
    if parts:
        path = (("the exact overlap and its first moments at the fixed shifts" if s.get("model_centroid", True)
                 else "the exact overlap at the fixed shifts") if s.get("sigma_path") == "exact"
                else "descriptors, network and mixtures")
        out.append(f"Where the model's time goes (µs per pair: simplification to model geometries, which the plugin "
                   f"does once per feature, not per pair; {path}; the QMC summary): " + "; ".join(
                       f"{name} {v['simplify']:,.0f} + {_predict_part(v):,.0f} + {v['summary']:,.0f}"
                       for name, v in parts.items()) + ".\n")
    for key, what in (("never_overlap", "never overlap (IoU 0 in every truth draw)"),
                      ("constant_iou", "have a constant IoU in every truth draw (never overlapping included)")):
        part = results.get(key) or {"pairs": 0}
        if part["pairs"]:
            samplers = "; ".join(f"{name} {_number(part[name]['mae_mean'], 5)}" for name in BAND_CONTESTANTS
                                 if name in part)
            out.append(f"{part['pairs']:,} pairs ({100 * part['share']:.0f} %) {what}: the model's MAE of the mean IoU "
                       f"is {_number(part['model']['mae_mean'], 5)} on them "
                       f"({_number(part['model']['mae_mean_elsewhere'])} elsewhere), "
                       f"{100 * part['model']['share_of_mae_mean']:.0f} % of its total; the samplers': "
                       f"{samplers or '—'}.\n")
    band = [n for n in ("network",) + BAND_CONTESTANTS if results["groups"] and n in results["groups"][0]]
    by_name = {c["name"]: c for c in results["contestants"]}
    who = " / ".join(["model"] + band)
    out.append(f"By data set (cost: µs per pair, overlays in brackets; errors {who}):\n")
    out.append(_table(["Data set", "Pairs", "One overlay", "Model", *band, "MAE mean IoU", "CRPS"], [
        [name, f"{v['pairs']:,}", f"{v['overlay_us_per_pair']:,.0f} µs"]
        + [f"{by_name[n]['by_set'][name]['us_per_pair']:,.0f} ({by_name[n]['by_set'][name]['cost_overlays']:.1f})"
           for n in ["model"] + band]
        + [" / ".join(_number(by_name[n]["by_set"][name][m]) for n in ["model"] + band) for m in ("mae_mean", "crps")]
        for name, v in results["sets"].items()]) + "\n")
    out.append(f"By σ band × pair kind (each cell {who}):\n")
    oracle = {"crps": ("oracle_crps", 4), "coverage": ("oracle_coverage", 3)}
    out.append(_table(["Kind", "σ band", "Pairs", "MAE mean IoU", "MAE P", "CRPS (oracle)", "90 % coverage (oracle)"], [
        [g["kind"], g["band"], g["n"]] + [" / ".join(_number(g[n][m], digits) for n in ["model"] + band)
                                          + (f" ({_number(g[oracle[m][0]], oracle[m][1])})" if m in oracle else "")
                                          for m, digits in (("mae_mean", 4), ("mae_p", 4), ("crps", 4),
                                                            ("coverage", 3))]
        for g in results["groups"]]) + "\n")
    if plot:
        out.append(f"![accuracy against cost, log-log]({plot})\n")
    out.append(f"Runtime: {results['runtime_seconds']:.0f} s (truth {truth['seconds']:.0f} s).\n")
    return "\n".join(out)


#: An extrapolated cost beyond this many overlays is shown as not reached: a nearly flat frontier segment,
#: extended log-log, says nothing about where the method would get.
REACH_LIMIT_OVERLAYS = 1e4


def _reach(family):
    """A family's cost in overlays at the reference's accuracy, as a table cell."""
    cost = None if not family else family["cost_overlays_at_model_accuracy"]
    if cost is None:
        return "—"
    if family["extrapolated"] and cost > REACH_LIMIT_OVERLAYS:
        return "not reached"
    return f"{_number(cost, 2)}" + (" (extrapolated)" if family["extrapolated"] else "")


def _predict_part(part):
    """µs per pair of predict_frames on model geometries (older results: descriptors + network)."""
    return part["predict"] if "predict" in part else part.get("descriptors", 0.0) + part.get("network", 0.0)


def _equivalent(family):
    if not family:
        return "—"
    k = family["equivalent_k"]
    return "< 1" if k == 0 else str(k)


def plot_frontier(results, path):
    """Accuracy (each measure; coverage on a linear axis) against cost in exact overlays, log-log, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = dict(MEASURES, coverage="90 % interval coverage")
    figure = Figure(figsize=(10, 8), dpi=110)
    FigureCanvasAgg(figure)
    model = next(c for c in results["contestants"] if c["family"] == "model")
    floors = {"mae_mean": results["truth"]["noise_floor_mae_mean"], "mae_p": results["truth"]["noise_floor_mae_p"],
              "crps": results["truth"]["oracle_crps"]}
    for index, (measure, label) in enumerate(panels.items()):
        axes = figure.add_subplot(2, 2, index + 1)
        for family, style in (("qmc", "o-"), ("mc", "s--")):
            rows = frontier(results["contestants"], family)
            axes.plot([r["cost_overlays"] for r in rows], [max(r[measure], 1e-6) for r in rows], style,
                      label=f"{family.upper()}-k, k = 1 … {rows[-1]['k']}" if rows else family)
        for family, style, colour in (("exact", "D-", "tab:purple"), ("exact_cv", "v-", "tab:brown")):
            rows = frontier(results["contestants"], family)
            if rows:
                axes.plot([r["cost_overlays"] for r in rows], [max(r[measure], 1e-6) for r in rows], style,
                          color=colour, markersize=4, label=("exact kernel" if family == "exact" else
                                                             "exact kernel + exact-mean control")
                          + f", k = {rows[0]['k']} … {rows[-1]['k']}")
        sweep = frontier(results["contestants"], "sweep")
        if sweep:
            axes.plot([r["cost_overlays"] for r in sweep], [max(r[measure], 1e-6) for r in sweep], "^:",
                      color="tab:green", label="sweep surrogate + k control overlays, k = "
                      + ", ".join(str(r["k"]) for r in sweep))
        axes.plot([model["cost_overlays"]], [max(model[measure], 1e-6)], "r*", markersize=14, label="model")
        for network in (c for c in results["contestants"] if c["family"] == "network"):
            axes.plot([network["cost_overlays"]], [max(network[measure], 1e-6)], "kP", markersize=10,
                      label="the network's own overlap head")
        if measure in floors:
            axes.axhline(floors[measure], color="grey", linestyle=":", label="truth noise" if measure != "crps"
                         else "oracle CRPS")
        else:  # coverage: linear, with the nominal level and what a perfect forecast scores
            axes.axhline(INTERVAL_LEVEL, color="black", linewidth=0.8, label="nominal 0.9")
            axes.axhline(results["truth"]["oracle_coverage"], color="grey", linestyle=":", label="oracle")
        axes.set_xscale("log")
        axes.set_yscale("log" if measure in floors else "linear")
        axes.set_xlabel("cost per pair, exact overlays")
        axes.set_title(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("The model against exact QMC and MC sampling and the exact kernel (held-out pairs, σ > 0)")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def write_outputs(results, json_path=JSON_PATH, markdown_path=MARKDOWN_PATH, plot_path=PLOT_PATH):
    """Write the JSON, the Markdown (a page of its own) and the plot; any path may be None."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    if plot_path:
        plot_frontier(results, plot_path)
    if markdown_path:
        link = None
        if plot_path:
            link = os.path.relpath(Path(plot_path).resolve(), Path(markdown_path).resolve().parent)
        Path(markdown_path).write_text(render_section(results, "#", link), encoding="utf-8")


def load_results(path=JSON_PATH):
    """The results of an earlier run, or None."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=DEFAULTS["pairs"], help="held-out synthetic pairs (σ > 0)")
    parser.add_argument("--sample-pairs", type=int, default=DEFAULTS["sample_pairs"], help="building sample pairs")
    parser.add_argument("--world-pairs", type=int, default=DEFAULTS["world_pairs"], help="world_map pairs")
    parser.add_argument("--truth-draws", type=int, default=DEFAULTS["truth_draws"], help="MC truth draws per pair")
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"], help="timed runs per contestant")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--exact-ks", type=int, nargs="*", default=list(EXACT_K_VALUES),
                        help="shifts per pair of the exact-kernel contestants (none: leave them out)")
    parser.add_argument("--out-json", type=Path, default=JSON_PATH)
    parser.add_argument("--out-md", type=Path, default=MARKDOWN_PATH)
    parser.add_argument("--plot", type=Path, default=PLOT_PATH)
    args = parser.parse_args(argv)
    results = run_yardstick(args.model, args.pairs, args.sample_pairs, args.world_pairs, args.truth_draws,
                            repeats=args.repeats, exact_ks=tuple(args.exact_ks))
    write_outputs(results, args.out_json, args.out_md, args.plot)
    print(f"Yardstick: {args.out_json}, {args.out_md}, {args.plot} ({results['runtime_seconds']:.0f} s)")
    for row in results["targets"]:
        print(f"  {row['metric']}: {row['text']} (target {row['target']}) {row['status']}")
    return results


if __name__ == "__main__":
    main()
