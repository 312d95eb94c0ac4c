"""Fine-tuning: a model file rebuilt as a Keras model computes what the NumPy network computes, and the
training module (the process 'Train relevance model' starts) writes a usable model file."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from overlap_relevance.model.network import BUNDLED_MODEL, MixtureNetwork, load_model_file
from overlap_relevance.model.overlap_head import baseline_logit
from overlap_relevance.model.datasets.layer_data import concatenate, save_training_data, synthetic_arrays
from overlap_relevance.model.training.network_tf import export_model_file, model_from_file
from overlap_relevance.model.datasets.synthetic import generate_pairs


@pytest.fixture(scope="module")
def arrays():
    return synthetic_arrays(generate_pairs(300, 77))


def test_bundled_model_rebuilt_in_keras_matches_numpy_and_exports_identically(arrays, tmp_path):
    config, weights = load_model_file(BUNDLED_MODEL)
    model = model_from_file(config, weights)
    keras_raw = model.predict(arrays["x"], verbose=0, batch_size=300)
    network = MixtureNetwork(config, weights)
    numpy_raw = network.raw(arrays["x"])
    overlap = numpy_raw.overlap
    if network.overlap_head_kind == "unit_atoms":  # Keras adds the u-head's baseline in its layer, NumPy in from_raw
        k, (ia, ib) = network.overlap_components, network.residual_index
        overlap = overlap.copy()
        overlap[:, 3 + k:3 + 2 * k] += baseline_logit(arrays["x"][:, ia].astype(float),
                                                      arrays["x"][:, ib].astype(float))[:, None]
    # Keras computes in float32: a raw logit of -274 (the u-head's bundled weights have one) is off by ~1e-4.
    np.testing.assert_allclose(overlap, keras_raw["overlap"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(numpy_raw.centroid, keras_raw["centroid"], atol=1e-4)
    exported = export_model_file(model, tmp_path / "again.npz", weights["input_mean"], weights["input_std"],
                                 config["encoding"], config["training"])
    assert exported["weights_sha256"] == config["weights_sha256"]


def test_training_module_from_scratch_streams_epochs_and_writes_a_model(arrays, tmp_path):
    data = tmp_path / "data.npz"
    save_training_data(data, concatenate([arrays]), {"layer_pairs": 0, "synthetic_pairs": 300, "sigma_m": 0.0})
    out = tmp_path / "scratch.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "overlap_relevance.model.training.finetune", "--data", str(data),
                             "--out", str(out), "--epochs", "2", "--start", "scratch", "--seed", "3"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "done"]
    assert events[0]["train_samples"] + events[0]["validation_samples"] == 300
    assert all(np.isfinite(e["loss"]) and np.isfinite(e["val_loss"]) for e in events[1:3])
    config, _ = load_model_file(out)
    assert config["training"]["kind"] == "scratch" and config["training"]["started_from"] is None
    assert config["training"]["data"]["synthetic_pairs"] == 300
    assert not (tmp_path / "scratch.npz.partial").exists()
