"""The measures of the model card and the HTML report: pure NumPy, vectorised.

Point errors, best-match agreement, interval and PIT coverage, CRPS, the buckets the
tables group by, and the targets (fixed before measuring) with their status.
"""

from __future__ import annotations

import math

import numpy as np

from ..encoding import pair_scale_and_centre
from ..scoring import QMC_SEED, iou_from_covers

INTERVAL_LEVEL = 0.9
TIE_TOLERANCE = 1e-6
#: Groups whose two best exact IoUs differ by less than this are reported apart as close calls.
CLOSE_MARGIN = 0.02
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
#: Targets of the yardstick (:mod:`.yardstick`), issue 29's: the plugin's σ > 0 path against exact randomised QMC
#: at 256 GEOS overlays, its cost, its speed at equal accuracy, the network against the best method without it.
YARDSTICK_TARGETS = {
    "yardstick_mae_mean": ("σ > 0: MAE of the mean IoU, model ÷ QMC-256", "max", 1.0),
    "yardstick_mae_p": ("σ > 0: MAE of P(IoU ≥ 0.5), model ÷ QMC-256", "max", 1.0),
    "yardstick_crps": ("σ > 0: CRPS of the IoU distribution, model ÷ QMC-256", "max", 1.0),
    "yardstick_cost": ("Cost of the model, exact overlays per pair", "max", 4.0),
    "yardstick_speed": ("Speed at equal accuracy, × the strongest GEOS sampler (least over the three measures)", "min",
                        50.0),
    "yardstick_network": ("The network's overlap head, × faster than the best method without it at the network's "
                          "accuracy (least over the three measures)", "min", 2.0),
    "yardstick_band_coverage": ("90 % interval coverage in every σ band × pair kind where the truth's own split-half "
                                "coverage lies in the target (the furthest from 0.9)", "range", (0.87, 0.93)),
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


#: Slack of :func:`interval_coverage`: two exact computations of one overlap (the model geometries in one
#: frame, the full-detail ones in another) agree to about 1e-10, not bit for bit.
COVERAGE_TOLERANCE = 1e-9


def interval_coverage(forecast, observations, level=INTERVAL_LEVEL):
    """(n,) share of each row's observations (n, j) inside the central interval of the forecast samples (n, m).

    The interval is closed and widened by :data:`COVERAGE_TOLERANCE`, so a forecast and an observation that
    are both an atom (e.g. IoU = 0 for every displacement, or the exact IoU at σ = 0) count as covered.
    """
    lower, upper = central_interval(forecast, level)
    observations = np.asarray(observations, float)
    return np.mean((observations >= lower[:, None] - COVERAGE_TOLERANCE)
                   & (observations <= upper[:, None] + COVERAGE_TOLERANCE), axis=1)


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
    # A CRPS is ≥ 0; the prefix sums leave about −1e-16 where forecast and observation are one point.
    return np.maximum(to_observation.mean(axis=1) - 0.5 * spread, 0.0)


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


def relative_centroid_error(predicted, truth, a, b):
    """(n,) distance between (n, 2) predicted and true overlap centroids, over the pair scale L of the (n,)
    geometries ``a``, ``b`` in their frame (the larger side of the box of A ∪ B, as the network's descriptors)."""
    scale, _ = pair_scale_and_centre(a, b)
    return relative_distance(predicted, truth, scale)


def bucket_codes(values, edges):
    """(n,) bucket index of each value: 0 for values <= edges[0], ..., len(edges) above the last."""
    return np.searchsorted(np.asarray(edges, float), np.asarray(values, float), side="left")


def format_number(x):
    return f"{x:g}"


def bucket_labels(edges, unit=""):
    """Labels of the buckets of :func:`bucket_codes`."""
    edges = list(edges)
    labels = [f"≤ {format_number(edges[0])}{unit}"]
    labels += [f"{format_number(lo)}–{format_number(hi)}{unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    return labels + [f"> {format_number(edges[-1])}{unit}"]


def sigma_bucket_codes(sigma):
    """(n,) 0 for σ = 0, then 1 + :func:`bucket_codes` over :data:`SIGMA_EDGES`."""
    sigma = np.asarray(sigma, float)
    return np.where(sigma > 0, 1 + bucket_codes(sigma, SIGMA_EDGES), 0)


def sigma_bucket_labels():
    edges = (0.0,) + SIGMA_EDGES
    return ["σ = 0"] + [f"{format_number(lo)} < σ ≤ {format_number(hi)} m" for lo, hi in zip(edges[:-1], edges[1:])] + [
        f"σ > {format_number(SIGMA_EDGES[-1])} m"]


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


def target_status(key, value, targets=TARGETS):
    """'met' / 'missed' / 'not measured' for a key of ``targets`` (:data:`TARGETS` or :data:`YARDSTICK_TARGETS`)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not measured"
    _, kind, bound = targets[key]
    if kind == "max":
        ok = value <= bound
    elif kind == "min":
        ok = value >= bound
    else:
        ok = bound[0] <= value <= bound[1]
    return "met" if ok else "missed"


def model_iou_samples(overlap, m, seed=QMC_SEED):
    """(n, m) IoU values of the overlap mixtures' quasi-random points (covers clipped to [0, 1])."""
    points = overlap.quasi_samples(m, seed)  # (m, n, 2)
    return iou_from_covers(points[..., 0], points[..., 1]).T

