"""Model files: verified on load, never able to run code, refused clearly when wrong."""

import json
import pickle
import warnings
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


# --- Property test: mutated model files (issue 28) ------------------------------------------------------------
# Any content whatever must give a ModelFileError (or, for a harmless change, a usable model): never another
# exception, which inside QGIS's checkParameterValues aborts qgis_process.

MUTATION_SEED = 2028
MUTATED_FILES = 1200
_VALUES = (None, True, False, 0, -1, 1, 3, 2**70, -(2**70), 0.5, -1e308, float("nan"), float("inf"), "", "relu",
           "x" * 300, "\u00e9\u4e2d", [], [0], ["cover_a0"], [1, 2, 3], [[1]], {}, {"a": 1}, {"network": {}})
_DTYPES = (np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.float16, np.longdouble, "<U3",
           "S4", [("a", "<f4")], ">f4", np.timedelta64)


def _json_nodes(value, path=()):
    """Every (path, value) of a JSON tree, the root included."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _json_nodes(child, (*path, key))


def _set_at(tree, path, value):
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def _delete_at(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return tree


def _write(path, config, weights, sign=True):
    """A model file holding ``config`` (a JSON value, or raw bytes, or an array) and ``weights``."""
    if not isinstance(config, (bytes, np.ndarray)):
        if sign and isinstance(config, dict) and "weights_sha256" in config:
            config = {**config, "weights_sha256": weights_digest(weights)}
        config = json.dumps(config).encode("utf-8")
    blob = np.frombuffer(config, dtype=np.uint8) if isinstance(config, bytes) else config
    with open(path, "wb") as handle:
        np.savez(handle, config=blob, **weights)


def _mutations(base_config, base_weights, rng):
    """Yield (description, writer) pairs; writer(path) writes one mutated model file."""
    import copy

    def pick(sequence):
        return sequence[int(rng.integers(len(sequence)))]

    def config_value():  # a node of the config replaced by a value of another type or range, digest kept right
        config = copy.deepcopy(base_config)
        path, _ = pick(list(_json_nodes(config))[1:])
        value = copy.deepcopy(pick(_VALUES))
        config = _set_at(config, path, value)
        return f"config{list(path)} = {value!r:.40}", lambda p: _write(p, config, base_weights)

    def config_delete():
        config = copy.deepcopy(base_config)
        path, _ = pick(list(_json_nodes(config))[1:])
        return f"del config{list(path)}", lambda p: _write(p, _delete_at(config, path), base_weights)

    def config_top():
        value = copy.deepcopy(pick(_VALUES))
        return f"config = {value!r:.40}", lambda p: _write(p, value, base_weights)

    def config_bytes():
        text = json.dumps(base_config)
        choice = int(rng.integers(8))
        if choice == 0:
            raw = text.encode("utf-16")
        elif choice == 1:
            raw = b"\xef\xbb\xbf" + text.encode()
        elif choice == 2:
            raw = text.encode()[: int(rng.integers(len(text)))]
        elif choice == 3:
            raw = bytearray(text.encode())
            raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
            raw = bytes(raw)
        elif choice == 4:
            raw = rng.bytes(int(rng.integers(1, 64)))
        elif choice == 5:
            depth = int(rng.integers(1000, 200_000))
            raw = b"[" * depth + b"]" * depth
        elif choice == 6:
            raw = text.replace('"relu"', '"\\ud800"').encode()
        else:
            raw = b""
        return f"config bytes variant {choice}", lambda p: _write(p, raw, base_weights)

    def config_array():
        raw = np.frombuffer(json.dumps(base_config).encode(), dtype=np.uint8)
        choice = int(rng.integers(5))
        array = [raw.astype(np.int16), raw.reshape(1, -1), np.asarray(raw[0]), raw.astype(np.float32),
                 np.array([json.dumps(base_config)])][choice]
        return f"config array variant {choice}", lambda p: _write(p, array, base_weights)

    def weight_change():
        weights = dict(base_weights)
        name = pick(sorted(weights))
        array = weights[name]
        choice = int(rng.integers(9))
        if choice == 0:
            dtype = pick(_DTYPES)
            weights[name] = np.zeros(array.shape, dtype=dtype)
        elif choice == 1:
            weights[name] = array.T.copy() if array.ndim == 2 else array[:, None].copy()
        elif choice == 2:
            weights[name] = np.asarray(np.float32(1.0))
        elif choice == 3:
            weights[name] = np.zeros((0,) + array.shape[1:], np.float32)
        elif choice == 4:
            del weights[name]
        elif choice == 5:
            weights[pick(["trunk_9_kernel", "extra", "Trunk_0_bias", "trunk_01_bias", "a/b"])] = array
        elif choice == 6:
            weights[name] = np.full(array.shape, pick([np.nan, np.inf, -np.inf, 3e38, 0.0]), array.dtype)
        elif choice == 7:
            weights[name] = np.concatenate([array, array])
        else:
            weights[name] = np.broadcast_to(array, (2, *array.shape)).copy()
        sign = bool(rng.integers(4))  # mostly with a correct digest, so the checks after the digest are reached
        config = dict(base_config)
        return f"weight {name} variant {choice} signed={sign}", lambda p: _write(p, config, weights, sign)

    def archive():
        choice = int(rng.integers(7))

        def write(p):
            _write(p, base_config, base_weights)
            data = bytearray(p.read_bytes())
            if choice == 0:
                p.write_bytes(bytes(data[: int(rng.integers(len(data)))]))
            elif choice == 1:
                for _ in range(int(rng.integers(1, 8))):
                    data[int(rng.integers(len(data)))] = int(rng.integers(256))
                p.write_bytes(bytes(data))
            elif choice in (2, 3, 4):
                with zipfile.ZipFile(p, "a") as extra:
                    name = {2: "notes.txt", 3: "dir/input_mean.npy", 4: "input_mean.npy"}[choice]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name of variant 4
                        extra.writestr(name, b"\x93NUMPY junk")
            elif choice == 5:  # the config stored as a raw zip entry, not an array
                with zipfile.ZipFile(p, "w") as raw:
                    raw.writestr("config", json.dumps(base_config))
                    for key, value in base_weights.items():
                        with raw.open(f"{key}.npy", "w") as handle:
                            np.lib.format.write_array(handle, value)
            else:  # an array header that lies about its shape or type
                with zipfile.ZipFile(p, "w") as raw:
                    raw.writestr("config.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '" + pick([b"|O", b"<f8", b"|u1"])
                                 + b"', 'fortran_order': False, 'shape': (" + str(int(rng.integers(0, 10**9))).encode()
                                 + b",), }" + b" " * 40 + b"\n" + rng.bytes(64))
        return f"archive variant {choice}", write

    makers = (config_value, config_value, config_value, config_delete, config_top, config_bytes, config_array,
              weight_change, weight_change, archive)
    while True:
        yield pick(makers)()


def test_mutated_model_files_give_model_file_errors_only(tmp_path):
    """1,200 mutated files: wrong types, shapes, members, encodings and sizes give a ModelFileError or load."""
    from overlap_relevance.model.scoring import load_model

    extra = {"encoding": {"descriptors": ["cover_a0"], "max_model_vertices": 256, "simplify_tolerance": 5e-4},
             "training": {"kind": "test", "epochs": 2, "final_val_loss": 0.5, "history": {"loss": [1.0, 0.5]},
                          "data": {"sigma_m": 0.5, "source_layers": {"input": {"name": "a"}}}}}
    numpy_model_file(tmp_path / "base.npz", hidden=(4,), components=1, extra_config=extra)
    base_config, base_weights = load_model_file(tmp_path / "base.npz")
    rng = np.random.default_rng(MUTATION_SEED)
    refused, loaded, other = 0, 0, []
    for i, (description, write) in zip(range(MUTATED_FILES), _mutations(base_config, base_weights, rng)):
        path = tmp_path / f"m{i}.npz"
        write(path)
        try:
            model = load_model(path)
        except ModelFileError as error:
            assert str(error) and "Traceback" not in str(error)
            refused += 1
        except Exception as error:  # noqa: BLE001 - the point of the test
            other.append(f"{description}: {type(error).__name__}: {error}")
        else:
            model.network.raw(np.zeros((1, N_DESCRIPTORS)))
            loaded += 1
        path.unlink()
    assert not other, f"{len(other)} of {MUTATED_FILES} mutated files gave other errors:\n" + "\n".join(other[:20])
    assert refused + loaded == MUTATED_FILES and refused > 0.8 * MUTATED_FILES, (refused, loaded)


def test_a_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    from overlap_relevance.model import network

    numpy_model_file(tmp_path / "m.npz", hidden=(4,), components=1)
    monkeypatch.setattr(network, "MAX_UNCOMPRESSED_BYTES", 1000)
    with pytest.raises(ModelFileError, match="MiB once decompressed"):
        load_model_file(tmp_path / "m.npz")


@pytest.mark.parametrize("config", [[1, 2], "text", 3, None])
def test_a_config_that_is_not_an_object_is_refused(tmp_path, config):
    """Issue 28: a JSON list as config gave "'list' object has no attribute 'get'"."""
    numpy_model_file(tmp_path / "m.npz", hidden=(4,), components=1)
    _, weights = load_model_file(tmp_path / "m.npz")
    _write(tmp_path / "m.npz", config, weights)
    with pytest.raises(ModelFileError, match="not an object"):
        load_model_file(tmp_path / "m.npz")


def test_a_signed_file_whose_network_is_a_list_is_refused(tmp_path):
    """Issue 28: a correctly signed file whose network entry is a list crashed scoring.py outside its try."""
    from overlap_relevance.model.scoring import load_model

    numpy_model_file(tmp_path / "m.npz", hidden=(4,), components=1)
    config, weights = load_model_file(tmp_path / "m.npz")
    _write(tmp_path / "m.npz", {**config, "network": [1, 2]}, weights)
    with pytest.raises(ModelFileError, match="no network layout"):
        load_model(tmp_path / "m.npz")


def test_a_config_stored_as_a_raw_zip_entry_is_refused(tmp_path):
    """Issue 28: a config stored as a raw zip member gave "'bytes' object has no attribute 'tobytes'"."""
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("config", b'{"format": "overlap_relevance.mdn"}')
    with pytest.raises(ModelFileError, match="not a NumPy array"):
        load_model_file(tmp_path / "m.npz")
