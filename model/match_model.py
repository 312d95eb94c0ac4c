"""The learned side of matching: the probability that a candidate pair is the same object (or a part of
it), the probability that a 1:1 pair is modified, and the calibration of the probabilities written out.

Plain NumPy (no SciPy, scikit-learn or TensorFlow): a few logistic regressions on features of the pair
that read the model's overlap distribution at the pair's σ together with what is known of the two
features (their sizes, the distance between them in units of σ and of their size, how the pair
compares with the other candidates of each feature), and monotone tables. The coefficients are fitted
offline on the validation seed of :mod:`.datasets.source_edits` by ``model/evaluation/source_matching.py``
and shipped in ``model/match_model.json``.
"""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent / "match_model.json"
_EPS = 1e-4


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _best_share(value, index, n):
    """value / (largest value among the pairs of the same feature), 0 where that is 0."""
    best = np.zeros(max(n, 1))
    if len(index):
        np.maximum.at(best, index, value)
    top = best[index]
    return np.where(top > 0, value / np.where(top > 0, top, 1.0), 0.0)


PAIR_FEATURES = ("logit_p_same", "logit_p_part", "iou_mean", "cover_small", "cover_large", "log_sigma_size",
                 "distance_sigma", "distance_size", "log_area_ratio", "aligned_iou", "overlap_sigma",
                 "distance_sigma_sq")


def pair_features(index_a, index_b, n_a, n_b, p_same, p_part, iou_mean, cover_small, cover_large, area_small,
                  area_large, distance, sigma, aligned_iou):
    """(p, len(PAIR_FEATURES)) features of candidate pairs (all arrays (p,); areas m², distance m between
    centroids, sigma m of the pair's input feature, aligned_iou the IoU once the centroids coincide)."""
    s = np.maximum(np.asarray(sigma, dtype=float), 0.05)
    size = np.sqrt(np.maximum(area_small, 1e-6))
    columns = [
        _logit(p_same), _logit(p_part), iou_mean, cover_small, cover_large, np.log(s / size),
        np.minimum(distance / s, 10.0), np.minimum(distance / size, 5.0),
        np.abs(np.log(np.maximum(area_large, 1e-6) / np.maximum(area_small, 1e-6))), aligned_iou,
        # how deep the expected overlap reaches into the smaller feature, in units of σ (a shift of σ
        # between neighbours makes about 1)
        np.log(cover_small * size / s + 0.01),
        # a true pair's centroids lie about σ apart (a part's up to its size): the Gaussian's exponent
        np.minimum((distance / s) ** 2, 100.0),
    ]
    return np.column_stack([np.asarray(c, dtype=float) for c in columns]) if len(p_same) else np.zeros(
        (0, len(PAIR_FEATURES)))


RIVALRY_FEATURES = ("q1", "logit_q1", "share_a", "share_b", "rival_a", "rival_b", "sum_a", "sum_b",
                    "explained_a", "explained_b", "log_area_a_b")


def rivalry(q1, index_a, index_b, n_a, n_b, area_a, area_b):
    """(p, len(RIVALRY_FEATURES)): the first-stage q of each pair and how it stands among the candidates
    of its input and of its reference feature (share of the best, the best rival, the sum of all), and
    how much of each feature's area its other likely partners already explain (Σ q1 · their area / its
    area: a part of an m:n group or of a merge fills what the others leave)."""
    q1 = np.asarray(q1, dtype=float)
    if not len(q1):
        return np.zeros((0, len(RIVALRY_FEATURES)))
    area_a = np.maximum(np.asarray(area_a, dtype=float), 1e-6)
    area_b = np.maximum(np.asarray(area_b, dtype=float), 1e-6)
    sum_a = np.bincount(index_a, q1, max(n_a, 1))[index_a]
    sum_b = np.bincount(index_b, q1, max(n_b, 1))[index_b]
    explained_a = (np.bincount(index_a, q1 * area_b, max(n_a, 1))[index_a] - q1 * area_b) / area_a
    explained_b = (np.bincount(index_b, q1 * area_a, max(n_b, 1))[index_b] - q1 * area_a) / area_b
    columns = [q1, _logit(q1), _best_share(q1, index_a, n_a), _best_share(q1, index_b, n_b),
               _rival(q1, index_a, n_a), _rival(q1, index_b, n_b), sum_a - q1, sum_b - q1,
               np.minimum(explained_a, 5.0), np.minimum(explained_b, 5.0), np.log(area_a / area_b)]
    return np.column_stack(columns)


def _rival(value, index, n):
    """For each pair: the best value among the other pairs of its feature (0 if none)."""
    if not len(index):
        return np.zeros(0)
    order = np.lexsort((-value, index))
    sorted_index, sorted_value = index[order], value[order]
    first = np.r_[True, sorted_index[1:] != sorted_index[:-1]]
    best = np.zeros(max(n, 1))
    second = np.zeros(max(n, 1))
    best[sorted_index[first]] = sorted_value[first]
    rank2 = np.r_[False, first[:-1]] & ~first
    second[sorted_index[rank2]] = sorted_value[rank2]
    is_best = np.zeros(len(value), dtype=bool)
    is_best[order[first]] = True
    return np.where(is_best, second[index], best[index])


CHANGE_FEATURES = ("offset", "log_offset", "aligned_iou", "log_area_ratio", "log_sigma", "move_surprise",
                   "log_size", "offset_size")


def change_features(offset, aligned_iou, p_move, area_a, area_b, sigma):
    """(k, len(CHANGE_FEATURES)) features of 1:1 pairs for P(modified)."""
    s = np.maximum(np.asarray(sigma, dtype=float), 0.05)
    size = np.sqrt(np.maximum(np.minimum(area_a, area_b), 1e-6))
    offset = np.maximum(np.asarray(offset, dtype=float), 0.0)
    columns = [offset, np.log(offset + 0.02), aligned_iou,
               np.abs(np.log(np.maximum(area_a, 1e-6) / np.maximum(area_b, 1e-6))), np.log(s),
               np.minimum(-np.log(np.maximum(p_move, 1e-12)), 30.0), np.log(size), offset / size]
    return np.column_stack([np.asarray(c, dtype=float) for c in columns]) if len(offset) else np.zeros(
        (0, len(CHANGE_FEATURES)))


class Logistic:
    """P(y = 1 | x) = 1 / (1 + exp(-(b + w·(x - mean)/scale)))."""

    def __init__(self, mean, scale, coef, intercept):
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.coef = np.asarray(coef, dtype=float)
        self.intercept = float(intercept)

    def __call__(self, x):
        z = self.intercept + ((np.asarray(x, dtype=float) - self.mean) / self.scale) @ self.coef
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def as_dict(self):
        return {"mean": self.mean.round(8).tolist(), "scale": self.scale.round(8).tolist(),
                "coef": self.coef.round(8).tolist(), "intercept": round(self.intercept, 8)}

    @classmethod
    def fit(cls, x, y, l2=1e-3, iterations=50, weight=None):
        """Newton's method (IRLS) with a small ridge; x (n, d), y (n,) 0/1."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
        mean = x.mean(axis=0)
        scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        design = np.column_stack([np.ones(len(x)), (x - mean) / scale])
        beta = np.zeros(design.shape[1])
        ridge = np.full(design.shape[1], l2 * w.sum())
        ridge[0] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -40, 40)))
            gradient = design.T @ (w * (y - p)) - ridge * beta
            hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(ridge)
            step = np.linalg.solve(hessian + 1e-9 * np.eye(len(beta)), gradient)
            beta += step
            if np.max(np.abs(step)) < 1e-8:
                break
        return cls(mean, scale, beta[1:], beta[0])


class Network:
    """P(y = 1 | x) from one hidden layer of tanh units: sigmoid(b2 + w2·tanh(b1 + W1 (x - mean)/scale))."""

    def __init__(self, mean, scale, w1, b1, w2, b2):
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.w1 = np.asarray(w1, dtype=float)
        self.b1 = np.asarray(b1, dtype=float)
        self.w2 = np.asarray(w2, dtype=float)
        self.b2 = float(b2)

    def logit(self, x):
        hidden = np.tanh((np.asarray(x, dtype=float) - self.mean) / self.scale @ self.w1 + self.b1)
        return hidden @ self.w2 + self.b2

    def __call__(self, x):
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -40.0, 40.0)))

    def as_dict(self):
        return {"mean": self.mean.round(8).tolist(), "scale": self.scale.round(8).tolist(),
                "w1": self.w1.round(8).tolist(), "b1": self.b1.round(8).tolist(), "w2": self.w2.round(8).tolist(),
                "b2": round(self.b2, 8)}

    @classmethod
    def fit(cls, x, y, hidden=24, epochs=600, rate=0.01, l2=1e-4, seed=0):
        """Full-batch Adam on the mean log loss (offline, seconds for 10⁵ pairs)."""
        rng = np.random.default_rng(seed)
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        mean = x.mean(axis=0)
        scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = (x - mean) / scale
        params = [rng.normal(0, 1 / np.sqrt(z.shape[1]), (z.shape[1], hidden)), np.zeros(hidden),
                  rng.normal(0, 1 / np.sqrt(hidden), hidden), np.zeros(1)]
        moment = [np.zeros_like(p) for p in params]
        second = [np.zeros_like(p) for p in params]
        for step in range(1, epochs + 1):  # one full-batch gradient step per epoch
            w1, b1, w2, b2 = params
            h = np.tanh(z @ w1 + b1)
            p = 1 / (1 + np.exp(-np.clip(h @ w2 + b2[0], -40, 40)))
            d_out = (p - y) / len(y)
            d_h = np.outer(d_out, w2) * (1 - h ** 2)
            grads = [z.T @ d_h + l2 * w1, d_h.sum(axis=0), h.T @ d_out + l2 * w2, np.array([d_out.sum()])]
            for k, g in enumerate(grads):
                moment[k] = 0.9 * moment[k] + 0.1 * g
                second[k] = 0.999 * second[k] + 0.001 * g ** 2
                params[k] = params[k] - rate * (moment[k] / (1 - 0.9 ** step)) / (
                    np.sqrt(second[k] / (1 - 0.999 ** step)) + 1e-8)
        return cls(mean, scale, params[0], params[1], params[2], float(params[3][0]))


def assigned_features(probability, p_same, p_part, iou_mean, sigma):
    """(k, 5) inputs of the ``m_p`` network: logits of the edge probability, of P(IoU ≥ t) and of
    P(cover ≥ c), the expected IoU and log σ (NaN σ: 1 m). Read from what every path that decides carries
    (the Dask join included)."""
    sigma = np.asarray(sigma, dtype=float)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, 1.0)
    return np.column_stack([_logit(probability), _logit(p_same), _logit(p_part), np.asarray(iou_mean, dtype=float),
                            np.log(np.broadcast_to(np.maximum(sigma, 0.05), np.shape(probability)))])


def _model_of(config):
    return Network(**config) if "w1" in config else Logistic(**config)


def monotone(x, table):
    """A monotone table read at x: a step table {"edges": [...], "calibrated": [...]} (k - 1 increasing
    edges, k non-decreasing values: the value of the step that x falls in, an edge belonging to the step
    above), or a knot table {"raw": [...], "calibrated": [...]} (knots interpolated).

    The shipped calibration tables are step tables: each step is one block of decisions of the fit and
    writes that block's observed share, so a cluster of equal raw values (the flat end of a table that
    feeds another, a saturated network) gets the share of its own block, where interpolating between the
    means of neighbouring blocks gave it a value that its decisions never had."""
    x = np.asarray(x, dtype=float)
    if "edges" in table:
        value = np.asarray(table["calibrated"], dtype=float)[np.searchsorted(table["edges"], x, side="right")]
        return np.where(np.isnan(x), np.nan, value)  # NaN stays NaN, as np.interp leaves it
    return np.interp(x, table["raw"], table["calibrated"])


class MatchModel:
    """The pair model, the change model and the calibration tables of the written probabilities."""

    def __init__(self, config):
        self.config = config
        # stages: the first reads the pair's own features; each later one also the rivalry of the previous q
        self.stages = [_model_of(stage) for stage in config["stages"]]
        self.change = _model_of(config["change"])
        self.tables = config.get("tables", {})

    def pair(self, features, index_a=None, index_b=None, n_a=0, n_b=0, area_a=None, area_b=None):
        """q of candidate pairs: the first stage on the pair's own features, then each later stage on those
        and how the previous q compares with the other candidates of each feature (:func:`rivalry`;
        area_a, area_b: (p,) the two features' areas, m²)."""
        q = self.stages[0](features)
        for stage in self.stages[1:]:
            q = stage(np.column_stack([features, rivalry(q, index_a, index_b, n_a, n_b, area_a, area_b)]))
        return q

    def in_domain(self, area_a, area_b, sigma):
        """(p,) bool: the pairs like those the model was fitted on (buildings at σ of metres): the larger
        feature at most ``size_m`` across (square root of its area), the area ratio and σ within the
        fitted range. Pairs outside (countries against their states, parcels of hectares) are decided
        by the fixed rules, not by a model that never saw their like."""
        domain = self.config.get("domain")
        if domain is None:
            return np.ones(len(area_a), dtype=bool)
        large = np.maximum(area_a, area_b)
        ratio = np.abs(np.log(np.maximum(area_a, 1e-6) / np.maximum(area_b, 1e-6)))
        return ((np.sqrt(large) <= domain["size_m"]) & (ratio <= domain["log_area_ratio"])
                & (np.asarray(sigma, dtype=float) <= domain["sigma_m"]))

    def assigned(self, probability, p_same, p_part, iou_mean, sigma):
        """``m_p`` of assigned pairs: the pair's edge probability, and where the file has an
        ``"assigned_model"`` that network's probability from it and the pair's raw overlap numbers
        (:func:`assigned_features`: two pairs that the edge probability rates alike, one a shift of σ, the
        other a building rebuilt a little aside, differ in them), then the ``"assigned"`` table of its σ band."""
        raw = np.asarray(probability, dtype=float)
        network = self.config.get("assigned_model")
        if network is not None and len(raw):
            raw = _model_of(network)(assigned_features(raw, p_same, p_part, iou_mean, sigma))
        return self.calibrated("assigned", raw, sigma)

    def calibrated(self, name, raw, sigma=None):
        """``raw`` through the table ``name``: the one of the σ band nearest each value's σ (on a log
        scale) where the table has bands and σ is known, else the pooled one."""
        raw = np.asarray(raw, dtype=float)
        table = self.tables.get(name)
        if table is None:
            return raw
        out = monotone(raw, table["pooled"] if "pooled" in table else table)
        if "bands" not in table or sigma is None:
            return out
        sigma = np.broadcast_to(np.asarray(sigma, dtype=float), raw.shape)
        centres = np.log(np.asarray(table["band_sigmas"], dtype=float))
        known = np.isfinite(sigma) & (sigma > 0)
        band = np.argmin(np.abs(np.log(np.where(known, sigma, 1.0))[..., None] - centres), axis=-1)
        for k, band_table in enumerate(table["bands"]):
            rows = known & (band == k)
            out[rows] = monotone(raw[rows], band_table)
        return out


@lru_cache(maxsize=4)
def load_match_model(path=None):
    """The shipped :class:`MatchModel` (``model/match_model.json``), or None where the file is missing."""
    path = Path(path) if path is not None else PATH
    if not path.exists():
        return None
    return MatchModel(json.loads(path.read_text()))
