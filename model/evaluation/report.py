"""Evaluate a relevance model on two layers against exact overlaps: the measuring half of the HTML report.

Used by ``overlaprelevance:evaluatemodel``, which draws and writes the page with :mod:`.report_html`;
plain NumPy / shapely / pyproj, never QGIS or TensorFlow. The metric functions are those of the model
card (:mod:`.metrics`), so the numbers mean the same thing in both.

Truth
-----
* σ = 0: the exact overlap of every candidate pair (:func:`.overlap.exact_overlap`
  on the full-detail geometries in the pair's local frame).
* σ > 0: Monte-Carlo truth (:func:`..overlap.monte_carlo_overlap`,
  ``mc_samples`` displacements d ~ N(0, σ²I₂) of the reference feature) on a seeded
  subset of about ``mc_pairs`` pairs, chosen as whole input features (all their
  candidates), so that best-match agreement can be measured on them too.

The model is run exactly as scoring runs it: on the model geometries
(:func:`..preparation.prepare_layer`) projected into the same local frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import shapely

from ..frame import project_pairs
from ..overlap import exact_overlap, monte_carlo_overlap
from ..pairs import iter_pair_chunks
from ..scoring import search_distances, summarise_overlap
from .metrics import (
    INTERVAL_LEVEL,
    TARGETS,
    VERTEX_EDGES,
    best_match_agreement,
    bucket_codes,
    bucket_labels,
    central_interval,
    crps_from_samples,
    interval_coverage,
    mean_absolute_error,
    model_iou_samples,
    oracle_crps,
    pit_coverage,
    randomised_pit,
    relative_centroid_error,
    sigma_bucket_codes,
    sigma_bucket_labels,
    target_status,
)

#: Quasi-random points of each predicted distribution (intervals, PIT, CRPS).
MODEL_SAMPLES = 256
#: Pairs per Monte-Carlo batch (one progress step, one cancellation check).
MC_BATCH = 50
#: Central-interval levels of the calibration curve.
CALIBRATION_LEVELS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
#: At most this many points in the predicted-vs-truth plot (a seeded subset beyond).
SCATTER_POINTS = 1500
STREAMS = {"pit": 1, "mc_groups": 2, "mc_displacements": 3, "scatter": 4, "mc_pit": 5}


def _stream(seed, name, *more):
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(STREAMS[name], *more)))


@dataclass
class LayerEvaluation:
    """What :func:`evaluate_layers` measured.

    pairs : dict of (n,) arrays over every candidate pair: ``index_a``, ``index_b``, ``sigma``,
        ``exact_iou`` / ``exact_cover_a`` / ``exact_cover_b`` (undisplaced), ``iou_mean``, ``iou_sd``,
        ``cover_a_mean``, ``cover_b_mean``, ``q_low`` / ``q_high`` (central 90 % interval of the IoU),
        ``truth_iou`` / ``truth_cover_a`` / ``truth_cover_b`` (exact at σ = 0, Monte-Carlo mean at σ > 0,
        NaN without truth), ``has_truth``, ``monte_carlo`` (bool), ``coverage`` (share of the truth inside
        the interval), ``pit_coverage``, ``crps``, ``varies`` (the truth is not an atom at 0: σ = 0 pairs
        that overlap, σ > 0 pairs whose Monte-Carlo IoU varies), ``centroid_error_pct`` (σ = 0 pairs whose
        intersection has area), ``vertices`` (of A plus B, full detail).
    pit_exact : (n,) randomised PIT of the exact IoU at σ = 0 (NaN elsewhere).
    mc_rows : (k,) rows of ``pairs`` with Monte-Carlo truth; mc_pit : (k, m) their PIT values;
    mc_crps_oracle, mc_crps_static : (k,) reference CRPS values (see :func:`metrics`).
    """

    pairs: dict
    pit_exact: np.ndarray
    mc_rows: np.ndarray
    mc_pit: np.ndarray
    mc_crps_oracle: np.ndarray
    mc_crps_static: np.ndarray
    settings: dict
    seconds: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def n_pairs(self):
        return len(self.pairs["index_a"])


def _empty_pairs():
    names = ("index_a", "index_b", "sigma", "exact_iou", "exact_cover_a", "exact_cover_b", "iou_mean", "iou_sd",
             "cover_a_mean", "cover_b_mean", "q_low", "q_high", "coverage", "pit_coverage", "crps",
             "centroid_error_pct", "vertices")
    return {name: [] for name in names}


def evaluate_layers(model, layer_a, layer_b, sigma_a, search_distance_m=0.0, ids_a=None, ids_b=None, mc_pairs=500,
                    mc_samples=128, seed=3, model_samples=MODEL_SAMPLES, progress=None, cancelled=None):
    """Compare the model with the truth on every candidate pair of two layers.

    Parameters
    ----------
    model : :class:`.scoring.OverlapModel`.
    layer_a, layer_b : the layers (:class:`..preparation.PreparedLayer`: as read, full detail, and as the
        network sees them).
    sigma_a : (n_a,) positional uncertainty per input feature, metres.
    search_distance_m : float, widened per feature to at least 3σ as in scoring.
    ids_a, ids_b : feature ids when both layers are one layer (no self-pairs).
    mc_pairs, mc_samples : size of the Monte-Carlo subset (pairs, about) and displacements per pair.
    seed : seeds the subset, the displacements and the randomised PIT.
    progress : optional callable(fraction in [0, 1], text); cancelled : optional callable -> bool.

    Returns a :class:`LayerEvaluation` with its ``metrics`` filled, or None when cancelled.
    """
    progress = progress or (lambda fraction, text=None: None)
    cancelled = cancelled or (lambda: False)
    sigma_a = np.asarray(sigma_a, dtype=float)
    lonlat_a, lonlat_b, model_a, model_b = layer_a.source, layer_b.source, layer_a.model, layer_b.model
    n_a = max(len(sigma_a), 1)
    started = time.perf_counter()
    columns = _empty_pairs()
    pit_parts = []
    distance = search_distances(search_distance_m, sigma_a)
    progress(0.0, "Scoring candidate pairs and computing their exact overlap")
    for k, chunk in enumerate(iter_pair_chunks(lonlat_a, lonlat_b, distance, ids_a, ids_b)):
        if cancelled():
            return None
        part, pit = _score_chunk(model, chunk, model_a, model_b, sigma_a, model_samples, _stream(seed, "pit", k))
        for name, values in part.items():
            columns[name].append(values)
        pit_parts.append(pit)
        progress(0.6 * (chunk.index_a[-1] + 1) / n_a)
    if cancelled():
        return None
    pairs = {name: np.concatenate(values) if values else np.zeros(0) for name, values in columns.items()}
    for name in ("index_a", "index_b", "vertices"):
        pairs[name] = pairs[name].astype(np.int64)
    pit_exact = np.concatenate(pit_parts) if pit_parts else np.zeros(0)
    zero = pairs["sigma"] == 0
    pairs["truth_iou"] = np.where(zero, pairs["exact_iou"], np.nan)
    pairs["truth_cover_a"] = np.where(zero, pairs["exact_cover_a"], np.nan)
    pairs["truth_cover_b"] = np.where(zero, pairs["exact_cover_b"], np.nan)
    pairs["monte_carlo"] = np.zeros(len(zero), dtype=bool)
    pairs["varies"] = zero & (pairs["exact_iou"] > 0)
    seconds = {"exact_and_model": time.perf_counter() - started}

    started = time.perf_counter()
    rows = monte_carlo_rows(pairs["index_a"], pairs["sigma"], mc_pairs, seed)
    mc = _monte_carlo(model, lonlat_a, lonlat_b, model_a, model_b, pairs, rows, mc_samples, model_samples, seed,
                      progress, cancelled)
    if mc is None:
        return None
    if len(rows):  # a stage that did no work has no timing
        seconds["monte_carlo"] = time.perf_counter() - started
    pairs["has_truth"] = zero | pairs["monte_carlo"]
    evaluation = LayerEvaluation(
        pairs=pairs, pit_exact=pit_exact, mc_rows=rows, mc_pit=mc["pit"], mc_crps_oracle=mc["crps_oracle"],
        mc_crps_static=mc["crps_static"], seconds=seconds,
        settings={"search_distance_m": float(search_distance_m), "mc_pairs": int(mc_pairs),
                  "mc_samples": int(mc_samples), "model_samples": int(model_samples), "seed": int(seed),
                  "interval_level": INTERVAL_LEVEL, "sigma_min": float(sigma_a.min()) if len(sigma_a) else 0.0,
                  "sigma_max": float(sigma_a.max()) if len(sigma_a) else 0.0})
    evaluation.metrics = metrics(evaluation)
    progress(1.0)
    return evaluation


def _score_chunk(model, chunk, model_a, model_b, sigma_a, model_samples, rng):
    """Per-pair columns of one chunk of candidate pairs, and the σ = 0 PIT values."""
    frames = chunk.frames  # full detail, repaired in the pair frame
    sigma = sigma_a[chunk.index_a]
    exact = exact_overlap(frames.a, frames.b, assume_valid=True)
    model_frames = project_pairs(model_a, model_b, chunk.index_a, chunk.index_b, centers=(frames.lon0, frames.lat0),
                                 repair=False)
    overlap, centroid = model.predict_frames(model_frames.a, model_frames.b, sigma, model_geometries=True)
    summary = summarise_overlap(overlap)
    samples = model_iou_samples(overlap, model_samples)
    q_low, q_high = central_interval(samples)
    n = len(sigma)
    coverage, pit_cover, crps, pit = (np.full(n, np.nan) for _ in range(4))
    zero = np.flatnonzero(sigma == 0)
    if len(zero):
        observed = exact.iou[zero][:, None]
        pit[zero] = randomised_pit(samples[zero], observed, rng)[:, 0]
        pit_cover[zero] = pit_coverage(pit[zero][:, None])
        crps[zero] = crps_from_samples(samples[zero], observed)
        coverage[zero] = interval_coverage(samples[zero], observed)
    centroid_error = np.full(n, np.nan)
    exact_centroid = np.column_stack([exact.centroid_x, exact.centroid_y])
    with_area = np.flatnonzero((sigma == 0) & np.all(np.isfinite(exact_centroid), axis=1))
    if len(with_area):
        centroid_error[with_area] = 100.0 * relative_centroid_error(
            centroid[with_area].mean(), exact_centroid[with_area], frames.a[with_area], frames.b[with_area])
    vertices = shapely.get_num_coordinates(frames.a) + shapely.get_num_coordinates(frames.b)
    part = {
        "index_a": chunk.index_a, "index_b": chunk.index_b, "sigma": sigma,
        "exact_iou": exact.iou, "exact_cover_a": exact.cover_a, "exact_cover_b": exact.cover_b,
        "iou_mean": summary.iou_mean, "iou_sd": summary.iou_sd, "cover_a_mean": summary.cover_a_mean,
        "cover_b_mean": summary.cover_b_mean, "q_low": q_low, "q_high": q_high, "coverage": coverage,
        "pit_coverage": pit_cover, "crps": crps, "centroid_error_pct": centroid_error, "vertices": vertices,
    }
    return part, pit


def monte_carlo_rows(index_a, sigma, mc_pairs, seed):
    """Rows (sorted) of the σ > 0 pairs that get Monte-Carlo truth: whole input features in a seeded
    random order until about ``mc_pairs`` pairs (the last feature is taken whole)."""
    index_a = np.asarray(index_a)
    positive = np.flatnonzero(np.asarray(sigma) > 0)
    if not len(positive) or mc_pairs <= 0:
        return np.zeros(0, dtype=np.int64)
    features, counts = np.unique(index_a[positive], return_counts=True)
    order = _stream(seed, "mc_groups").permutation(len(features))
    cumulative = np.cumsum(counts[order])
    take = int(np.searchsorted(cumulative, mc_pairs, side="left")) + 1
    chosen = features[order[:take]]
    return positive[np.isin(index_a[positive], chosen)].astype(np.int64)


def _monte_carlo(model, lonlat_a, lonlat_b, model_a, model_b, pairs, rows, mc_samples, model_samples, seed, progress,
                 cancelled):
    """Monte-Carlo truth on ``rows``, written into ``pairs``; PIT and reference CRPS. None when cancelled."""
    empty = {"pit": np.zeros((0, mc_samples)), "crps_oracle": np.zeros(0), "crps_static": np.zeros(0)}
    if not len(rows):
        return empty
    progress(0.6, f"Monte-Carlo truth: {len(rows)} pairs × {mc_samples} displacements")
    index_a, index_b, sigma = pairs["index_a"][rows], pairs["index_b"][rows], pairs["sigma"][rows]
    frames = project_pairs(lonlat_a, lonlat_b, index_a, index_b)  # as iter_pair_chunks made them
    model_frames = project_pairs(model_a, model_b, index_a, index_b, centers=(frames.lon0, frames.lat0),
                                 repair=False)
    overlap, _ = model.predict_frames(model_frames.a, model_frames.b, sigma, model_geometries=True)
    forecast = model_iou_samples(overlap, model_samples)
    truth = {key: np.empty((len(rows), mc_samples)) for key in ("iou", "cover_a", "cover_b")}
    for k, start in enumerate(range(0, len(rows), MC_BATCH)):
        if cancelled():
            return None
        batch = slice(start, min(len(rows), start + MC_BATCH))
        batch_seed = int(np.random.SeedSequence(int(seed), spawn_key=(STREAMS["mc_displacements"], k))
                         .generate_state(1)[0])
        mc = monte_carlo_overlap(frames.a[batch], frames.b[batch], sigma[batch], mc_samples, seed=batch_seed)
        for key, values in truth.items():
            values[batch] = getattr(mc, key)
        progress(0.6 + 0.35 * batch.stop / len(rows))
    if cancelled():
        return None
    iou = truth["iou"]
    pairs["truth_iou"][rows] = iou.mean(axis=1)
    pairs["truth_cover_a"][rows] = truth["cover_a"].mean(axis=1)
    pairs["truth_cover_b"][rows] = truth["cover_b"].mean(axis=1)
    pairs["monte_carlo"][rows] = True
    pairs["varies"][rows] = np.ptp(iou, axis=1) > 1e-9
    pairs["coverage"][rows] = interval_coverage(forecast, iou)
    pit = randomised_pit(forecast, iou, _stream(seed, "mc_pit"))
    pairs["pit_coverage"][rows] = pit_coverage(pit)
    pairs["crps"][rows] = crps_from_samples(forecast, iou)
    exact0 = pairs["exact_iou"][rows]
    return {"pit": pit, "crps_oracle": oracle_crps(iou), "crps_static": np.mean(np.abs(iou - exact0[:, None]), axis=1)}


# ==========================================================================
# Metrics.
# ==========================================================================
def _mean(values):
    values = np.asarray(values, float)
    return float(values.mean()) if values.size else None


def _quantile(values, q):
    values = np.asarray(values, float)
    return float(np.quantile(values, q)) if values.size else None


def metrics(evaluation):
    """The metrics table: a dict of plain numbers (None where not measurable)."""
    p = evaluation.pairs
    truth = p["has_truth"]
    zero = p["sigma"] == 0
    mc = p["monte_carlo"]
    varies = truth & p["varies"]
    out = {
        "n_pairs": int(evaluation.n_pairs), "n_truth": int(truth.sum()), "n_exact": int(zero.sum()),
        "n_positive": int((p["sigma"] > 0).sum()),
        "n_monte_carlo": int(mc.sum()), "n_input_features": len(np.unique(p["index_a"])),
        "n_varies": int(varies.sum()),
        "iou_mae": mean_absolute_error(p["iou_mean"][truth], p["truth_iou"][truth]) if truth.any() else None,
        "cover_a_mae": (mean_absolute_error(p["cover_a_mean"][truth], p["truth_cover_a"][truth])
                        if truth.any() else None),
        "cover_b_mae": (mean_absolute_error(p["cover_b_mean"][truth], p["truth_cover_b"][truth])
                        if truth.any() else None),
        "iou_mae_sigma0": mean_absolute_error(p["iou_mean"][zero], p["exact_iou"][zero]) if zero.any() else None,
        "iou_mae_monte_carlo": mean_absolute_error(p["iou_mean"][mc], p["truth_iou"][mc]) if mc.any() else None,
        "iou_max_error": float(np.max(np.abs(p["iou_mean"][truth] - p["truth_iou"][truth]))) if truth.any() else None,
        "interval_coverage": _mean(p["coverage"][truth]),
        "interval_coverage_varies": _mean(p["coverage"][varies]),
        "pit_coverage": _mean(p["pit_coverage"][truth]),
        "interval_coverage_monte_carlo": _mean(p["coverage"][mc]),
        "pit_coverage_monte_carlo": _mean(p["pit_coverage"][mc]),
        "crps": _mean(p["crps"][truth]),
        "crps_monte_carlo": _mean(p["crps"][mc]),
        "crps_oracle": _mean(evaluation.mc_crps_oracle),
        "crps_static": _mean(evaluation.mc_crps_static),
        "iou_sd_mean": _mean(p["iou_sd"][truth]),
    }
    errors = p["centroid_error_pct"][np.isfinite(p["centroid_error_pct"])]
    out.update(n_centroid=int(errors.size), centroid_median_pct=_quantile(errors, 0.5),
               centroid_p90_pct=_quantile(errors, 0.9))
    match = None
    if truth.any():
        match = best_match_agreement(p["index_a"][truth], p["truth_iou"][truth], p["iou_mean"][truth])
    out["best_match"] = None if match is None else {
        key: value for key, value in match.items() if not key.startswith("_")}
    out["best_match_agreement"] = None if match is None else _finite_or_none(match["agreement"])
    if match is not None:
        rows = np.flatnonzero(truth)
        wrong = np.flatnonzero(match["_exact_best"] != match["_predicted_best"])
        out["mismatches"] = [{"truth_row": int(rows[match["_exact_best"][i]]),
                              "predicted_row": int(rows[match["_predicted_best"][i]])} for i in wrong[:10]]
    else:
        out["mismatches"] = []
    # The model card's matching target is for σ = 0: the same measure on the σ = 0 features alone (σ is per
    # input feature, so each feature's candidates are all σ = 0 or all σ > 0).
    match0 = best_match_agreement(p["index_a"][zero], p["exact_iou"][zero], p["iou_mean"][zero]) if zero.any() \
        else None
    out["best_match_sigma0_used"] = 0 if match0 is None else int(match0["used"])
    out["best_match_agreement_sigma0"] = None if match0 is None else _finite_or_none(match0["agreement"])
    return out


def _finite_or_none(value):
    return float(value) if value is not None and np.isfinite(value) else None


def grouped_table(evaluation, codes, labels):
    """Rows {group, n, iou_mae, coverage, crps} over the pairs with truth, per group code."""
    p = evaluation.pairs
    truth = p["has_truth"]
    rows = []
    for code, label in enumerate(labels):
        sel = truth & (codes == code)
        rows.append({"group": label, "n": int(sel.sum()),
                     "iou_mae": mean_absolute_error(p["iou_mean"][sel], p["truth_iou"][sel]) if sel.any() else None,
                     "coverage": _mean(p["coverage"][sel]), "crps": _mean(p["crps"][sel])})
    return rows


def sigma_groups(evaluation, per_feature):
    """(codes, labels) of the σ buckets: the model card's buckets with a σ field, else one group."""
    sigma = evaluation.pairs["sigma"]
    if per_feature:
        return sigma_bucket_codes(sigma), sigma_bucket_labels()
    value = evaluation.settings["sigma_max"]
    return np.zeros(len(sigma), dtype=int), [f"σ = {value:g} m"]


def vertex_groups(evaluation):
    return bucket_codes(evaluation.pairs["vertices"], VERTEX_EDGES), bucket_labels(VERTEX_EDGES, " vertices")


# ==========================================================================
# Targets: which of the model card's targets this run measures, and the verdict.
# ==========================================================================
#: The model card's targets that a run on two layers measures: TARGETS key -> (metrics key of the value it is
#: judged on, the truth it needs: "exact" (σ = 0 pairs) or "monte_carlo" (σ > 0 pairs with Monte-Carlo truth)).
LAYER_TARGETS = {
    "iou_mae_sigma0": ("iou_mae_sigma0", "exact"),
    "matching_agreement": ("best_match_agreement_sigma0", "exact"),
    "interval_coverage": ("interval_coverage_monte_carlo", "monte_carlo"),
    "pit_coverage": ("pit_coverage_monte_carlo", "monte_carlo"),
    "centroid_median_pct": ("centroid_median_pct", "exact"),
}
#: Why a target is not measured although its kind of truth exists.
_EMPTY_REASON = {
    "matching_agreement": "no σ = 0 input feature whose best exact IoU is above 0 and untied",
    "centroid_median_pct": "no σ = 0 pair whose intersection has area",
}
_SHARE_AS_PERCENT = {"matching_agreement"}
_UNIT = {"centroid_median_pct": " %"}
_DIGITS = {"interval_coverage": 3, "pit_coverage": 3, "centroid_median_pct": 3}
STATUSES = ("met", "missed", "not measured")
SIGMA0_EXPLANATION = (
    "σ = 0 for every pair: the model reads the exact overlap here, because its descriptors contain the overlap of "
    "the two undisplaced geometries. So the σ = 0 metrics check that reading, not the model's uncertainty. The "
    "σ > 0 targets (interval and PIT coverage) are not measured, and the plots that would collapse to a spike at "
    "σ = 0 (calibration curve, PIT histogram, interval coverage by σ) are left out. Set a positional uncertainty "
    "σ > 0 to measure the uncertainty against Monte-Carlo truth.")


def missing_truth_reason(needs, m, settings):
    """Why there is no truth of kind ``needs`` ("exact", "monte_carlo" or "any"), or None when there is."""
    if not m["n_pairs"]:
        return "no candidate pairs"
    if needs == "exact":
        return None if m["n_exact"] else "no σ = 0 pairs: σ > 0 for every input feature"
    if needs == "any" and m["n_truth"]:
        return None
    if needs == "monte_carlo" and m["n_monte_carlo"]:
        return None
    if not m["n_positive"]:
        return "σ = 0 for every pair: no displacement, so no Monte-Carlo truth"
    if settings.get("mc_pairs", 0) <= 0:
        return "Monte-Carlo pairs set to 0: no truth at σ > 0"
    return "no Monte-Carlo truth"


def target_text(key):
    """The bound of a :data:`TARGETS` entry as the report shows it (``≤ 0.02``, ``0.85–0.95``, ``≥ 99 %``)."""
    _, kind, bound = TARGETS[key]

    def show(value):
        return f"{100 * value:g} %" if key in _SHARE_AS_PERCENT else f"{value:g}{_UNIT.get(key, '')}"

    if kind == "max":
        return f"≤ {show(bound)}"
    if kind == "min":
        return f"≥ {show(bound)}"
    return f"{show(bound[0])}–{show(bound[1])}"


def target_value_text(key, value):
    if value is None:
        return "—"
    if key in _SHARE_AS_PERCENT:
        return f"{100 * value:.2f} %"
    return f"{value:.{_DIGITS.get(key, 4)}f}{_UNIT.get(key, '')}"


def target_verdicts(m, settings=None):
    """One dict per :data:`LAYER_TARGETS` entry: key, metric (the card's description), value, value_text, target
    (text), status ('met' / 'missed' / 'not measured', :func:`.metrics.target_status`) and reason (why not
    measured, else None)."""
    settings = settings or {}
    out = []
    for key, (name, needs) in LAYER_TARGETS.items():
        value = m.get(name)
        status = target_status(key, value)
        reason = None
        if status == "not measured":
            reason = missing_truth_reason(needs, m, settings) or _EMPTY_REASON.get(key, "nothing to measure it on")
        out.append({"key": key, "metric": TARGETS[key][0], "value": value, "value_text": target_value_text(key, value),
                    "target": target_text(key), "status": status, "reason": reason})
    return out


def verdict_summary(verdicts):
    """(css class, text) of the verdict: how many targets were met, then what was missed (value and target) and
    what was not measured (grouped by reason)."""
    count = {status: sum(v["status"] == status for v in verdicts) for status in STATUSES}
    measured = count["met"] + count["missed"]
    if not measured:
        text = "No target measured"
    elif count["not measured"]:
        text = f"{count['met']} of {measured} measured targets met ({count['not measured']} not measured)"
    else:
        text = f"{count['met']} of {len(verdicts)} targets met"
    missed = [f"{v['metric']} {v['value_text']} (target {v['target']})" for v in verdicts if v["status"] == "missed"]
    if missed:
        text += "; missed: " + ", ".join(missed)
    reasons = {}
    for v in verdicts:
        if v["status"] == "not measured":
            reasons.setdefault(v["reason"], []).append(v["metric"])
    for reason, names in reasons.items():
        text += f"; not measured ({reason}): " + ", ".join(names)
    css = "missed" if missed else "met" if count["met"] else "not-measured"
    return css, text + "."


def sigma_zero_only(m):
    """Every pair has σ = 0 (so no Monte-Carlo truth): the uncertainty is not measured."""
    return bool(m["n_pairs"]) and not m["n_positive"]
