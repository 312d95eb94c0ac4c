"""The Keras side of the u-head (:mod:`..overlap_head`): its residual layer and its mixed NLL loss.

Training code only (TensorFlow). Raw layout and transforms are those of :mod:`..overlap_head`:
``[atom logits (3) | logits (K) | means (K) | sigma_raw (K)]``, the means offsets from the logit of the
sweep surrogate's mean u (added here by :class:`UnitResidual`, in NumPy by ``UnitMixture.from_raw``).

Loss (:class:`UnitMixtureNLL`): labels are (batch, m, 2) covers of displaced pairs; u = max(cover_a,
cover_b). Per label, −log p0 where u ≤ :data:`..overlap_head.U_ATOM_TOLERANCE`, −log p1 where
u ≥ 1 − tolerance, and otherwise −log(1 − p0 − p1) − log Σ_k w_k N(logit u; μ_k, σ_k) + log(u (1 − u)),
the negative log density of u itself (so the loss is a proper mixed log score, comparable across heads
of this kind). The mean over the m labels is the sample's loss.
"""

import math

import keras
import tensorflow as tf
from keras import ops

from ..overlap_head import U_ATOM_TOLERANCE, U_BASELINE_CLIP, raw_size
from .mixture_layers import DescriptorResidual, _log_sigma_from_raw

_LOG_2PI = math.log(2.0 * math.pi)
_FLOAT32_CLIP = 1e-6


@keras.saving.register_keras_serializable(package="overlap_relevance")
class UnitResidual(DescriptorResidual):
    """Adds logit(clip(max(descriptors[:, ia], descriptors[:, ib]))) to every component mean of the u-head.

    Inputs ``[raw (batch, 3 + 3K), descriptors (batch, F)]``; output ``(batch, 3 + 3K)``.
    """

    def call(self, inputs):
        raw, descriptors = inputs
        k = self.n_components
        u = ops.maximum(descriptors[:, self.index[0]], descriptors[:, self.index[1]])
        u = ops.clip(u, U_BASELINE_CLIP, 1.0 - U_BASELINE_CLIP)
        baseline = ops.log(u) - ops.log1p(-u)
        offsets = ops.concatenate([ops.zeros_like(raw[:, :3 + k]), ops.tile(baseline[:, None], [1, k]),
                                   ops.zeros_like(raw[:, 3 + 2 * k:])], axis=1)
        return raw + offsets


def unit_log_likelihood(u, raw, n_components):
    """(..., m) mixed log-likelihood of labels u (..., m) under raw head outputs (..., 3 + 3K)."""
    k = int(n_components)
    raw = tf.convert_to_tensor(raw)
    u = tf.cast(u, raw.dtype)
    atoms = tf.nn.log_softmax(raw[..., :3], axis=-1)[..., None, :]  # (..., 1, 3)
    log_weights = tf.nn.log_softmax(raw[..., 3:3 + k], axis=-1)[..., None, :]
    means = raw[..., None, 3 + k:3 + 2 * k]
    log_sigmas = _log_sigma_from_raw(raw[..., None, 3 + 2 * k:3 + 3 * k])
    # Continuous labels are clipped to [c, 1 − c] with c = :data:`_FLOAT32_CLIP`: 1 − 1e-9 is 1 in float32,
    # whose log1p(−1) would poison the gradient through tf.where.
    inner = tf.clip_by_value(u, _FLOAT32_CLIP, 1.0 - _FLOAT32_CLIP)
    z = tf.math.log(inner) - tf.math.log1p(-inner)
    standard = (z[..., None] - means) * tf.exp(-log_sigmas)
    component = log_weights - 0.5 * tf.square(standard) - log_sigmas - 0.5 * _LOG_2PI
    continuous = (atoms[..., 2] + tf.reduce_logsumexp(component, axis=-1)
                  - tf.math.log(inner) - tf.math.log1p(-inner))
    zero = u <= U_ATOM_TOLERANCE
    one = u >= 1.0 - U_ATOM_TOLERANCE
    return tf.where(zero, atoms[..., 0], tf.where(one, atoms[..., 1], continuous))


@keras.saving.register_keras_serializable(package="overlap_relevance")
class UnitMixtureNLL(keras.losses.Loss):
    """Per-sample mean mixed NLL of the labels' u = max(cover_a, cover_b).

    ``y_true``: (batch, m, 2) or (batch, 2) covers; ``y_pred``: (batch, 3 + 3K) raw values.
    """

    def __init__(self, n_components, name="unit_nll", reduction="sum_over_batch_size", dtype=None):
        raw_size(n_components)  # validates
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.n_components = int(n_components)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, y_pred.dtype)
        if len(y_true.shape) == 2:
            y_true = y_true[:, None, :]
        u = tf.clip_by_value(tf.reduce_max(y_true, axis=-1), 0.0, 1.0)  # (batch, m)
        return -tf.reduce_mean(unit_log_likelihood(u, y_pred, self.n_components), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(n_components=self.n_components)
        return config
