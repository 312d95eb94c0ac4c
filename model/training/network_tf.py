"""The Keras twin of :class:`..network.MixtureNetwork`, and its export to a model file.

Training code only: this module imports TensorFlow/Keras. The exported ``.npz`` is
what QGIS runs, on NumPy (:mod:`..network`).
"""

import keras
import numpy as np
from keras import ops

from ..encoding import DESCRIPTOR_NAMES
from ..network import save_model_file
from ..overlap_head import raw_size as unit_raw_size
from .mixture_layers import DescriptorResidual, MixtureHead, MixtureNLL
from .overlap_head_tf import UnitMixtureNLL, UnitResidual

#: Overlap head kinds (``network.overlap_head`` in a model file): the 2-D mixture over (cover_a, cover_b),
#: and the 1-D mixture over u = I / min(|A|, |B|) with atoms at 0 and 1 (:mod:`..overlap_head`).
OVERLAP_HEADS = ("cover_2d", "unit_atoms")

#: The descriptors every component mean of the overlap head is an offset from: the sweep surrogate's mean
#: covers (at σ = 0 they are the exact covers cover_a0, cover_b0). Chosen on validation pairs (seed 2) over
#: cover_a0/cover_b0 and over also scaling the components by the sweep's SDs.
RESIDUAL_MEANS = ("sweep_cover_a", "sweep_cover_b")


@keras.saving.register_keras_serializable(package="overlap_relevance")
class ResidualMeans(DescriptorResidual):
    """Adds chosen input descriptors to every component mean of a 2D mixture head.

    Inputs ``[raw (batch, P), descriptors (batch, F)]``; output ``(batch, P)``, the
    raw values with ``descriptors[:, index]`` added to each component's means.
    """

    def call(self, inputs):
        raw, descriptors = inputs
        k = self.n_components
        baseline = ops.take(descriptors, self.index, axis=1)
        offsets = ops.concatenate(
            [ops.zeros_like(raw[:, :k]), ops.tile(baseline, [1, k]), ops.zeros_like(raw[:, k + 2 * k:])], axis=1
        )
        return raw + offsets


def build_model(input_mean, input_std, hidden=(128, 128, 64), activation="relu", overlap_components=3,
                centroid_components=3, seed=0, overlap_head="cover_2d"):
    """The Keras model: descriptors -> {"overlap": raw, "centroid": raw}; ``overlap_head`` one of
    :data:`OVERLAP_HEADS`."""
    if overlap_head not in OVERLAP_HEADS:
        raise ValueError(f"overlap_head must be one of {OVERLAP_HEADS}, not {overlap_head!r}")
    n_inputs = len(DESCRIPTOR_NAMES)
    initializer = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((n_inputs,), name="descriptors")
    x = keras.layers.Normalization(mean=np.asarray(input_mean), variance=np.asarray(input_std) ** 2,
                                   name="standardise")(inputs)
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation=activation, kernel_initializer=initializer, name=f"trunk_{i}")(x)
    residual_index = [DESCRIPTOR_NAMES.index(name) for name in RESIDUAL_MEANS]
    if overlap_head == "unit_atoms":
        overlap_raw = keras.layers.Dense(unit_raw_size(overlap_components), kernel_initializer=initializer,
                                         name="overlap_head")(x)
        overlap = UnitResidual(overlap_components, residual_index, name="overlap")([overlap_raw, inputs])
    else:
        overlap_raw = MixtureHead(overlap_components, 2, kernel_initializer=initializer, name="overlap_head")(x)
        overlap = ResidualMeans(overlap_components, residual_index, name="overlap")([overlap_raw, inputs])
    centroid = MixtureHead(centroid_components, 2, kernel_initializer=initializer, name="centroid")(x)
    model = keras.Model(inputs, {"overlap": overlap, "centroid": centroid}, name="overlap_mdn")
    model.mdn_layout = dict(hidden=list(hidden), activation=activation, overlap_components=overlap_components,
                            centroid_components=centroid_components, overlap_head=overlap_head)
    return model


def model_from_file(config, weights, seed=0):
    """The Keras model of a model file (``config`` and ``weights`` of :func:`..network.load_model_file`).

    Builds the architecture the config records with :func:`build_model` and loads every
    weight (the input standardisation included), so that the Keras model computes what
    :class:`..network.MixtureNetwork` computes; used to fine-tune a model. Raises
    ValueError when the file's network does not fit this version's descriptors or layout.
    """
    network = config["network"]
    if list(network["inputs"]) != list(DESCRIPTOR_NAMES):
        raise ValueError("the model was trained on other descriptors than this version of the plugin computes; "
                         "train from scratch instead")
    if list(network.get("residual_means", RESIDUAL_MEANS)) != list(RESIDUAL_MEANS):
        raise ValueError(f"the model's residual means {network.get('residual_means')} are not {list(RESIDUAL_MEANS)}")
    n_trunk = int(network["n_trunk"])
    hidden = network.get("hidden") or [int(np.shape(weights[f"trunk_{i}_bias"])[0]) for i in range(n_trunk)]
    model = build_model(np.asarray(weights["input_mean"], dtype=np.float32),
                        np.asarray(weights["input_std"], dtype=np.float32), hidden=tuple(int(h) for h in hidden),
                        activation=network["activation"], overlap_components=int(network["overlap_components"]),
                        centroid_components=int(network["centroid_components"]), seed=seed,
                        overlap_head=network.get("overlap_head", "cover_2d"))
    for i in range(n_trunk):
        model.get_layer(f"trunk_{i}").set_weights([weights[f"trunk_{i}_kernel"], weights[f"trunk_{i}_bias"]])
    model.get_layer("overlap_head").set_weights([weights["overlap_kernel"], weights["overlap_bias"]])
    model.get_layer("centroid").set_weights([weights["centroid_kernel"], weights["centroid_bias"]])
    return model


def losses(model):
    layout = model.mdn_layout
    return {
        "overlap": (UnitMixtureNLL(layout["overlap_components"], name="overlap_nll")
                    if layout.get("overlap_head") == "unit_atoms"
                    else MixtureNLL(layout["overlap_components"], 2, name="overlap_nll")),
        "centroid": MixtureNLL(layout["centroid_components"], 2, name="centroid_nll",
                               reduction="mean_with_sample_weight"),
    }


def export_model_file(model, path, input_mean, input_std, encoding, training):
    """Write the NumPy model file for ``model`` (see :mod:`..network` for the format)."""
    layout = model.mdn_layout
    weights = {
        "input_mean": np.asarray(input_mean, dtype=np.float32),
        "input_std": np.asarray(input_std, dtype=np.float32),
    }
    for i in range(len(layout["hidden"])):
        kernel, bias = model.get_layer(f"trunk_{i}").get_weights()
        weights[f"trunk_{i}_kernel"], weights[f"trunk_{i}_bias"] = kernel.astype(np.float32), bias.astype(np.float32)
    kernel, bias = model.get_layer("overlap_head").get_weights()
    weights["overlap_kernel"], weights["overlap_bias"] = kernel.astype(np.float32), bias.astype(np.float32)
    kernel, bias = model.get_layer("centroid").get_weights()
    weights["centroid_kernel"], weights["centroid_bias"] = kernel.astype(np.float32), bias.astype(np.float32)
    config = {
        "network": {
            "inputs": list(DESCRIPTOR_NAMES),
            "activation": layout["activation"],
            "n_trunk": len(layout["hidden"]),
            "hidden": layout["hidden"],
            "overlap_components": layout["overlap_components"],
            "centroid_components": layout["centroid_components"],
            "residual_means": list(RESIDUAL_MEANS),
        },
        "encoding": encoding,
        "training": training,
    }
    if layout.get("overlap_head", "cover_2d") != "cover_2d":  # files of the 2-D head keep their old config
        config["network"]["overlap_head"] = layout["overlap_head"]
    return save_model_file(path, config, weights)
