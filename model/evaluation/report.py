"""Evaluate a relevance model on two layers against exact overlaps, and write an HTML report.

Used by ``overlaprelevance:evaluatemodel``; plain NumPy / shapely / pyproj and
matplotlib (drawn with the Agg canvas, no GUI, no pyplot state), never QGIS or
TensorFlow. The metric functions are those of the model card
(:mod:`.metrics`), so the numbers mean the same thing in both.

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

import base64
import html
import io
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


# ==========================================================================
# Figures (matplotlib's Agg canvas: no GUI, no pyplot, safe off the main thread).
# ==========================================================================
TITLE_SCATTER = "Predicted vs true IoU"
TITLE_CALIBRATION = "Calibration"
TITLE_COVERAGE = "Interval coverage by σ"
TITLE_COMPLEXITY = "Error by geometry complexity"


def _figure(width=6.4, height=4.4):
    import warnings

    with warnings.catch_warnings():  # a Debian matplotlib beside a pip one warns about its 3D axes, unused here
        warnings.filterwarnings("ignore", message="Unable to import Axes3D")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _plain_ticks(figure):
    """No hidden offset (“+1e3”) or multiplier (“1e−7”) in an axis corner: every number is in its tick label."""
    from matplotlib.ticker import ScalarFormatter

    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                formatter.set_useOffset(False)
                formatter.set_scientific(False)
    return figure


def _png(figure):
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(axes, text="No pairs with truth"):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def figure_predicted_vs_truth(evaluation, seed=0):
    p = evaluation.pairs
    rows = np.flatnonzero(p["has_truth"])
    if len(rows) > SCATTER_POINTS:
        rows = np.sort(_stream(seed, "scatter").choice(rows, SCATTER_POINTS, replace=False))
    figure = _figure(6.4, 5.6)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.6", lw=1, zorder=1)
    for mask, label, colour in ((~p["monte_carlo"][rows], "σ = 0: exact IoU", "tab:blue"),
                                (p["monte_carlo"][rows], "σ > 0: Monte-Carlo mean IoU", "tab:orange")):
        sel = rows[mask]
        if not len(sel):
            continue
        mean = p["iou_mean"][sel]
        error = np.vstack([np.maximum(mean - p["q_low"][sel], 0), np.maximum(p["q_high"][sel] - mean, 0)])
        axes.errorbar(p["truth_iou"][sel], mean, yerr=error, fmt="o", ms=3, lw=0.6, alpha=0.6, color=colour,
                      ecolor=colour, label=f"{label} ({len(sel)})", zorder=2)
    if not len(rows):
        _no_data(axes)
    axes.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="true IoU", ylabel="predicted mean IoU",
             title="Predicted vs true IoU (bars: central 90 % interval, 5–95 %)")
    axes.set_aspect("equal")
    if len(rows):
        axes.legend(loc="upper left", fontsize=8)
    return _plain_ticks(figure)


def calibration_curve(evaluation, levels=CALIBRATION_LEVELS):
    """Observed share of the Monte-Carlo truth (σ > 0) inside the model's central interval of each nominal level
    (pairs weighted equally, each by the share of its samples), from the randomised PIT. σ = 0 pairs are left
    out: there the model reads the exact overlap, and their PIT says nothing about the uncertainty."""
    if not evaluation.mc_pit.size:
        return levels, np.full(len(levels), np.nan)
    distance = np.abs(evaluation.mc_pit - 0.5)  # (k, m)
    observed = np.mean(distance[None, :, :] <= np.asarray(levels)[:, None, None] / 2, axis=2).mean(axis=1)
    return levels, observed


def pit_histogram(evaluation, bins=10):
    """Density of the randomised PIT values of the Monte-Carlo truth (σ > 0; each pair weighs 1), ``bins``
    equal bins on [0, 1]."""
    pit = evaluation.mc_pit
    if not pit.size:
        return np.zeros(bins), np.linspace(0.0, 1.0, bins + 1)
    counts, edges = np.histogram(pit.ravel(), bins=bins, range=(0.0, 1.0))
    return counts / counts.sum() * bins, edges


def figure_calibration(evaluation):
    figure = _figure(10.0, 4.2)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    levels, observed = calibration_curve(evaluation)
    left.plot([0, 1], [0, 1], color="0.6", lw=1)
    if np.isfinite(observed).any():
        left.plot(levels, observed, "o-", color="tab:blue")
    else:
        _no_data(left, "No Monte-Carlo truth")
    left.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="nominal level of the central interval",
             ylabel="share of the truth inside it", title="Calibration curve (σ > 0)")
    density, edges = pit_histogram(evaluation)
    if density.sum() > 0:
        right.bar(edges[:-1], density, width=np.diff(edges), align="edge", color="tab:blue", edgecolor="white")
    else:
        _no_data(right, "No Monte-Carlo truth")
    right.axhline(1.0, color="0.3", lw=1, ls="--")
    right.set(xlim=(0, 1), xlabel="randomised PIT", ylabel="density",
              title="PIT histogram, σ > 0 (flat when calibrated)")
    return _plain_ticks(figure)


def _bars(axes, labels, values, counts, ylabel, title, colour="tab:blue"):
    x = np.arange(len(labels))
    heights = [np.nan if v is None else v for v in values]
    axes.bar(x, np.nan_to_num(heights), width=0.6, color=colour)
    axes.set_xlim(-0.75 if len(x) > 1 else -1.5, len(x) - 0.25 if len(x) > 1 else 1.5)
    for xi, height, count in zip(x, heights, counts):
        text = f"n={count}" if np.isfinite(height) else "n=0"
        axes.annotate(text, (xi, np.nan_to_num(height)), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 2), textcoords="offset points")
    axes.set_xticks(x)
    axes.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    axes.set(ylabel=ylabel, title=title)


def figure_coverage_by_sigma(evaluation, per_feature):
    codes, labels = sigma_groups(evaluation, per_feature)
    table = grouped_table(evaluation, codes, labels)
    figure = _figure(6.4, 4.4)
    axes = figure.add_subplot()
    low, high = TARGETS["interval_coverage"][2]
    axes.axhspan(low, high, color="tab:green", alpha=0.15, label=f"model card target {low:g}–{high:g}")
    axes.axhline(INTERVAL_LEVEL, color="tab:green", lw=1)
    _bars(axes, [r["group"] for r in table], [r["coverage"] for r in table], [r["n"] for r in table],
          "share of the truth inside the interval", "Coverage of the central 90 % interval by σ")
    axes.set_ylim(0, 1.08)
    axes.legend(loc="lower right", fontsize=8)
    return _plain_ticks(figure)


def figure_error_by_complexity(evaluation):
    codes, labels = vertex_groups(evaluation)
    table = grouped_table(evaluation, codes, labels)
    figure = _figure(6.4, 4.4)
    axes = figure.add_subplot()
    _bars(axes, [r["group"] for r in table], [r["iou_mae"] for r in table], [r["n"] for r in table],
          "MAE of the mean IoU", "Error by geometry complexity (vertices of A + B)", colour="tab:purple")
    return _plain_ticks(figure)


def omitted_plots(evaluation):
    """[(title, reason)] of the plots the report leaves out: those of the uncertainty, without Monte-Carlo truth
    (at σ = 0 they collapse to a spike; with no truth at σ > 0 they are empty)."""
    m = evaluation.metrics
    if m["n_monte_carlo"]:
        return []
    reason = missing_truth_reason("monte_carlo", m, evaluation.settings)
    return [(TITLE_CALIBRATION, reason), (TITLE_COVERAGE, reason)]


def figures(evaluation, per_feature_sigma=False):
    """[(title, caption, base64 PNG)] of the report's plots, less :func:`omitted_plots`."""
    left_out = {title for title, _ in omitted_plots(evaluation)}
    which = "Pairs with Monte-Carlo truth (σ > 0)"
    if evaluation.metrics["n_exact"]:
        which += "; the σ = 0 pairs are left out (there the model reads the exact overlap)"
    which += ". "
    made = [
        (TITLE_SCATTER,
         ("Each point is a candidate pair with truth: the predicted mean IoU against the exact IoU (σ = 0) or "
          "the Monte-Carlo mean IoU (σ > 0); bars span the model's central 90 % interval (5 %–95 % quantiles)."),
         lambda: figure_predicted_vs_truth(evaluation, evaluation.settings.get("seed", 0))),
        (TITLE_CALIBRATION,
         which + "Left: for each nominal level, the share of the truth inside the model's central interval of that level "
         "(on the diagonal when calibrated). Right: histogram of the randomised probability integral transform "
         "of the truth under the predicted distribution (flat when calibrated; a hump means too wide, a U too "
         "narrow).",
         lambda: figure_calibration(evaluation)),
        (TITLE_COVERAGE,
         "Share of the truth inside the central 90 % interval, per positional-uncertainty bucket "
         + ("(per-feature σ field)." if per_feature_sigma else "(one σ for all features)."),
         lambda: figure_coverage_by_sigma(evaluation, per_feature_sigma)),
        (TITLE_COMPLEXITY,
         ("Mean absolute error of the predicted mean IoU per bucket of vertex count (input plus reference "
          "feature, full detail)."),
         lambda: figure_error_by_complexity(evaluation)),
    ]
    return [(title, caption, _png(make())) for title, caption, make in made if title not in left_out]


# ==========================================================================
# HTML.
# ==========================================================================
@dataclass(frozen=True)
class Cell:
    """A table cell with a CSS class."""

    text: str
    css: str = ""


def _fmt(value, digits=4, percent=False):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if percent:
        return f"{100 * value:.2f} %"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def status_cell(status, reason=None):
    """The status cell: class ``status met`` / ``status missed`` / ``status not-measured`` / ``status no-target``."""
    return Cell(f"{status}: {reason}" if reason else status, "status " + status.replace(" ", "-"))


def metric_rows(m, settings=None):
    """(metric, value, pairs, model card target, status :class:`Cell`) rows of the metrics table.

    The rows of a :data:`LAYER_TARGETS` target show the value it is judged on and its status; a row whose
    truth is missing is 'not measured' with the reason; the others have no target.
    """
    settings = settings or {}
    verdicts = {v["key"]: v for v in target_verdicts(m, settings)}
    bm = m["best_match"] or {}
    rows = []

    def add(label, value, pairs, target="", needs="any", present=None):
        present = value != "—" if present is None else present
        reason = None if present else missing_truth_reason(needs, m, settings)
        rows.append((label, value, pairs, target,
                     status_cell("not measured", reason) if reason else status_cell("no target")))

    def judged(key, label, value, pairs, target_note=""):
        v = verdicts[key]
        rows.append((label, value, pairs, v["target"] + target_note, status_cell(v["status"], v["reason"])))

    mixed = m["n_exact"] > 0 and m["n_monte_carlo"] > 0
    add("MAE of the mean IoU vs truth (exact at σ = 0, Monte-Carlo mean at σ > 0)", _fmt(m["iou_mae"]),
        _fmt(m["n_truth"]))
    add("MAE of the mean coverage of the input feature", _fmt(m["cover_a_mae"]), _fmt(m["n_truth"]))
    add("MAE of the mean coverage of the reference feature", _fmt(m["cover_b_mae"]), _fmt(m["n_truth"]))
    judged("iou_mae_sigma0", "σ = 0: MAE of the mean IoU vs exact", _fmt(m["iou_mae_sigma0"]), _fmt(m["n_exact"]))
    add("σ > 0: MAE of the mean IoU vs Monte-Carlo mean", _fmt(m["iou_mae_monte_carlo"]), _fmt(m["n_monte_carlo"]),
        needs="monte_carlo")
    add("Largest IoU error", _fmt(m["iou_max_error"]), _fmt(m["n_truth"]))
    if m["n_monte_carlo"]:
        add("Best-match agreement, all input features with truth (best truth IoU above 0 and untied)",
            _fmt(m["best_match_agreement"], percent=True), f"{bm.get('used', 0):,} features")
    judged("matching_agreement", "σ = 0: best-match agreement (input features whose best exact IoU is above 0 and "
           "untied)", _fmt(m["best_match_agreement_sigma0"], percent=True),
           f"{m['best_match_sigma0_used']:,} features", " (synthetic groups)")
    add("Best match: mean IoU lost by the predicted best", _fmt(bm.get("mean_regret"), 5), "")
    judged("interval_coverage", "σ > 0: coverage of the central 90 % interval (Monte-Carlo truth)",
           _fmt(m["interval_coverage_monte_carlo"], 3), _fmt(m["n_monte_carlo"]))
    judged("pit_coverage", "σ > 0: PIT coverage of the central 90 % (Monte-Carlo truth)",
           _fmt(m["pit_coverage_monte_carlo"], 3), _fmt(m["n_monte_carlo"]))
    if mixed:
        add("Coverage of the central 90 % interval, all pairs with truth", _fmt(m["interval_coverage"], 3),
            _fmt(m["n_truth"]))
        add("PIT coverage of the central 90 %, all pairs with truth", _fmt(m["pit_coverage"], 3), _fmt(m["n_truth"]))
    if m["n_monte_carlo"]:
        add("Coverage of the central 90 % interval, pairs with truth that is not an atom at 0",
            _fmt(m["interval_coverage_varies"], 3), _fmt(m["n_varies"]))
    add("CRPS of the IoU distribution, all pairs with truth", _fmt(m["crps"]), _fmt(m["n_truth"]), "lower is better")
    add("σ > 0: CRPS model / oracle / point forecast at the undisplaced IoU",
        f"{_fmt(m['crps_monte_carlo'])} / {_fmt(m['crps_oracle'])} / {_fmt(m['crps_static'])}",
        _fmt(m["n_monte_carlo"]), "oracle: Monte-Carlo sample against itself", needs="monte_carlo",
        present=m["crps_monte_carlo"] is not None)
    judged("centroid_median_pct", "σ = 0: centroid error, median / p90 (% of pair scale)",
           f"{_fmt(m['centroid_median_pct'], 3)} / {_fmt(m['centroid_p90_pct'], 3)}", _fmt(m["n_centroid"]))
    return rows


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
th[scope="row"] { font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.status.met { color: #1b5e20; background: #e8f5e9; }
td.status.met::before { content: "\\2714\\00a0"; }
td.status.missed { color: #b71c1c; background: #fdecea; font-weight: bold; }
td.status.missed::before { content: "\\2718\\00a0"; }
td.status.not-measured { color: #666; font-style: italic; }
td.status.no-target { color: #999; }
.verdict { border: 2px solid #999; border-radius: 4px; padding: 0.5em 1em; margin: 1em 0 1.5em; background: #f4f4f4; }
.verdict.met { border-color: #2e7d32; background: #e8f5e9; }
.verdict.missed { border-color: #c62828; background: #fdecea; }
.verdict .summary { font-size: 1.1em; font-weight: bold; }
.verdict .fine { color: #555; font-size: 0.9em; }
.sigma0 { border-left: 4px solid #1565c0; background: #e8f0fb; padding: 0.5em 1em; }
.omitted { color: #555; font-style: italic; }
figure { margin: 1.5em 0; } figcaption { color: #555; max-width: 60em; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _cell(tag, cell, css="", extra=""):
    if isinstance(cell, Cell):
        css = " ".join(filter(None, (css, cell.css)))
        cell = cell.text
    attributes = (f' class="{css}"' if css else "") + extra
    return f"<{tag}{attributes}>{html.escape(str(cell))}</{tag}>"


def _table(header, rows, numeric=(), row_headers=False, css=""):
    """An HTML table. header: column titles, or None for none (no empty header row); row_headers: the first cell
    of each row is a ``<th scope="row">``; cells are text or :class:`Cell`."""
    out = [f'<table class="{css}">' if css else "<table>"]
    if header:
        out.append("<tr>" + "".join(_cell("th", h) for h in header) + "</tr>")
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if row_headers and i == 0:
                cells.append(_cell("th", cell, extra=' scope="row"'))
            else:
                cells.append(_cell("td", cell, "num" if i in numeric else ""))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


#: Labels of the stages in ``LayerEvaluation.seconds``.
_STAGES = {"exact_and_model": "exact overlap and model", "monte_carlo": "Monte Carlo"}


def _timings(evaluation):
    """'stage 1.2 s, ...' of the stages that ran (a Monte-Carlo stage without Monte-Carlo pairs did not)."""
    ran = {"monte_carlo": evaluation.metrics["n_monte_carlo"] > 0}
    return ", ".join(f"{_STAGES.get(name, name.replace('_', ' '))} {value:.1f} s"
                     for name, value in evaluation.seconds.items() if ran.get(name, True))


def _truth_text(m, s):
    if m["n_monte_carlo"]:
        return (f"{m['n_truth']:,}: {m['n_exact']:,} exact (σ = 0), {m['n_monte_carlo']:,} Monte-Carlo (σ > 0, "
                f"{s['mc_samples']} displacements each, subset of about {s['mc_pairs']} pairs as whole input "
                f"features, seed {s['seed']})")
    if not m["n_positive"]:
        return f"{m['n_truth']:,}, all exact (σ = 0 for every pair: no Monte Carlo run)"
    why = "Monte-Carlo pairs set to 0" if s.get("mc_pairs", 0) <= 0 else "no pair chosen"
    return (f"{m['n_truth']:,}, exact (σ = 0); no Monte Carlo run ({why}), so the {m['n_positive']:,} pairs at "
            "σ > 0 have no truth")


def _verdict_html(m, settings):
    css, text = verdict_summary(target_verdicts(m, settings))
    return (f'<div class="verdict {css}" id="verdict"><p class="summary">Verdict: {html.escape(text)}</p>'
            '<p class="fine">The targets are those of the model card (<code>model/MODEL_CARD.md</code>), fixed for '
            "its held-out synthetic set: on your layers they are for orientation.</p></div>")


def render_html(evaluation, info, images=None, keys_a=None, keys_b=None):
    """The report as one HTML document.

    info : dict with ``model`` (dict: path, sha256, training summary), ``input`` and
        ``reference`` (layer descriptions), ``sigma`` (text), and optional ``notes`` (list of str).
    images : [(title, caption, base64 PNG)] from :func:`figures` (None: no plots, with a note why
        in ``info['notes']``).
    keys_a, keys_b : feature keys of the two layers (for the mismatch table).

    Structure: the verdict (``div.verdict``, class met / missed / not-measured), at σ = 0 for every pair
    the explanation (``p.sigma0``), the setup table (no header row), the metrics table (its last column
    ``td.status`` met / missed / not-measured / no-target), the plots, the grouped tables, the mismatches.
    """
    m = evaluation.metrics
    p = evaluation.pairs
    s = evaluation.settings
    model = info.get("model", {})
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Relevance model evaluation</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>Relevance model evaluation</h1>",
           f"<p>Generated {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))} by overlap_relevance.</p>",
           _verdict_html(m, s)]
    if sigma_zero_only(m):
        out.append(f'<p class="sigma0">{html.escape(SIGMA0_EXPLANATION)}</p>')
    setup = [
        ("Model file", model.get("path", "")),
        ("Weights SHA-256", model.get("sha256", "")),
        ("Model training", model.get("training", "")),
        ("Input layer", info.get("input", "")),
        ("Reference layer", info.get("reference", "")),
        ("Positional uncertainty σ", info.get("sigma", "")),
        ("Search distance", f"{s['search_distance_m']:g} m (widened to at least 3σ per feature)"),
        ("Candidate pairs", f"{m['n_pairs']:,} of {m['n_input_features']:,} input features"),
        ("Pairs with truth", _truth_text(m, s)),
        ("Model distribution", f"{s['model_samples']} quasi-random points per pair"),
        ("Time", _timings(evaluation)),
    ]
    out.append("<h2>Setup</h2>")
    out.append(_table(None, setup, row_headers=True, css="setup"))
    for note in info.get("notes", []):
        out.append(f"<p><b>Note:</b> {html.escape(note)}</p>")
    out.append("<h2>Metrics</h2>")
    out.append("<p>As in the model card (<code>model/MODEL_CARD.md</code>); the status column says whether a "
               "value meets the card's target (fixed for the held-out synthetic set).</p>")
    out.append(_table(["Metric", "Value", "Pairs", "Model card target", "Status"], metric_rows(m, s),
                      numeric=(1, 2), css="metrics"))
    if images:
        out.append("<h2>Plots</h2>")
        for title, caption, png in images:
            out.append(f'<figure><h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                       f'src="data:image/png;base64,{png}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        shown = {title for title, _, _ in images}
        for title, reason in omitted_plots(evaluation):
            if title not in shown:
                out.append(f'<p class="omitted">{html.escape(title)}: left out ({html.escape(reason)}).</p>')
    for title, (codes, labels) in (("By σ", sigma_groups(evaluation, info.get("per_feature_sigma", False))),
                                   ("By vertex count (A + B)", vertex_groups(evaluation))):
        rows = [[r["group"], f"{r['n']:,}", _fmt(r["iou_mae"]), _fmt(r["coverage"], 3), _fmt(r["crps"])]
                for r in grouped_table(evaluation, codes, labels)]
        out.append(f"<h3>{html.escape(title)}</h3>")
        out.append(_table(["group", "pairs with truth", "IoU MAE", "90 % coverage", "CRPS"], rows,
                          numeric=(1, 2, 3, 4)))
    if m["mismatches"]:
        def key(keys, index):
            return str(keys[index]) if keys is not None else f"feature {index}"

        rows = []
        for mismatch in m["mismatches"]:
            t, q = mismatch["truth_row"], mismatch["predicted_row"]
            rows.append([key(keys_a, p["index_a"][t]),
                         (f"{key(keys_b, p['index_b'][t])} (true {p['truth_iou'][t]:.3f}, predicted "
                          f"{p['iou_mean'][t]:.3f})"),
                         (f"{key(keys_b, p['index_b'][q])} (true {p['truth_iou'][q]:.3f}, predicted "
                          f"{p['iou_mean'][q]:.3f})")])
        out.append(f"<h3>Best-match mismatches (first {len(rows)})</h3>")
        out.append(_table(["Input feature", "True best (IoU)", "Predicted best (IoU)"], rows))
    out.append("<h2>How the metrics are computed</h2><ul>"
               "<li>Truth: the exact overlap of each candidate pair in its local equal-area frame at σ = 0; at "
               "σ &gt; 0 the mean over Monte-Carlo displacements d ~ N(0, σ²I₂) of the reference feature.</li>"
               "<li>Predictions: the model exactly as scoring runs it (model geometries, same frames); mean IoU "
               f"and coverages from {s['model_samples']} quasi-random points of the predicted mixture.</li>"
               "<li>Status: each model card target is judged on the pairs it is for: the σ = 0 targets on the "
               "σ = 0 pairs (exact truth), the σ &gt; 0 ones (interval and PIT coverage) on the pairs with "
               "Monte-Carlo truth; a target without such pairs is not measured. The calibration curve and PIT "
               "histogram use the Monte-Carlo pairs only.</li>"
               "<li>Interval coverage: share of the truth (the exact value, or each Monte-Carlo sample) inside "
               "the closed [5 %, 95 %] interval of the predicted IoU, averaged over pairs; a pair whose truth and "
               "prediction are both an atom at 0 counts as covered, so the table also gives the coverage over "
               "pairs whose truth is not such an atom.</li>"
               "<li>PIT: randomised probability integral transform u = F(y−) + V·(F(y) − F(y−)).</li>"
               "<li>CRPS: exact CRPS of the empirical predicted IoU distribution, averaged over the truth "
               "values.</li>"
               "<li>Best match: per input feature, the candidate with the highest predicted mean IoU against the "
               "one with the highest true IoU; features whose best true IoU is 0 or tied are left out.</li>"
               "<li>Centroid error: distance between the predicted intersection centroid (mixture mean) and the "
               "exact one, relative to the pair scale (the larger side of the bounding box of A ∪ B), σ = 0 pairs "
               "whose intersection has area.</li></ul>")
    out.append("</body></html>")
    return "\n".join(out)
