"""Hostile model files through the algorithms' MODEL parameter (issue 8).

test_model_file.py covers the loader itself; here every model-using algorithm must turn a bad
file into a QgsProcessingException that says what is wrong, including files whose SHA-256 is
right but whose content is not a usable network.
"""

import json

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from overlap_relevance.model.network import FORMAT_VERSION, load_model_file, save_model_file
from tools.corpus import BERLIN, berlin_partner, metres_box
from tools.layers import memory_layer
from tools.models import numpy_model_file, rewrite_arrays

MODEL_ALGORITHMS = ("scorerelevance", "relevancepairs", "overlaplocation")


def _resave(path, mutate_config=None, mutate_weights=None):
    """Change config or weights and write a file with a correct digest: what a hand-made file looks like."""
    config, weights = load_model_file(path)
    for key in ("format", "format_version", "weights_sha256"):
        config.pop(key)
    if mutate_config:
        mutate_config(config)
    if mutate_weights:
        mutate_weights(weights)
    save_model_file(path, config, weights)


def tampered(arrays):
    arrays["overlap_bias"] = arrays["overlap_bias"] + np.float32(1e-3)


def future_version(arrays):
    config = json.loads(arrays["config"].tobytes())
    config["format_version"] = FORMAT_VERSION + 1
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)


def _raw_config(path, text):
    def replace(arrays):
        arrays["config"] = np.frombuffer(text, dtype=np.uint8)
    rewrite_arrays(path, replace)


def _set(key, value):
    return lambda weights: weights.__setitem__(key, value)


def _huge_trunk(weights):
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=weights["trunk_0_kernel"].shape)
    # The trunk runs in float64, so float64 weights of 1e200: two products pass 1e308.
    weights["trunk_0_kernel"] = 1e200 * signs
    weights["trunk_1_kernel"] = np.full(weights["trunk_1_kernel"].shape, 1e200)


BAD_FILES = {
    "tampered": (lambda p: rewrite_arrays(p, tampered), "failed its integrity check"),
    "future_version": (lambda p: rewrite_arrays(p, future_version), f"format version {FORMAT_VERSION + 1}"),
    "missing_weight": (lambda p: _resave(p, mutate_weights=lambda w: w.pop("trunk_0_bias")), "not a usable"),
    "wrong_shape": (lambda p: _resave(p, mutate_weights=_set("trunk_0_kernel", np.ones((3, 8), np.float32))),
                    "not a usable"),
    "nan_weight": (lambda p: _resave(p, mutate_weights=_set("overlap_bias", np.full(12, np.nan, np.float32))),
                   "non-finite weights"),
    "unknown_activation": (lambda p: _resave(p, mutate_config=lambda c: c["network"].update(activation="gelu")),
                           "not a usable"),
    "other_descriptors": (lambda p: _resave(p, mutate_config=lambda c: c["network"]["inputs"].reverse()),
                          "reads the descriptors"),
    # Issue 28: these crashed qgis_process inside checkParameterValues.
    "config_list": (lambda p: _raw_config(p, b"[1, 2]"), "not an object"),
    "network_list": (lambda p: _resave(p, mutate_config=lambda c: c.update(network=[1, 2])), "no network layout"),
    # Finite weights so large that real pairs overflow float64 in the trunk (a zero input does not).
    "overflowing": (lambda p: _resave(p, mutate_weights=_huge_trunk), "non-finite outputs"),
}


@pytest.fixture(scope="module")
def layers():
    squares = [metres_box(*BERLIN, 20.0), metres_box(*BERLIN, 20.0, dx=5)]
    return memory_layer(squares, "EPSG:4326", {"k": [1, 2]}), berlin_partner()


@pytest.mark.parametrize("algorithm", MODEL_ALGORITHMS)
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_model_file_is_a_clear_processing_error(provider, layers, tmp_path, kind, algorithm):
    import processing

    path = tmp_path / f"{kind}.npz"
    numpy_model_file(path, hidden=(8, 8), components=2)
    make_bad, message = BAD_FILES[kind]
    make_bad(path)
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(f"overlaprelevance:{algorithm}", {"INPUT": layers[0], "REFERENCE": layers[1],
                                                         "MODEL": str(path), "OUTPUT": "memory:"})
    assert message in str(raised.value) and "Traceback" not in str(raised.value), str(raised.value)


def test_a_good_numpy_model_file_works_through_the_parameter(provider, layers, tmp_path):
    import processing

    path = tmp_path / "good.npz"
    numpy_model_file(path, hidden=(8, 8), components=2)
    output = processing.run("overlaprelevance:scorerelevance", {"INPUT": layers[0], "REFERENCE": layers[1],
                                                                "MODEL": str(path), "OUTPUT": "memory:"})["OUTPUT"]
    assert output.featureCount() == 2
