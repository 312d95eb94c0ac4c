"""Keras/TensorFlow mixture head and NLL: parity with the NumPy side, gradients, masks, saving."""


import numpy as np
import pytest

from overlap_relevance.model.mixture import (
    RHO_MAX,
    SIGMA_CAP,
    SIGMA_FLOOR,
    mixture_from_raw,
    raw_from_parameters,
    raw_size,
)

# TensorFlow tests run in their own pytest process without QGIS (see test/model/training/conftest.py).
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
from overlap_relevance.model.training.mixture_layers import (
    MixtureHead,
    MixtureNLL,
    make_mixture_nll,
    mixture_log_prob,
    mixture_nll,
    split_mixture_raw,
)



CASES = [(1, 1), (3, 1), (1, 2), (4, 2)]


def random_raw_and_targets(rng, k, d, n=64, spread=1.0):
    """Raw head values of typical size (``spread`` scales them) and nearby targets."""
    raw = np.concatenate([
        rng.normal(0.0, 2.0 * spread, size=(n, k)),  # logits
        rng.normal(0.0, spread, size=(n, k * d)),  # means
        rng.uniform(-2.0, 1.0, size=(n, k * d)) * spread,  # sigma_raw: sigma in ~[0.13, 2.7]
        rng.normal(0.0, spread, size=(n, k if d == 2 else 0)),  # rho_raw
    ], axis=1)
    targets = rng.normal(0.0, 1.5, size=(n, d))
    return raw, targets


@pytest.mark.parametrize("k, d", CASES)
def test_tf_log_prob_matches_numpy_float64(k, d):
    rng = np.random.default_rng(10 * k + d)
    raw, targets = random_raw_and_targets(rng, k, d)
    tf_value = mixture_log_prob(tf.constant(targets), tf.constant(raw), k, d).numpy()
    np_value = mixture_from_raw(raw, k, d).log_prob(targets)
    np.testing.assert_allclose(tf_value, np_value, rtol=0, atol=1e-5)
    # also for wild parameters (log densities down to ~-1e4): agreement to rounding
    raw, targets = random_raw_and_targets(rng, k, d, spread=3.0)
    tf_value = mixture_log_prob(tf.constant(targets), tf.constant(raw), k, d).numpy()
    np_value = mixture_from_raw(raw, k, d).log_prob(targets)
    np.testing.assert_allclose(tf_value, np_value, rtol=1e-12, atol=1e-5)
    log_weights, means, sigmas, rho = split_mixture_raw(tf.constant(raw), k, d)
    mixture = mixture_from_raw(raw, k, d)
    np.testing.assert_allclose(log_weights.numpy(), mixture.log_weights, atol=1e-12)
    np.testing.assert_allclose(means.numpy(), mixture.means)
    np.testing.assert_allclose(sigmas.numpy(), mixture.sigmas, rtol=1e-12)
    if d == 2:
        np.testing.assert_allclose(rho.numpy(), mixture.rho, rtol=1e-12)
    else:
        assert rho is None


@pytest.mark.parametrize("k, d", CASES)
def test_tf_log_prob_matches_numpy_float32(k, d):
    rng = np.random.default_rng(100 + 10 * k + d)
    raw, targets = random_raw_and_targets(rng, k, d)
    raw32, targets32 = raw.astype(np.float32), targets.astype(np.float32)
    tf_value = mixture_log_prob(tf.constant(targets32), tf.constant(raw32), k, d).numpy()
    assert tf_value.dtype == np.float32
    np_value = mixture_from_raw(raw32.astype(np.float64), k, d).log_prob(targets32.astype(np.float64))
    # 1e-4 absolute, relative for large magnitudes (float32 has ~7 digits)
    np.testing.assert_array_less(np.abs(tf_value - np_value), 1e-4 * np.maximum(1.0, np.abs(np_value)))


def test_one_dimensional_targets_without_trailing_axis():
    rng = np.random.default_rng(0)
    raw, targets = random_raw_and_targets(rng, 3, 1)
    with_axis = mixture_nll(tf.constant(targets), tf.constant(raw), 3, 1)
    without_axis = mixture_nll(tf.constant(targets[:, 0]), tf.constant(raw), 3, 1)
    np.testing.assert_allclose(with_axis.numpy(), without_axis.numpy())
    with pytest.raises(ValueError):
        mixture_nll(tf.constant(targets), tf.constant(raw[:, :-1]), 3, 1)


def extreme_raw(k, d, dtype):
    """Logits of +-100, sigmas at the floor, rho at its bound, means 0."""
    raw = np.zeros((4, raw_size(k, d)))
    raw[:, :k] = np.where(np.arange(k) % 2 == 0, 100.0, -100.0)
    raw[:, k + k * d:k + 2 * k * d] = -40.0
    if d == 2:
        raw[:, k + 2 * k * d:] = np.where(np.arange(k) % 2 == 0, 25.0, -25.0)
    return tf.constant(raw, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k, d", [(3, 1), (3, 2)])
def test_gradients_finite_at_extremes(k, d, dtype):
    raw = extreme_raw(k, d, dtype)
    _, _, sigmas, rho = split_mixture_raw(raw, k, d)
    np.testing.assert_allclose(sigmas.numpy(), SIGMA_FLOOR, rtol=1e-5)
    if d == 2:
        assert np.all(np.abs(rho.numpy()) <= RHO_MAX + 1e-6)
    offsets = np.array([1e4, -1e4, 0.0, 3.0])[:, None] * np.ones((1, d))
    targets = tf.constant(offsets, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(raw)
        loss = tf.reduce_mean(mixture_nll(targets, raw, k, d))
    gradient = tape.gradient(loss, raw)
    assert np.isfinite(loss.numpy()) and np.all(np.isfinite(gradient.numpy()))

    # through a Dense head as well, at the cap and with huge raw values
    head = MixtureHead(k, d, dtype=dtype)
    features = tf.constant(np.array([[1.0, -2.0], [0.5, 0.0], [-3.0, 1.0], [0.0, 0.0]]), dtype=dtype)
    head.build((None, 2))
    bias = np.zeros(raw_size(k, d))
    bias[:k] = [100.0, -100.0, 0.0]
    bias[k + k * d:k + 2 * k * d] = np.array([-40.0, 40.0, 1e4])[:, None].repeat(d, 1).ravel()
    head.bias.assign(bias)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(mixture_nll(targets, head(features), k, d))
    gradients = tape.gradient(loss, head.trainable_variables)
    assert np.isfinite(loss.numpy())
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)
    sigmas_at_cap = split_mixture_raw(head(features), k, d)[2].numpy()[:, 2]
    assert np.all(sigmas_at_cap <= SIGMA_CAP * (1 + 1e-6))


def test_sample_weight_masks_samples():
    rng = np.random.default_rng(1)
    raw, targets = random_raw_and_targets(rng, 3, 2, n=10)
    mask = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=np.float64)
    per_sample = mixture_nll(tf.constant(targets), tf.constant(raw), 3, 2).numpy()
    loss = make_mixture_nll(3, 2, dtype="float64")
    assert loss(targets, raw).numpy() == pytest.approx(per_sample.mean())
    assert loss(targets, raw, sample_weight=mask).numpy() == pytest.approx((per_sample * mask).sum() / 10)
    masked_mean = MixtureNLL(3, 2, reduction="mean_with_sample_weight", dtype="float64")
    assert masked_mean(targets, raw, sample_weight=mask).numpy() == pytest.approx(per_sample[mask > 0].mean())

    # garbage in masked samples does not leak into evaluate()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, MixtureHead(3, 2)(keras.layers.Dense(8, activation="tanh")(inputs)))
    model.compile(optimizer="adam", loss=MixtureNLL(3, 2, reduction="mean_with_sample_weight"))
    features = rng.normal(size=(10, 2)).astype("float32")
    noisy_targets = targets.astype("float32").copy()
    noisy_targets[mask == 0] = 1e6
    masked = model.evaluate(features, noisy_targets, sample_weight=mask.astype("float32"), verbose=0,
                            batch_size=10)
    clean = model.evaluate(features[mask > 0], targets[mask > 0].astype("float32"), verbose=0, batch_size=10)
    assert masked == pytest.approx(clean, rel=1e-5)


def test_model_saves_and_loads_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    bias = raw_from_parameters(np.array([0.5, 0.5]), np.array([[0.0, 1.0], [2.0, -1.0]]),
                               np.array([[0.5, 0.5], [1.0, 2.0]]), np.array([0.3, -0.3]))
    outputs = MixtureHead(2, 2, bias_initializer=keras.initializers.Constant(bias))(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=make_mixture_nll(2, 2))
    features = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    targets = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
    model.fit(features, targets, epochs=1, verbose=0)
    path = tmp_path / "mdn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(features, verbose=0), model.predict(features, verbose=0), rtol=1e-6)
    head = loaded.layers[-1]
    assert isinstance(head, MixtureHead) and (head.n_components, head.n_dims) == (2, 2)
    assert isinstance(loaded.loss, MixtureNLL) and (loaded.loss.n_components, loaded.loss.n_dims) == (2, 2)
    assert loaded.evaluate(features, targets, verbose=0) == pytest.approx(
        model.evaluate(features, targets, verbose=0), rel=1e-5)


def test_head_exports_to_numpy_inference():
    keras.utils.set_random_seed(1)
    head = MixtureHead(3, 1)
    features = np.random.default_rng(2).normal(size=(5, 4)).astype("float32")
    raw_tf = head(features).numpy()
    kernel, bias = (w.numpy().astype(np.float64) for w in head.weights)
    raw_np = features.astype(np.float64) @ kernel + bias
    np.testing.assert_allclose(raw_np, raw_tf, rtol=1e-5, atol=1e-6)
    assert mixture_from_raw(raw_np, 3, 1).n_rows == 5
    assert head.get_config()["n_components"] == 3 and "units" not in head.get_config()
    assert MixtureHead.from_config(head.get_config()).units == raw_size(3, 1)
    with pytest.raises(ValueError):
        MixtureHead(3, 1, activation="relu")


@pytest.mark.parametrize("k, d", [(3, 2), (2, 1)])
def test_several_labels_per_sample_score_their_mean_nll(k, d):
    """(batch, m, D) targets: the loss of a sample is the mean NLL of its m labels under its one mixture."""
    rng = np.random.default_rng(7 + k + d)
    raw, _ = random_raw_and_targets(rng, k, d, n=16)
    labels = rng.normal(0.0, 1.0, size=(16, 5, d))
    mixture = mixture_from_raw(raw, k, d)
    expected = np.mean([-mixture.log_prob(labels[:, j]) for j in range(5)], axis=0)
    loss = MixtureNLL(k, d, dtype="float64", reduction="none")
    np.testing.assert_allclose(loss(tf.constant(labels), tf.constant(raw)).numpy(), expected, rtol=1e-10)
    single = MixtureNLL(k, d, dtype="float64", reduction="none")(tf.constant(labels[:, 0]), tf.constant(raw)).numpy()
    np.testing.assert_allclose(single, -mixture.log_prob(labels[:, 0]), rtol=1e-10)
