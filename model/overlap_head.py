"""The overlap head on one number: u = |A ∩ (B + d)| / min(|A|, |B|), with atoms at 0 and 1 (NumPy side).

Under a rigid shift d of B, |A| and |B| do not change, so cover_a, cover_b and the IoU are monotone
functions of the intersection area I alone. With m = min(|A|, |B|) and r = m / max(|A|, |B|) ∈ (0, 1]:

    u = I / m ∈ [0, 1],   cover_a = u · m / |A|,   cover_b = u · m / |B|,   IoU = u r / (1 + r − u r).

u has two atoms: u = 0 (no overlap) and u = 1 (the smaller polygon lies inside the larger). Between them
the distribution is continuous. :class:`UnitMixture` holds, per pair,

* ``p0``, ``p1``: the masses of the atoms (``1 − p0 − p1`` is the continuous part's mass);
* a K-component 1-D Gaussian mixture over ``logit(u)`` for the continuous part;
* ``scale_a = m / |A|``, ``scale_b = m / |B|`` (one of them is 1), which map u to the covers and the IoU.

Every summary follows from u's distribution through those monotone maps, without sampling: the CDF
and the quantiles of u, cover_a, cover_b and the IoU are exact (quantiles by bisection on the logit
scale), P(IoU ≥ t) = P(u ≥ u_t) is exact, and the means and second moments use Gauss–Hermite quadrature
per component (:data:`HERMITE_NODES` nodes; the integrands are smooth and bounded).

Raw head layout (the network's last Dense layer), ``raw_size(K) = 3 + 3K`` values::

    [ atom logits (3: u = 0, u = 1, continuous) | logits (K) | means (K) | sigma_raw (K) ]

The component means are offsets from ``logit(clip(u_sweep, U_BASELINE_CLIP, 1 − U_BASELINE_CLIP))`` with
``u_sweep = max(sweep_cover_a, sweep_cover_b)`` (:func:`baseline_logit`), the sweep surrogate's mean u;
the sigmas use :func:`.mixture.log_sigma_from_raw` (floor 1e-3, cap 1e3, logit units). The TensorFlow twin
is :mod:`.training.overlap_head_tf`; its loss is the mixed negative log-likelihood :func:`mixed_nll` (the
atom's log mass for labels at exactly 0 or 1, the continuous mass times the density of u otherwise).

NumPy only: no SciPy, no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from .mixture import log_sigma_from_raw
from .special import normal_cdf

#: Kind name of this head in a model file's ``network.overlap_head`` (the older head is ``"cover_2d"``).
HEAD_KIND = "unit_atoms"
#: Labels of u within this of 0 or 1 count as the atoms (the covers of GEOS overlays carry rounding).
U_ATOM_TOLERANCE = 1e-9
#: The sweep's mean u is clipped to [c, 1 − c] before its logit is taken as the components' baseline.
U_BASELINE_CLIP = 1e-3
#: Logit-scale SD of the point mass that stands for an exactly known u (σ = 0).
EXACT_LOGIT_SD = 1e-12
#: Gauss–Hermite nodes per component for means and second moments.
HERMITE_NODES = 48
#: Bisection steps of the quantile search on the logit scale (the bracket shrinks by 2⁻⁶⁴).
_BISECTION_STEPS = 64
_LOGIT_LIMIT = 40.0

_nodes, _weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
_HERMITE_NODES, _HERMITE_WEIGHTS = _nodes, _weights / _weights.sum()


def raw_size(n_components):
    """Raw head values for K components: 3 atom logits and K logits, means and sigma_raw."""
    k = int(n_components)
    if k < 1:
        raise ValueError("the overlap head needs at least one component")
    return 3 + 3 * k


def expit(z):
    """The logistic function, 1 / (1 + e⁻ᶻ), as ½ (1 + tanh(z / 2)): one transcendental, no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def logit(u):
    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(u) - np.log1p(-u)


def baseline_logit(sweep_cover_a, sweep_cover_b):
    """(n,) logit of the sweep surrogate's mean u, the baseline every component mean is an offset from."""
    u = np.clip(np.maximum(sweep_cover_a, sweep_cover_b), U_BASELINE_CLIP, 1.0 - U_BASELINE_CLIP)
    return logit(u)


def unit_of_covers(cover_a, cover_b):
    """u = I / min(|A|, |B|) from the two covers: the larger of them."""
    return np.clip(np.maximum(cover_a, cover_b), 0.0, 1.0)


def area_scales(area_a, area_b):
    """(scale_a, scale_b) = min(|A|, |B|) / |A|, min / |B|: covers = u · scale (1 for pairs without area)."""
    area_a, area_b = np.asarray(area_a, dtype=float), np.asarray(area_b, dtype=float)
    smaller = np.minimum(area_a, area_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale_a = np.where(area_a > 0, smaller / np.where(area_a > 0, area_a, 1.0), 1.0)
        scale_b = np.where(area_b > 0, smaller / np.where(area_b > 0, area_b, 1.0), 1.0)
    return np.clip(scale_a, 0.0, 1.0), np.clip(scale_b, 0.0, 1.0)


def iou_of_unit(u, ratio):
    """IoU = u r / (1 + r − u r) for u in [0, 1] and r = min / max area (broadcast)."""
    u = np.clip(u, 0.0, 1.0)
    ratio = np.asarray(ratio, dtype=float)
    denominator = 1.0 + ratio - u * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, u * ratio / np.where(denominator > 0, denominator, 1.0), 0.0)


def unit_of_iou(t, ratio):
    """The u at which the IoU reaches t: t (1 + r) / (r (1 + t)); ∞ where r = 0 and t > 0."""
    t, ratio = np.asarray(t, dtype=float), np.asarray(ratio, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 0, t * (1.0 + ratio) / np.where(ratio > 0, ratio * (1.0 + t), 1.0),
                        np.where(t > 0, np.inf, 0.0))


def _log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return x - top - np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))


class UnitMixture:
    """n distributions of u on [0, 1]: atoms at 0 and 1 and a logit-Gaussian mixture between them.

    p0, p1 : (n,) atom masses; log_weights, means, sigmas : (n, K) the continuous part's mixture over logit(u)
    (weights normalised among themselves); scale_a, scale_b : (n,) min(|A|, |B|) / |A| and / |B|.
    """

    kind = HEAD_KIND

    def __init__(self, p0, p1, log_weights, means, sigmas, scale_a, scale_b):
        self.p0 = np.asarray(p0, dtype=float)
        self.p1 = np.asarray(p1, dtype=float)
        self.log_weights = np.asarray(log_weights, dtype=float)
        self.means = np.asarray(means, dtype=float)
        self.sigmas = np.asarray(sigmas, dtype=float)
        self.scale_a = np.asarray(scale_a, dtype=float)
        self.scale_b = np.asarray(scale_b, dtype=float)
        n = len(self.p0)
        if not (self.p1.shape == self.scale_a.shape == self.scale_b.shape == (n,)
                and self.log_weights.shape == self.means.shape == self.sigmas.shape
                and self.means.ndim == 2 and len(self.means) == n):
            raise ValueError("p0, p1, scale_a, scale_b must be (n,) and log_weights, means, sigmas (n, K)")

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_raw(cls, raw, n_components, baseline, scale_a, scale_b):
        """The distributions of raw head outputs (n, :func:`raw_size`) with (n,) logit baselines."""
        raw = np.asarray(raw, dtype=float)
        k = int(n_components)
        if raw.ndim != 2 or raw.shape[1] != raw_size(k):
            raise ValueError(f"raw must be (n, {raw_size(k)}) for {k} components, got {raw.shape}")
        atoms = np.exp(_log_softmax(raw[:, :3]))
        log_weights = _log_softmax(raw[:, 3:3 + k])
        means = raw[:, 3 + k:3 + 2 * k] + np.asarray(baseline, dtype=float)[:, None]
        sigmas = np.exp(log_sigma_from_raw(raw[:, 3 + 2 * k:3 + 3 * k]))
        return cls(atoms[:, 0], atoms[:, 1], log_weights, means, sigmas, scale_a, scale_b)

    @classmethod
    def point(cls, u, scale_a, scale_b, n_components=1):
        """Point masses at (n,) u: an atom where u is within :data:`U_ATOM_TOLERANCE` of 0 or 1 (as in
        :meth:`from_samples` and the likelihood: a contained feature's u of 1 − 2e-16 is the atom at 1, not a
        component the mixed likelihood gives no mass), a component of SD :data:`EXACT_LOGIT_SD` else."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        n, k = len(u), int(n_components)
        zero, one = u <= U_ATOM_TOLERANCE, u >= 1.0 - U_ATOM_TOLERANCE
        inner = ~(zero | one)
        log_weights = np.full((n, k), -np.inf)
        log_weights[:, 0] = 0.0
        means = np.zeros((n, k))
        means[inner, 0] = logit(u[inner])
        return cls(zero.astype(float), one.astype(float), log_weights, means,
                   np.full((n, k), EXACT_LOGIT_SD), scale_a, scale_b)

    @classmethod
    def from_samples(cls, u, scale_a, scale_b):
        """The distribution of (n, k) exact values of u at k equally weighted shifts: the atoms are the shares
        at 0 and 1, and each value between is a component of weight 1/k at logit(u) with SD
        :data:`EXACT_LOGIT_SD` (so every summary is the plain average over the k shifts)."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        n, k = u.shape
        zero, one = u <= U_ATOM_TOLERANCE, u >= 1.0 - U_ATOM_TOLERANCE
        inner = ~(zero | one)
        count = inner.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            log_weights = np.where(inner, -np.log(np.maximum(count, 1)), -np.inf)
        log_weights[count[:, 0] == 0, 0] = 0.0  # no value between: the (massless) continuous part is a placeholder
        means = np.where(inner, logit(np.clip(u, U_ATOM_TOLERANCE, 1.0 - U_ATOM_TOLERANCE)), 0.0)
        return cls(zero.mean(axis=1), one.mean(axis=1), log_weights, means, np.full((n, k), EXACT_LOGIT_SD),
                   scale_a, scale_b)

    def where(self, rows, other):
        """This mixture with ``rows`` (bool (n,)) taken from ``other`` (same n and K)."""
        rows = np.asarray(rows, dtype=bool)
        if not rows.any():
            return self
        pick = lambda mine, theirs: np.where(rows.reshape((-1,) + (1,) * (mine.ndim - 1)), theirs, mine)  # noqa: E731
        return UnitMixture(*(pick(getattr(self, name), getattr(other, name)) for name in self._FIELDS))

    _FIELDS = ("p0", "p1", "log_weights", "means", "sigmas", "scale_a", "scale_b")

    @classmethod
    def concatenate(cls, mixtures):
        mixtures = list(mixtures)
        if len(mixtures) == 1:
            return mixtures[0]
        k = max(m.means.shape[1] for m in mixtures)

        def padded(m, name):  # fewer components: massless ones (weight 0, point at 0) make up the number
            value = getattr(m, name)
            if value.ndim == 1 or value.shape[1] == k:
                return value
            fill = {"log_weights": -np.inf, "means": 0.0, "sigmas": EXACT_LOGIT_SD}[name]
            return np.concatenate([value, np.full((len(value), k - value.shape[1]), fill)], axis=1)

        return cls(*(np.concatenate([padded(m, name) for m in mixtures]) for name in cls._FIELDS))

    def __len__(self):
        return len(self.p0)

    def __getitem__(self, rows):
        return UnitMixture(*(np.atleast_1d(getattr(self, name)[rows]) if getattr(self, name).ndim == 1
                             else np.atleast_2d(getattr(self, name)[rows]) for name in self._FIELDS))

    def __repr__(self):
        return f"UnitMixture(n={len(self)}, K={self.means.shape[1]})"

    def _spread(self):
        """(n,) bool: the rows with a component wider than a point mass (:data:`EXACT_LOGIT_SD`, up to 1000×)."""
        return np.any(self.sigmas > 1e3 * EXACT_LOGIT_SD, axis=1)

    @property
    def continuous(self):
        """(n,) mass of the continuous part, 1 − p0 − p1."""
        return np.clip(1.0 - self.p0 - self.p1, 0.0, 1.0)

    @property
    def ratio(self):
        """(n,) r = min(|A|, |B|) / max(|A|, |B|)."""
        return self.scale_a * self.scale_b

    # -- distribution of u ----------------------------------------------------------------------------
    def _continuous_cdf(self, z):
        """(n, m) CDF of the logit mixture at logit values z (n, m)."""
        z = np.asarray(z, dtype=float)
        weights = np.exp(self.log_weights)[:, None, :]
        spread = self._spread()
        if not spread.all():  # a row of point components only: a step at each mean, whatever else the batch holds
            step = np.sum(weights * (z[:, :, None] >= self.means[:, None, :]), axis=-1)
            if not spread.any():
                return step
        with np.errstate(invalid="ignore"):
            standard = (z[:, :, None] - self.means[:, None, :]) / self.sigmas[:, None, :]
        standard = np.where(np.isnan(standard), 0.0, standard)
        smooth = np.sum(weights * normal_cdf(standard), axis=-1)
        return smooth if spread.all() else np.where(spread[:, None], smooth, step)

    def cdf(self, u):
        """(n, m) P(U ≤ u) at u (m,) or (n, m)."""
        u = np.broadcast_to(np.asarray(u, dtype=float), (len(self),) + np.shape(u)[-1:]) if np.ndim(u) <= 1 \
            else np.asarray(u, dtype=float)
        inner = np.clip(u, 1e-300, 1.0 - 1e-16)
        value = self.p0[:, None] + self.continuous[:, None] * self._continuous_cdf(logit(inner))
        return np.where(u < 0, 0.0, np.where(u >= 1, 1.0, np.clip(value, 0.0, 1.0)))

    def quantile(self, levels):
        """(n, m) quantiles of u at (m,) levels in [0, 1]: the smallest u with P(U ≤ u) ≥ level."""
        levels = _levels(levels)
        n = len(self)
        q = np.broadcast_to(levels[None, :], (n, levels.size))
        p0, pc = self.p0[:, None], self.continuous[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.clip((q - p0) / np.where(pc > 0, pc, 1.0), 0.0, 1.0)
        spread = np.where(np.isfinite(self.log_weights), self.sigmas, 0.0)
        low = np.min(np.where(np.isfinite(self.log_weights), self.means - 12 * spread, np.inf), axis=1)
        high = np.max(np.where(np.isfinite(self.log_weights), self.means + 12 * spread, -np.inf), axis=1)
        low = np.broadcast_to(np.clip(low, -_LOGIT_LIMIT, _LOGIT_LIMIT)[:, None] - 1e-9, q.shape).copy()
        high = np.broadcast_to(np.clip(high, -_LOGIT_LIMIT, _LOGIT_LIMIT)[:, None] + 1e-9, q.shape).copy()
        for _ in range(_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            below = self._continuous_cdf(middle) < inner
            low, high = np.where(below, middle, low), np.where(below, high, middle)
        u = np.where((q <= p0) & (p0 > 0), 0.0, expit(high))
        # Above the continuous part's mass lies the atom at 1; a distribution without a continuous part is
        # 0 up to p0 and 1 beyond (level 0 of an atom at 1 alone is 1, the lower end of the support).
        u = np.where(pc <= 0, np.where((q <= p0) & (p0 > 0), 0.0, 1.0), u)
        return np.where(q > p0 + pc + 1e-15, 1.0, u)

    def _expect(self, function):
        """E[f(U)] for each array of the tuple ``function(u, r)`` returns (u (n, K, nodes), r (n, 1, 1)):
        a list of (n,) expectations, the continuous part by Gauss–Hermite quadrature on the logit scale. A row
        of point masses only is summed at one node whatever else the batch holds, so a pair's summary does not
        depend on its batch."""
        spread = self._spread()
        if spread.any() and not spread.all():
            parts = [(rows, self[rows]._expect(function)) for rows in (np.flatnonzero(spread), np.flatnonzero(~spread))]
            out = [np.empty(len(self)) for _ in parts[0][1]]
            for rows, values in parts:
                for into, value in zip(out, values):
                    into[rows] = value
            return out
        nodes, node_weights = _HERMITE_NODES, _HERMITE_WEIGHTS
        if not spread.any():  # point masses only: one node is exact (error ~σ²)
            nodes, node_weights = np.zeros(1), np.ones(1)
        z = self.means[:, :, None] + self.sigmas[:, :, None] * nodes[None, None, :]
        ratio = self.ratio[:, None, None]
        weights = np.exp(self.log_weights)[:, :, None] * node_weights  # (n, K, nodes)
        inner = [np.sum(weights * value, axis=(1, 2)) for value in function(expit(z), ratio)]
        ends = function(np.broadcast_to(np.array([0.0, 1.0]), (len(self), 1, 2)), ratio)
        return [self.p0 * end[:, 0, 0] + self.p1 * end[:, 0, 1] + self.continuous * value
                for end, value in zip(ends, inner)]

    def mean(self):
        """(n,) E[u]."""
        return self._expect(lambda u, r: (u,))[0]

    # -- the covers and the IoU -----------------------------------------------------------------------
    def iou_moments(self):
        """(n,) E[IoU] and E[IoU²]."""
        return tuple(self._moments()[1:])

    def _moments(self):
        """(n,) E[u], E[IoU], E[IoU²] from one set of quadrature points."""
        def values(u, r):
            iou = u * r / (1.0 + r - u * r)  # 1 + r − u r ≥ 1 for u, r in [0, 1]
            return u, iou, iou * iou

        return self._expect(values)

    def p_iou_at_least(self, threshold):
        """(n,) P(IoU ≥ t) = P(u ≥ u_t); threshold a scalar or (n,)."""
        t = np.broadcast_to(np.asarray(threshold, dtype=float), (len(self),))
        # P(U ≥ c) = 1 − P(U ≤ c) + P(U = c): the atoms at the ends count in full.
        return np.where(t <= 0, 1.0, self.p_unit_at_least(unit_of_iou(t, self.ratio)))

    def p_unit_at_least(self, c):
        """(n,) P(u ≥ c) (u is the cover of the smaller polygon); c a scalar or (n,)."""
        c = np.broadcast_to(np.asarray(c, dtype=float), (len(self),))
        below = self.cdf(np.clip(c, 0.0, 1.0)[:, None])[:, 0]
        p = 1.0 - below + np.where(c >= 1.0, self.p1, 0.0) + np.where(c <= 0.0, self.p0, 0.0)
        return np.where(c <= 0, 1.0, np.where(c > 1.0, 0.0, np.clip(p, 0.0, 1.0)))

    def iou_quantile(self, levels):
        """(n, m) IoU quantiles at (m,) levels: the IoU is monotone in u, so these are exact."""
        return iou_of_unit(self.quantile(levels), self.ratio[:, None])

    def cover_quantile(self, levels, axis):
        """(n, m) quantiles of cover_a (axis 0) or cover_b (axis 1) at (m,) levels (exact)."""
        scale = (self.scale_a, self.scale_b)[axis]
        return self.quantile(levels) * scale[:, None]

    def summary(self, threshold=0.5):
        """(iou_mean, iou_sd, cover_a_mean, cover_b_mean, p_iou), each (n,)."""
        mean_u, first, second = self._moments()
        sd = np.sqrt(np.maximum(second - first**2, 0.0))
        return first, sd, mean_u * self.scale_a, mean_u * self.scale_b, self.p_iou_at_least(threshold)

    def iou_samples(self, m):
        """(n, m) IoU values at the m midpoint levels (i + ½)/m: a deterministic sample of the distribution."""
        return self.iou_quantile((np.arange(m) + 0.5) / m)

    def quasi_samples(self, m, seed=0):
        """(m, n, 2) (cover_a, cover_b) at the m midpoint levels of u (``seed`` unused: the points are fixed)."""
        u = self.quantile((np.arange(m) + 0.5) / m)  # (n, m)
        return np.stack([u * self.scale_a[:, None], u * self.scale_b[:, None]], axis=-1).transpose(1, 0, 2)

    def crps_iou(self, draws, grid=1025):
        """(n,) CRPS of the IoU distribution against (n, d) observed IoUs (mean over the d draws).

        CRPS(F, y) = ∫₀¹ (F(x) − 1{y ≤ x})² dx = ∫₀¹ F² dx + ∫_y¹ (1 − 2F) dx. F is evaluated on ``grid``
        points equally spaced in u (the IoU x(u) = u r / (1 + r − u r) is monotone, and F(x(u)) = P(U ≤ u)),
        both integrals by the trapezoidal rule in x, and F = 1 on [r, 1]; the atoms are exact.
        """
        draws = np.asarray(draws, dtype=float)
        u = np.linspace(0.0, 1.0, grid)
        ratio = self.ratio[:, None]
        x = iou_of_unit(u[None, :], ratio)  # (n, G), x[:, -1] = r
        f = self.cdf(u[None, :].repeat(len(self), axis=0))
        f[:, -1] = 1.0 - self.p1  # just below u = 1: the atom at 1 is the jump at x = r
        dx = np.diff(x, axis=1)
        square = np.concatenate([np.zeros((len(self), 1)), np.cumsum(0.5 * (f[:, 1:] ** 2 + f[:, :-1] ** 2) * dx, axis=1)], axis=1)
        linear = np.concatenate([np.zeros((len(self), 1)), np.cumsum(0.5 * ((1 - 2 * f[:, 1:]) + (1 - 2 * f[:, :-1])) * dx, axis=1)], axis=1)
        total_square = square[:, -1] + (1.0 - self.ratio)  # F = 1 beyond r
        total_linear = linear[:, -1] - (1.0 - self.ratio)
        # Position of each draw on the u-grid, then the cumulative ∫₀^y (1 − 2F) by linear interpolation.
        at = np.clip(unit_of_iou(np.clip(draws, 0.0, None), ratio), 0.0, 1.0) * (grid - 1)
        low = np.minimum(np.floor(at).astype(int), grid - 2)
        share = at - low
        rows = np.arange(len(self))[:, None]
        # Within a cell, linear in x, not in u: interpolate by the draw's x.
        x_low, x_high = x[rows, low], x[rows, low + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(x_high > x_low, (np.minimum(draws, x_high) - x_low) / (x_high - x_low), share)
        share = np.clip(share, 0.0, 1.0)
        cumulative = linear[rows, low] + share * (linear[rows, low + 1] - linear[rows, low])
        beyond = draws > ratio  # draws above r (cannot happen for true IoUs): ∫ over (r, y) of −1
        cumulative = np.where(beyond, linear[:, -1:] - (np.minimum(draws, 1.0) - ratio), cumulative)
        return np.mean(total_square[:, None] + total_linear[:, None] - cumulative, axis=1)

    def log_prob_unit(self, u):
        """(n, d) mixed log-likelihood of observed u (n, d): log atom mass at 0 / 1, else log density of u."""
        return mixed_log_likelihood(u, self.p0, self.p1, self.log_weights, self.means, self.sigmas)


def crps_from_quantiles(q, tau, draws):
    """(n,) mean over the (n, d) draws of 2 · mean_τ pinball_τ(y − q_τ) for (n, L) quantiles at (L,) levels."""
    total = np.zeros(len(q))
    for j in range(draws.shape[1]):
        error = draws[:, j:j + 1] - q
        total += 2.0 * np.mean(np.where(error >= 0, tau * error, (tau - 1.0) * error), axis=1)
    return total / draws.shape[1]


def crps_of_samples(samples, draws):
    """(n,) CRPS of the empirical distribution of (n, s) samples against (n, d) draws (mean over draws)."""
    samples = np.sort(np.asarray(samples, dtype=float), axis=1)
    s = samples.shape[1]
    # E|X − X'| of the sample, by the sorted-order identity.
    rank = 2 * np.arange(1, s + 1) - s - 1
    spread = 2.0 * np.sum(rank * samples, axis=1) / s**2
    total = np.zeros(len(samples))
    for j in range(draws.shape[1]):
        total += np.mean(np.abs(samples - draws[:, j:j + 1]), axis=1)
    return total / draws.shape[1] - 0.5 * spread


def mixed_log_likelihood(u, p0, p1, log_weights, means, sigmas):
    """(n, d) log-likelihood of (n, d) labels u: log p0 at u ≤ tol, log p1 at u ≥ 1 − tol, and otherwise
    log(1 − p0 − p1) + log Σ w N(logit u; μ, σ) − log(u (1 − u)) (the density of u, Jacobian included)."""
    u = np.asarray(u, dtype=float)
    zero, one = u <= U_ATOM_TOLERANCE, u >= 1.0 - U_ATOM_TOLERANCE
    inner = np.clip(u, U_ATOM_TOLERANCE, 1.0 - U_ATOM_TOLERANCE)
    z = logit(inner)
    standard = (z[:, :, None] - means[:, None, :]) / sigmas[:, None, :]
    log_components = log_weights[:, None, :] - 0.5 * standard**2 - np.log(sigmas[:, None, :]) - 0.5 * np.log(2 * np.pi)
    top = np.max(log_components, axis=-1, keepdims=True)
    log_density = (top[..., 0] + np.log(np.sum(np.exp(log_components - top), axis=-1))
                   - np.log(inner) - np.log1p(-inner))
    with np.errstate(divide="ignore"):
        continuous = np.log(np.clip(1.0 - p0 - p1, 0.0, 1.0))[:, None] + log_density
        return np.where(zero, np.log(p0)[:, None], np.where(one, np.log(p1)[:, None], continuous))


def mixed_nll(u, mixture):
    """(n,) mean negative mixed log-likelihood of (n, d) labels u under a :class:`UnitMixture`."""
    return -np.mean(mixture.log_prob_unit(u), axis=1)


def _levels(levels):
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or np.any(~((levels >= 0) & (levels <= 1))):
        raise ValueError("levels must be a 1-D array of probabilities in [0, 1]")
    return levels
