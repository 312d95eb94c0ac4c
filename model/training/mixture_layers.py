"""Mixture-density head and negative log-likelihood for Keras 3 (TensorFlow backend).

A mixture-density network ends in :class:`MixtureHead`, a linear Dense layer that
emits ``P = raw_size(K, D)`` raw values per sample, laid out as::

    [ logits (K) | means (K*D) | sigma_raw (K*D) | rho_raw (K, only if D == 2) ]

(means and sigmas component-major: value ``d`` of component ``k`` at ``k*D + d``).
:func:`split_mixture_raw` maps them to the mixture parameters exactly as the
NumPy side does (:func:`..mixture.split_raw`, :func:`..mixture.mixture_from_raw`),
with the constants imported from :mod:`..mixture` (one source of truth):

* log weights ``log_softmax(logits)``;
* means: identity, target units;
* ``sigma = (SIGMA_FLOOR + exp(r)) / (1 + exp(r) / SIGMA_CAP)``, a soft-clipped
  exponential that is ``exp(r)`` across the useful range (``d log sigma/dr ~= 1``,
  so no vanishing gradient) and saturates smoothly at the floor (1e-3) and cap
  (1e3) in target units;
* ``rho = RHO_MAX * tanh(rho_raw)`` with ``RHO_MAX = 0.995``, so ``1 - rho**2``
  stays above ~0.01 (D = 2 only; the 2D components have full covariance
  ``sigma_x, sigma_y, rho``).

The loss (:class:`MixtureNLL`, :func:`mixture_nll`) is the negative log density
of the target under the mixture, per sample, in nats, computed entirely in log
space: ``-logsumexp_k(log_softmax(logits)_k + log N_k(y))`` with the Gaussian
log-density and log-determinant in closed form
(2D: ``log det = 2 log sx + 2 log sy + log(1 - rho) + log(1 + rho)``). It is a
density, so it can be negative (e.g. sharp predictions of a target in small
units). Gradients stay finite for ``|y - mu| = 1e4``, logits of +-100 and sigma
at its floor.

Per-sample masks: pass ``sample_weight`` (0/1 or any weights) to ``fit`` /
``evaluate`` / the loss call. With the default Keras reduction
``"sum_over_batch_size"`` the weighted sum is divided by the batch size; use
``reduction="mean_with_sample_weight"`` to divide by the sum of weights (the
mean NLL over unmasked samples).

Both classes are registered under the package name ``overlap_relevance`` so that
saved models load with ``keras.saving.load_model(path, safe_mode=True)``.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from ..mixture import LOG_SIGMA_CAP, LOG_SIGMA_FLOOR, RHO_MAX, raw_size

__all__ = [
    "split_mixture_raw",
    "mixture_log_prob",
    "mixture_nll",
    "MixtureHead",
    "MixtureNLL",
    "make_mixture_nll",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_SIGMA_MIDPOINT = 0.5 * (LOG_SIGMA_FLOOR + LOG_SIGMA_CAP)


def _log_sigma_from_raw(sigma_raw: tf.Tensor) -> tf.Tensor:
    # Two algebraically equal forms of logaddexp(log floor, r) - softplus(r - log cap);
    # each is free of cancellation on its side of the midpoint, so the result
    # stays within [log floor, log cap] even in float32. Both branches are finite,
    # so tf.where passes finite gradients.
    near_floor = (LOG_SIGMA_FLOOR + tf.nn.softplus(sigma_raw - LOG_SIGMA_FLOOR)
                  - tf.nn.softplus(sigma_raw - LOG_SIGMA_CAP))
    near_cap = (LOG_SIGMA_CAP + tf.nn.softplus(LOG_SIGMA_FLOOR - sigma_raw)
                - tf.nn.softplus(LOG_SIGMA_CAP - sigma_raw))
    return tf.where(sigma_raw < _LOG_SIGMA_MIDPOINT, near_floor, near_cap)


def _split_log_space(raw: tf.Tensor, n_components: int, n_dims: int):
    """Like :func:`split_mixture_raw` but returns ``log sigma`` instead of sigma."""
    size = raw_size(n_components, n_dims)
    if raw.shape[-1] is not None and raw.shape[-1] != size:
        raise ValueError(
            f"raw must have {size} values in its last axis for {n_components} components "
            f"in {n_dims}D, got shape {raw.shape}"
        )
    k, d = int(n_components), int(n_dims)
    lead = tf.shape(raw)[:-1]
    component_shape = tf.concat([lead, [k, d]], axis=0)
    log_weights = tf.nn.log_softmax(raw[..., :k], axis=-1)
    means = tf.reshape(raw[..., k:k + k * d], component_shape)
    log_sigmas = tf.reshape(_log_sigma_from_raw(raw[..., k + k * d:k + 2 * k * d]), component_shape)
    rho = RHO_MAX * tf.tanh(raw[..., k + 2 * k * d:]) if d == 2 else None
    return log_weights, means, log_sigmas, rho


def split_mixture_raw(raw, n_components: int, n_dims: int):
    """Mixture parameters from raw head outputs.

    Args:
        raw: tensor ``(..., P)``, ``P = raw_size(n_components, n_dims)``.
    Returns:
        ``(log_weights, means, sigmas, rho)``: ``(..., K)`` normalised log weights,
        ``(..., K, D)`` means and sigmas (target units), ``(..., K)`` correlations
        for ``D == 2`` or ``None`` for ``D == 1``.
    """
    raw = tf.convert_to_tensor(raw)
    log_weights, means, log_sigmas, rho = _split_log_space(raw, n_components, n_dims)
    return log_weights, means, tf.exp(log_sigmas), rho


def mixture_log_prob(y, raw, n_components: int, n_dims: int) -> tf.Tensor:
    """Log density (nats) of targets under the mixtures encoded by ``raw``.

    Args:
        y: targets ``(..., D)``; for ``D == 1`` also ``(...)``. Cast to ``raw``'s dtype.
        raw: head outputs ``(..., P)``.
    Returns:
        ``(...)`` log densities.
    """
    raw = tf.convert_to_tensor(raw)
    y = tf.cast(y, raw.dtype)
    if y.shape.rank == raw.shape.rank - 1:
        y = y[..., None]  # 1D targets given without their trailing axis
    if y.shape[-1] is not None and y.shape[-1] != n_dims:
        raise ValueError(f"targets must have {n_dims} values in their last axis, got shape {y.shape}")
    log_weights, means, log_sigmas, rho = _split_log_space(raw, n_components, n_dims)
    z = (y[..., None, :] - means) * tf.exp(-log_sigmas)  # (..., K, D)
    if n_dims == 1:
        z = z[..., 0]
        component = -0.5 * tf.square(z) - log_sigmas[..., 0] - 0.5 * _LOG_2PI
    else:
        zx, zy = z[..., 0], z[..., 1]
        one_minus_rho2 = (1.0 - rho) * (1.0 + rho)
        # Sum-of-squares form of the quadratic: no cancellation as rho -> 1.
        quadratic = tf.square(zx - rho * zy) / one_minus_rho2 + tf.square(zy)
        half_log_det = log_sigmas[..., 0] + log_sigmas[..., 1] + 0.5 * (tf.math.log1p(-rho) + tf.math.log1p(rho))
        component = -0.5 * quadratic - half_log_det - _LOG_2PI
    return tf.reduce_logsumexp(log_weights + component, axis=-1)


def mixture_nll(y_true, raw, n_components: int, n_dims: int) -> tf.Tensor:
    """Per-sample negative log-likelihood ``-mixture_log_prob(y_true, raw)``, shape ``(...)``, nats."""
    return -mixture_log_prob(y_true, raw, n_components, n_dims)


class DescriptorResidual(keras.layers.Layer):
    """Base of the layers that add a baseline read from the input descriptors to a head's component means.

    Inputs ``[raw (batch, P), descriptors (batch, F)]``; output ``(batch, P)``. Subclasses compute the
    offsets in :meth:`call`; ``n_components`` and the descriptor columns ``index`` are their config.
    """

    def __init__(self, n_components, index, **kwargs):
        super().__init__(**kwargs)
        self.n_components = int(n_components)
        self.index = [int(i) for i in index]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(n_components=self.n_components, index=self.index)
        return config


@keras.saving.register_keras_serializable(package="overlap_relevance")
class MixtureHead(keras.layers.Dense):
    """Linear Dense layer emitting the ``raw_size(n_components, n_dims)`` raw mixture values.

    Input ``(batch, features)`` -> output ``(batch, P)``; interpret the output with
    :func:`split_mixture_raw` (TF) or :func:`..mixture.mixture_from_raw` (NumPy,
    from exported ``kernel``/``bias``: ``raw = h @ kernel + bias``). Accepts the
    other Dense arguments (initialisers, regularisers) except ``units`` and
    ``activation``. Tip: ``bias_initializer=keras.initializers.Constant(
    raw_from_parameters(...))`` starts the head at a chosen mixture.
    """

    def __init__(self, n_components: int, n_dims: int, **kwargs):
        size = raw_size(n_components, n_dims)
        units = kwargs.pop("units", size)
        if units != size:
            raise ValueError(f"units must be {size} for {n_components} components in {n_dims}D")
        activation = kwargs.pop("activation", None)
        if activation not in (None, "linear"):
            raise ValueError("MixtureHead is linear; the raw outputs are transformed by the loss")
        super().__init__(units=size, activation=None, **kwargs)
        self.n_components = int(n_components)
        self.n_dims = int(n_dims)

    def get_config(self):
        config = super().get_config()
        config.pop("units", None)
        config.pop("activation", None)
        config.update(n_components=self.n_components, n_dims=self.n_dims)
        return config


@keras.saving.register_keras_serializable(package="overlap_relevance")
class MixtureNLL(keras.losses.Loss):
    """Keras loss: per-sample mixture NLL (nats) of ``y_true`` under raw head outputs ``y_pred``.

    ``y_true``: ``(batch, D)`` (or ``(batch,)`` for ``D == 1``), or ``(batch, m, D)``: m labels per
    sample, scored by their mean NLL; ``y_pred``:
    ``(batch, P)``. Works with ``sample_weight`` (per-sample masks); see the
    module docstring for the reductions. Computes in the loss's ``dtype``
    (Keras' floatx unless given, e.g. ``dtype="float64"``).
    """

    def __init__(self, n_components: int, n_dims: int, name: str = "mixture_nll",
                 reduction: str = "sum_over_batch_size", dtype=None):
        raw_size(n_components, n_dims)  # validates
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.n_components = int(n_components)
        self.n_dims = int(n_dims)

    def call(self, y_true, y_pred):
        if len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] == self.n_dims:
            # Several labels per sample, (batch, m, D): the mean NLL of the sample's labels.
            return tf.reduce_mean(mixture_nll(y_true, y_pred[:, None, :], self.n_components, self.n_dims), axis=-1)
        return mixture_nll(y_true, y_pred, self.n_components, self.n_dims)

    def get_config(self):
        config = super().get_config()
        config.update(n_components=self.n_components, n_dims=self.n_dims)
        return config


def make_mixture_nll(n_components: int, n_dims: int, **kwargs) -> MixtureNLL:
    """Loss for ``model.compile(loss=...)`` with ``K`` and ``D`` bound; kwargs go to :class:`MixtureNLL`."""
    return MixtureNLL(n_components, n_dims, **kwargs)
