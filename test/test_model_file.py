"""Model files: verified on load, never able to run code, refused clearly when wrong."""

import json
import pickle
import zipfile

import numpy as np
import pytest

from overlap_relevance.model.encoding import N_DESCRIPTORS
from tools.models import numpy_model_file, rewrite_arrays
from overlap_relevance.model.network import (
    FORMAT_VERSION,
    MixtureNetwork,
    ModelFileError,
    load_model_file,
    weights_digest,
)


def random_model(path, seed=0, hidden=(8,)):
    return numpy_model_file(path, seed=seed, hidden=hidden)


def test_round_trip_and_digest(tmp_path):
    weights = random_model(tmp_path / "m.npz")
    config, loaded = load_model_file(tmp_path / "m.npz")
    assert config["format_version"] == FORMAT_VERSION
    assert config["weights_sha256"] == weights_digest(weights)
    assert set(loaded) == set(weights)
    network = MixtureNetwork(config, loaded)
    x = np.random.default_rng(1).normal(size=(5, N_DESCRIPTORS)).astype(np.float32)
    overlap, centroid = network.mixtures(x)
    # The overlap means are offsets from the zero-displacement coverages (residual head).
    raw = network.raw(x)
    no_residual = (np.maximum(x @ weights["trunk_0_kernel"], 0) @ weights["overlap_kernel"])
    np.testing.assert_allclose(raw.overlap[:, 2:6] - no_residual[:, 2:6], np.tile(x[:, :2], 2), atol=1e-5)
    assert len(overlap) == len(centroid) == 5


def test_tampered_weights_are_refused(tmp_path):
    random_model(tmp_path / "m.npz")

    def nudge(arrays):
        arrays["overlap_bias"] = arrays["overlap_bias"] + np.float32(1e-3)

    rewrite_arrays(tmp_path / "m.npz", nudge)
    with pytest.raises(ModelFileError, match="integrity check"):
        load_model_file(tmp_path / "m.npz")


def test_unknown_format_version_is_refused(tmp_path):
    random_model(tmp_path / "m.npz")

    def bump(arrays):
        config = json.loads(arrays["config"].tobytes())
        config["format_version"] = FORMAT_VERSION + 1
        arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)

    rewrite_arrays(tmp_path / "m.npz", bump)
    with pytest.raises(ModelFileError, match="format version"):
        load_model_file(tmp_path / "m.npz")


def test_a_pickle_inside_is_never_unpickled(tmp_path):
    """An object array needs pickle to load; allow_pickle=False refuses it before any code runs."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("config.npy", "w") as handle:
            np.lib.format.write_array(handle, np.array([Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model_file(path)
    assert not marker.exists()
    assert pickle  # the exploit above really is a pickle payload


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 broken"])
def test_corrupt_and_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        load_model_file(path)


def test_missing_file_and_foreign_npz(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ModelFileError, match="no config"):
        load_model_file(tmp_path / "other.npz")
