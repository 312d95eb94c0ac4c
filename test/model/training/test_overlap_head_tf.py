"""The u-head's Keras loss and layer agree with model/overlap_head.py; a model with it exports and loads."""

import keras
import numpy as np
import tensorflow as tf

from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.network import MixtureNetwork, load_model_file
from overlap_relevance.model.overlap_head import UnitMixture, baseline_logit, mixed_nll, raw_size
from overlap_relevance.model.training.network_tf import build_model, export_model_file, losses
from overlap_relevance.model.training.overlap_head_tf import UnitMixtureNLL


def test_loss_is_the_numpy_mixed_nll_of_u():
    rng = np.random.default_rng(0)
    n, k, m = 64, 3, 9
    raw = rng.normal(size=(n, raw_size(k)))
    u = rng.uniform(1e-4, 1 - 1e-4, size=(n, m))
    u[:, 0], u[:, 1] = 0.0, 1.0  # the atoms
    covers = np.stack([u, u * rng.uniform(0.1, 1.0, size=(n, 1))], axis=-1)  # u is the larger cover
    loss = UnitMixtureNLL(k, reduction=None, dtype="float64")(covers, raw).numpy()
    mixture = UnitMixture.from_raw(raw, k, np.zeros(n), np.ones(n), np.ones(n))
    np.testing.assert_allclose(loss, mixed_nll(u, mixture), rtol=1e-10)


def test_gradients_stay_finite_at_the_atoms_and_near_them():
    k = 2
    raw = tf.Variable(np.random.default_rng(1).normal(size=(4, raw_size(k))).astype(np.float32))
    u = np.array([[0.0, 1.0, 1 - 1e-9, 1e-12], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.5, 1 - 1e-7, 0.3, 2e-7]],
                 np.float32)
    covers = np.stack([u, 0.5 * u], axis=-1)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(UnitMixtureNLL(k)(covers, raw))
    gradient = tape.gradient(value, raw).numpy()
    assert np.isfinite(value.numpy()) and np.isfinite(gradient).all()


def test_model_with_the_u_head_exports_and_numpy_matches_keras(tmp_path):
    rng = np.random.default_rng(2)
    n = 200
    x = rng.normal(size=(n, len(DESCRIPTOR_NAMES))).astype(np.float32)
    names = list(DESCRIPTOR_NAMES)
    x[:, names.index("sweep_cover_a")] = rng.uniform(0, 1, n)
    x[:, names.index("sweep_cover_b")] = rng.uniform(0, 1, n)
    keras.utils.set_random_seed(0)
    model = build_model(np.zeros(len(names)), np.ones(len(names)), hidden=(16,), overlap_components=2,
                        centroid_components=2, overlap_head="unit_atoms")
    model.compile(optimizer="adam", loss=losses(model))
    covers = rng.uniform(0, 1, size=(n, 3, 2)).astype(np.float32)
    model.fit(x, {"overlap": covers, "centroid": rng.normal(size=(n, 2)).astype(np.float32)}, epochs=1, verbose=0)
    export_model_file(model, tmp_path / "u.npz", np.zeros(len(names)), np.ones(len(names)), {}, {})
    config, weights = load_model_file(tmp_path / "u.npz")
    assert config["network"]["overlap_head"] == "unit_atoms"
    network = MixtureNetwork(config, weights)
    keras_raw = model.predict(x, verbose=0)["overlap"]
    numpy_raw = network.raw(x).overlap
    baseline = baseline_logit(x[:, names.index("sweep_cover_a")].astype(float),
                              x[:, names.index("sweep_cover_b")].astype(float))
    numpy_raw[:, 3 + 2:3 + 4] += baseline[:, None]  # Keras adds the baseline in its layer, NumPy in from_raw
    np.testing.assert_allclose(numpy_raw, keras_raw, atol=1e-4)
