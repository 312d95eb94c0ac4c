"""Small model files made with NumPy, for tests that must not train (or import TensorFlow)."""

import numpy as np

from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.mixture import raw_size
from overlap_relevance.model.network import save_model_file


def numpy_model_file(path, seed=0, hidden=(8,), components=2, trunk_scale=0.3, head_scale=0.1,
                     overlap_bias=None, centroid_bias=None, extra_config=None):
    """Write a model file with random trunk weights; returns its weights dict.

    head_scale : standard deviation of the heads' kernels (0 makes the heads constant).
    overlap_bias, centroid_bias : raw head biases (default 0: unit sigmas, equal weights).
    extra_config : merged into the config (e.g. "encoding", "training" records).
    """
    rng = np.random.default_rng(seed)
    n_inputs = len(DESCRIPTOR_NAMES)
    size = raw_size(components, 2)
    weights = {"input_mean": np.zeros(n_inputs, np.float32), "input_std": np.ones(n_inputs, np.float32)}
    width = n_inputs
    for i, h in enumerate(hidden):
        weights[f"trunk_{i}_kernel"] = rng.normal(0, trunk_scale, (width, h)).astype(np.float32)
        weights[f"trunk_{i}_bias"] = np.zeros(h, np.float32)
        width = h
    biases = {"overlap": overlap_bias, "centroid": centroid_bias}
    for head in ("overlap", "centroid"):
        weights[f"{head}_kernel"] = rng.normal(0, head_scale, (width, size)).astype(np.float32)
        bias = biases[head]
        weights[f"{head}_bias"] = np.zeros(size, np.float32) if bias is None else np.asarray(bias, np.float32)
    config = {"network": {"inputs": list(DESCRIPTOR_NAMES), "activation": "relu", "n_trunk": len(hidden),
                          "hidden": list(hidden), "overlap_components": components,
                          "centroid_components": components, "residual_means": ["cover_a0", "cover_b0"]}}
    config.update(extra_config or {})
    save_model_file(path, config, weights)
    return weights


def rewrite_arrays(path, mutate):
    """Change a model file's stored arrays in place without updating the digest: what tampering looks like."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    mutate(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
