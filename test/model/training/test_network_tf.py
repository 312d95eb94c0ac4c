"""The Keras network and its NumPy export agree; the .keras file loads with safe_mode on."""

import keras
import numpy as np
import pytest

from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.network import MixtureNetwork, load_model_file
from overlap_relevance.model.training.network_tf import build_model, export_model_file
from overlap_relevance.model.training.train import dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model fitted briefly on real synthetic pairs, exported both ways."""
    data = dataset(1000, 1234, progress=False)
    mean, std = data["x"].mean(axis=0), np.maximum(data["x"].std(axis=0), 1e-3)
    keras.utils.set_random_seed(0)
    model = build_model(mean, std, hidden=(32, 16), overlap_components=3, centroid_components=2, seed=0)
    from overlap_relevance.model.training.network_tf import losses

    model.compile(optimizer="adam", loss=losses(model))
    model.fit(data["x"], {"overlap": data["overlap"], "centroid": data["centroid"]},
              sample_weight={"overlap": np.ones(len(data["x"]), np.float32), "centroid": data["centroid_mask"]},
              epochs=1, batch_size=128, verbose=0)
    folder = tmp_path_factory.mktemp("model")
    export_model_file(model, folder / "m.npz", mean, std, {"descriptors": list(DESCRIPTOR_NAMES)}, {"test": True})
    model.save(folder / "m.keras")
    return model, folder, data


def test_numpy_inference_matches_keras_on_1000_pairs(trained):
    model, folder, data = trained
    keras_raw = model.predict(data["x"], verbose=0, batch_size=1000)
    network = MixtureNetwork(*load_model_file(folder / "m.npz"))
    numpy_raw = network.raw(data["x"])
    assert data["x"].shape[0] == 1000
    np.testing.assert_allclose(numpy_raw.overlap, keras_raw["overlap"], atol=1e-4)
    np.testing.assert_allclose(numpy_raw.centroid, keras_raw["centroid"], atol=1e-4)
    overlap, centroid = network.mixtures(data["x"])
    assert data["overlap"].ndim == 3  # the production recipe: several displacement labels per pair
    for j in range(data["overlap"].shape[1]):
        assert np.all(np.isfinite(overlap.log_prob(data["overlap"][:, j])))
    assert len(centroid) == 1000


def test_keras_file_loads_with_safe_mode_and_predicts_the_same(trained):
    model, folder, data = trained
    loaded = keras.saving.load_model(folder / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(data["x"][:50], verbose=0)["overlap"],
                               model.predict(data["x"][:50], verbose=0)["overlap"], atol=1e-6)
