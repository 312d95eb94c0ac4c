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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mixture import mixture_from_raw

FORMAT_NAME = "overlap_relevance.mdn"
FORMAT_VERSION = 1
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


def load_model_file(path):
    """Read and verify a model file: (config dict, weights dict). Raises ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path}")
    try:
        # The file is opened here, not by np.load, so it is closed even when the archive is unreadable.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # zip, header or pickle refusal: all mean "not a model file"
        raise ModelFileError(f"{path} is not a readable overlap_relevance model file ({error}).") from None
    if "config" not in arrays:
        raise ModelFileError(f"{path} is not an overlap_relevance model file (no config entry).")
    try:
        config = json.loads(arrays.pop("config").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} has a corrupt config ({error}).") from None
    if config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an overlap_relevance model file (format {config.get('format')!r}).")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {config.get('format_version')!r}; this plugin reads version "
            f"{FORMAT_VERSION}. Retrain the model with this version of the plugin, or update the plugin."
        )
    if weights_digest(arrays) != config.get("weights_sha256"):
        raise ModelFileError(
            f"{path} failed its integrity check: the weights' SHA-256 does not match the one recorded in the "
            "file. The file was modified or damaged; use the original file or retrain."
        )
    return config, arrays


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
        baseline = np.asarray(descriptors, dtype=np.float64)[:, self.residual_index]  # (n, 2)
        overlap[:, k:k + 2 * k] += np.tile(baseline, k)
        centroid = x @ self.centroid_head[0] + self.centroid_head[1]
        return RawOutputs(overlap, centroid)

    def mixtures(self, descriptors):
        """(overlap mixture over (cover_a, cover_b), centroid mixture in normalised units)."""
        raw = self.raw(descriptors)
        return (mixture_from_raw(raw.overlap, self.overlap_components, 2),
                mixture_from_raw(raw.centroid, self.centroid_components, 2))
