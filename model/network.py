"""The network at inference time: a NumPy forward pass from a single model file.

Model file format (``.npz``, loaded with ``allow_pickle=False``, so a file can never
run code):

* ``config``: UTF-8 JSON (a uint8 array) with ``format`` (:data:`FORMAT_NAME`),
  ``format_version`` (:data:`FORMAT_VERSION`), the ``network`` layout, the
  ``encoding`` constants it was trained with (descriptor names, simplification
  settings), the ``training`` record (recipe hash, seeds, sizes, timing) and
  ``weights_sha256``;
* one array per weight, named in ``network``: ``input_mean``, ``input_std``,
  ``trunk_<i>_kernel``/``_bias``, ``overlap_kernel``/``_bias``,
  ``centroid_kernel``/``_bias``.

``weights_sha256`` is the SHA-256 of every weight array in sorted name order (name,
dtype, shape and bytes), so any change to a weight is detected on load.

Network: standardised descriptors → ``Dense`` layers (``activation``) → two linear
heads emitting raw mixture parameters (:mod:`.mixture` layout). The overlap head's
component means are offsets from the descriptors named in ``residual_means``: in
the bundled model the sweep surrogate's mean covers ``sweep_cover_a``,
``sweep_cover_b`` (:mod:`.sweep`), which are the exact covers ``cover_a0``,
``cover_b0`` at σ = 0; so the network starts from the surrogate and learns corrections.
"""

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mixture import mixture_from_raw, raw_size
from .overlap_head import raw_size as unit_raw_size

FORMAT_NAME = "overlap_relevance.mdn"
FORMAT_VERSION = 1
#: The overlap heads a model file may name in ``network.overlap_head`` (absent: "cover_2d").
OVERLAP_HEADS = ("cover_2d", "unit_atoms")
BUNDLED_MODEL = Path(__file__).resolve().parent / "overlap_mdn.npz"


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says why and what to do."""


def weights_digest(weights):
    """SHA-256 (hex) of a dict of arrays, independent of insertion order."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(name.encode())
        digest.update(array.dtype.str.encode())
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model_file(path, config, weights):
    """Write a model file; ``config`` gets the format fields and the weights' digest."""
    config = dict(config)
    config.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, weights_sha256=weights_digest(weights))
    blob = np.frombuffer(json.dumps(config, indent=1, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # a file handle keeps numpy from appending '.npz'
        np.savez_compressed(handle, config=blob, **weights)
    return config


#: Limits on what a model file may hold: the bundled model has 13 entries and 0.1 MB of arrays; anything
#: far larger is refused before it is decompressed (a zip bomb costs nothing then).
MAX_ENTRIES = 256
MAX_UNCOMPRESSED_BYTES = 512 * 2**20
MAX_CONFIG_BYTES = 16 * 2**20
#: Bounds of the network layout: far beyond any trained model, small enough that nothing is allocated blindly.
MAX_TRUNK_LAYERS = 64
MAX_COMPONENTS = 64
MAX_WIDTH = 65536
_WEIGHT_NAME = re.compile(r"^(input_mean|input_std|trunk_(0|[1-9][0-9]*)_(kernel|bias)|(overlap|centroid)_(kernel|bias))$")


def load_model_file(path):
    """Read and verify a model file: (config dict, weights dict). Raises ModelFileError, whatever the content.

    Every field is checked for type, shape and range before it is used: the archive (entries, sizes),
    the config (UTF-8 JSON object, format, version, digest, :func:`check_network_layout`,
    :func:`check_records`) and the weights (floating arrays named by the layout, of the shapes it implies).
    """
    try:
        path = Path(path)
        is_file = path.is_file()
    except (TypeError, ValueError, OSError) as error:  # not a path at all, an embedded NUL, a name too long
        raise ModelFileError(f"Model file {path!r} cannot be opened ({error}).") from None
    if not is_file:
        raise ModelFileError(f"Model file not found: {path}")
    arrays = _read_archive(path)
    config_array = arrays.pop("config", None)
    if config_array is None:
        raise ModelFileError(f"{path} is not an overlap_relevance model file (no config entry).")
    config = _decode_config(config_array, path)
    if config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an overlap_relevance model file (format {_short(config.get('format'))}).")
    version = config.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {_short(version)}; this plugin reads version "
            f"{FORMAT_VERSION}. Retrain the model with this version of the plugin, or update the plugin."
        )
    _check_weight_types(arrays, path)
    recorded = config.get("weights_sha256")
    if not isinstance(recorded, str) or weights_digest(arrays) != recorded:
        raise ModelFileError(
            f"{path} failed its integrity check: the weights' SHA-256 does not match the one recorded in the "
            "file. The file was modified or damaged; use the original file or retrain."
        )
    check_network_layout(config, arrays, path)
    check_records(config, path)
    return config, arrays


def _short(value, limit=60):
    """A value for a message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _read_archive(path):
    """The .npy arrays of the zip at ``path``, after checking entry names, count and sizes."""
    not_model = f"{path} is not a readable overlap_relevance model file"
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, RuntimeError) as error:
        raise ModelFileError(f"{not_model} ({error}).") from None
    names = [entry.filename for entry in entries]
    if len(entries) > MAX_ENTRIES:
        raise ModelFileError(f"{not_model}: it has {len(entries)} entries (a model file has about a dozen).")
    if len(set(names)) != len(names):
        raise ModelFileError(f"{not_model}: an entry name occurs twice.")
    odd = [name for name in names if not name.endswith(".npy") or name.count("/") or not name[:-4]]
    if odd:
        raise ModelFileError(f"{not_model}: entry {_short(odd[0])} is not a NumPy array (.npy).")
    size = sum(entry.file_size for entry in entries)
    if size > MAX_UNCOMPRESSED_BYTES:
        raise ModelFileError(f"{not_model}: its arrays would take {size / 2**20:,.0f} MiB once decompressed, more "
                             f"than the {MAX_UNCOMPRESSED_BYTES // 2**20} MiB a model file may hold.")
    try:
        # The file is opened here, not by np.load, so it is closed even when the archive is unreadable.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except MemoryError:
        raise ModelFileError(f"{not_model}: its arrays do not fit in memory.") from None
    except Exception as error:  # noqa: BLE001 - zip, header or pickle refusal: all mean "not a model file"
        raise ModelFileError(f"{not_model} ({type(error).__name__}: {_short(str(error), 200)}).") from None
    if not isinstance(arrays, dict) or not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise ModelFileError(f"{not_model}: its entries are not NumPy arrays.")
    return arrays


def _decode_config(array, path):
    """The config entry (a 1-D uint8 array of UTF-8 JSON) as a dict."""
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ModelFileError(f"{path} has a corrupt config: it must be UTF-8 JSON bytes (a 1-D uint8 array), "
                             f"not a {array.dtype} array of shape {array.shape}.")
    if array.size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{path} has a corrupt config: {array.size:,} bytes, more than "
                             f"{MAX_CONFIG_BYTES:,}.")
    try:
        config = json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ModelFileError(f"{path} has a corrupt config ({type(error).__name__}: {_short(str(error), 200)}).") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} has a corrupt config: a JSON {type(config).__name__}, not an object.")
    return config


def _check_weight_types(arrays, path):
    """Every weight entry is a real floating array with a name the format knows."""
    for name, array in arrays.items():
        if not _WEIGHT_NAME.match(name):
            raise ModelFileError(f"{path} holds an entry {_short(name)} that is not part of a model file; use the "
                                 "original file or retrain.")
        if array.dtype.kind != "f" or array.dtype.itemsize > 8 or array.dtype.fields is not None:
            raise ModelFileError(f"{path}: weight {name} is a {array.dtype} array; a model's weights are float32 "
                                 "or float64.")


def _positive_int(value, upper):
    return type(value) is int and 1 <= value <= upper


def check_network_layout(config, weights, path="The model"):
    """Raise ModelFileError unless ``config["network"]`` describes a network these ``weights`` make.

    Checks every field's type and range, then every weight's presence and shape, so that
    :class:`MixtureNetwork` never meets a value it does not expect.
    """

    unusable = f"{path} is not a usable overlap_relevance model"
    retrain = "use the bundled model, or retrain."
    network = config.get("network")
    if not isinstance(network, dict):
        raise ModelFileError(f"{unusable}: its config has no network layout (a JSON object); {retrain}")
    inputs = network.get("inputs")
    if (not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_WIDTH
            or not all(isinstance(name, str) for name in inputs) or len(set(inputs)) != len(inputs)):
        raise ModelFileError(f"{unusable}: the network's inputs must be a list of distinct descriptor names; {retrain}")
    if not isinstance(network.get("activation"), str) or network["activation"] not in _ACTIVATIONS:
        raise ModelFileError(f"{unusable}: unknown activation {_short(network.get('activation'))} (known: "
                             f"{', '.join(sorted(_ACTIVATIONS))}); {retrain}")
    n_trunk = network.get("n_trunk")
    if type(n_trunk) is not int or not 0 <= n_trunk <= MAX_TRUNK_LAYERS:
        raise ModelFileError(f"{unusable}: n_trunk must be a whole number of layers from 0 to {MAX_TRUNK_LAYERS}, "
                             f"not {_short(n_trunk)}; {retrain}")
    components = {}
    for key in ("overlap_components", "centroid_components"):
        if not _positive_int(network.get(key), MAX_COMPONENTS):
            raise ModelFileError(f"{unusable}: {key} must be a whole number from 1 to {MAX_COMPONENTS}, not "
                                 f"{_short(network.get(key))}; {retrain}")
        components[key] = network[key]
    residual = network.get("residual_means")
    if not isinstance(residual, list) or len(residual) != 2 or not all(
            isinstance(name, str) and name in inputs for name in residual):
        raise ModelFileError(f"{unusable}: residual_means must name two of its inputs; {retrain}")
    head_kind = network.get("overlap_head", "cover_2d")
    if not isinstance(head_kind, str) or head_kind not in OVERLAP_HEADS:
        raise ModelFileError(f"{unusable}: unknown overlap_head {_short(head_kind)} (known: {', '.join(OVERLAP_HEADS)}); "
                             f"{retrain}")
    hidden = network.get("hidden")
    if hidden is not None and (not isinstance(hidden, list) or len(hidden) != n_trunk
                               or not all(_positive_int(h, MAX_WIDTH) for h in hidden)):
        raise ModelFileError(f"{unusable}: hidden must list n_trunk layer widths; {retrain}")

    expected = {"input_mean": (len(inputs),), "input_std": (len(inputs),)}
    width = len(inputs)
    for i in range(n_trunk):
        kernel = weights.get(f"trunk_{i}_kernel")
        out = kernel.shape[1] if kernel is not None and kernel.ndim == 2 and kernel.shape[1] >= 1 else None
        if out is None:
            raise ModelFileError(f"{unusable}: trunk_{i}_kernel is missing or not a matrix; {retrain}")
        expected[f"trunk_{i}_kernel"], expected[f"trunk_{i}_bias"] = (width, out), (out,)
        width = out
    for head, key in (("overlap", "overlap_components"), ("centroid", "centroid_components")):
        size = (unit_raw_size(components[key]) if head_kind == "unit_atoms" and head == "overlap"
                else raw_size(components[key], 2))
        expected[f"{head}_kernel"], expected[f"{head}_bias"] = (width, size), (size,)
    for name, shape in expected.items():
        if name not in weights:
            raise ModelFileError(f"{unusable}: weight {name} is missing; {retrain}")
        if weights[name].shape != shape:
            raise ModelFileError(f"{unusable}: weight {name} has shape {weights[name].shape}, not {shape}; {retrain}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise ModelFileError(f"{unusable}: weights {', '.join(extra)} are not part of its layout; {retrain}")
    if not (np.abs(weights["input_std"]) > 0).all():
        raise ModelFileError(f"{unusable}: input_std has zeros, by which the inputs would be divided; {retrain}")


#: Records shown in reports and help, with the JSON types each known field may have (None: any JSON null).
_NUMBER = (int, float)
_RECORD_FIELDS = {
    "encoding": {"descriptors": list, "max_model_vertices": int, "simplify_tolerance": _NUMBER},
    "training": {"kind": str, "epochs": int, "train_pairs": int, "train_samples": int, "final_val_loss": _NUMBER,
                 "final_loss": _NUMBER, "history": dict, "data": dict, "machine": str, "recipe_hash": str,
                 "generator_sha256": str, "learning_rate": _NUMBER, "batch_size": int},
}


def check_records(config, path="The model"):
    """Raise ModelFileError unless the descriptive records (encoding, training) have the types readers expect."""
    for record, fields in _RECORD_FIELDS.items():
        value = config.get(record)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ModelFileError(f"{path} has a corrupt config: '{record}' must be a JSON object, not a "
                                 f"{type(value).__name__}. Use the original file or retrain.")
        for key, kind in fields.items():
            item = value.get(key)
            if item is not None and (isinstance(item, bool) or not isinstance(item, kind)):
                raise ModelFileError(f"{path} has a corrupt config: {record}.{key} is a {type(item).__name__}. "
                                     "Use the original file or retrain.")
    training = config.get("training") or {}
    history = training.get("history") or {}
    if not all(isinstance(series, list) for series in history.values()):
        raise ModelFileError(f"{path} has a corrupt config: training.history must map names to lists. "
                             "Use the original file or retrain.")
    data = training.get("data") or {}
    layers = data.get("source_layers")
    if data.get("sigma_m") is not None and (isinstance(data["sigma_m"], bool) or not isinstance(data["sigma_m"], _NUMBER)):
        raise ModelFileError(f"{path} has a corrupt config: training.data.sigma_m is not a number. "
                             "Use the original file or retrain.")
    if layers is not None and (not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values())):
        raise ModelFileError(f"{path} has a corrupt config: training.data.source_layers must map sides to objects. "
                             "Use the original file or retrain.")


_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


@dataclass
class RawOutputs:
    """Raw head outputs of the network for n pairs (float64)."""

    overlap: np.ndarray  # (n, P_overlap)
    centroid: np.ndarray  # (n, P_centroid)


class MixtureNetwork:
    """The NumPy forward pass of a model file's network.

    Parameters
    ----------
    config, weights : as returned by :func:`load_model_file`.
    """

    def __init__(self, config, weights):
        network = config["network"]
        self.config = config
        self.descriptor_names = tuple(network["inputs"])
        self.activation = _ACTIVATIONS[network["activation"]]
        self.n_trunk = int(network["n_trunk"])
        self.overlap_components = int(network["overlap_components"])
        self.centroid_components = int(network["centroid_components"])
        self.residual_index = [self.descriptor_names.index(name) for name in network["residual_means"]]
        #: "cover_2d" (a 2-D mixture over the covers) or "unit_atoms" (:mod:`.overlap_head`, whose baseline
        #: is added in ``UnitMixture.from_raw``, not here).
        self.overlap_head_kind = network.get("overlap_head", "cover_2d")
        # float64 throughout (the file stores float32): a float32 product's rounding depends on the BLAS
        # blocking, so the same pair scored in batches of other sizes (other chunks, other Dask partitions)
        # moved by ~1e-6; in float64 that is ~1e-15. The network costs ~10 µs per pair either way.
        self.mean = weights["input_mean"].astype(np.float64)
        self.inv_std = 1.0 / weights["input_std"].astype(np.float64)
        self.trunk = [(weights[f"trunk_{i}_kernel"].astype(np.float64), weights[f"trunk_{i}_bias"].astype(np.float64))
                      for i in range(self.n_trunk)]
        self.overlap_head = tuple(weights[f"overlap_{part}"].astype(np.float64) for part in ("kernel", "bias"))
        self.centroid_head = tuple(weights[f"centroid_{part}"].astype(np.float64) for part in ("kernel", "bias"))

    def raw(self, descriptors):
        """Raw outputs for (n, n_inputs) descriptors."""
        x = (np.asarray(descriptors, dtype=np.float64) - self.mean) * self.inv_std
        for kernel, bias in self.trunk:
            x = self.activation(x @ kernel + bias)
        overlap = x @ self.overlap_head[0] + self.overlap_head[1]
        k = self.overlap_components
        if self.overlap_head_kind == "cover_2d":
            baseline = np.asarray(descriptors, dtype=np.float64)[:, self.residual_index]  # (n, 2)
            overlap[:, k:k + 2 * k] += np.tile(baseline, k)
        centroid = x @ self.centroid_head[0] + self.centroid_head[1]
        return RawOutputs(overlap, centroid)

    def mixtures(self, descriptors):
        """(overlap mixture over (cover_a, cover_b), centroid mixture in normalised units); 2-D head only."""
        if self.overlap_head_kind != "cover_2d":
            raise ValueError("mixtures() is for the 2-D overlap head; see OverlapModel.predict_frames")
        raw = self.raw(descriptors)
        return (mixture_from_raw(raw.overlap, self.overlap_components, 2),
                mixture_from_raw(raw.centroid, self.centroid_components, 2))
