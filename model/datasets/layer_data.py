"""Training data from the user's own layers, and the file that carries it to the training process.

Plain NumPy / shapely (no TensorFlow, no QGIS): the Processing algorithm
``overlaprelevance:trainmodel`` builds the arrays in QGIS's process, writes them
with :func:`save_training_data`, and the training process
(:mod:`.finetune`, which does import TensorFlow) reads them back with
:func:`load_training_data`.

Labels under positional uncertainty (σ: per-axis standard deviation, metres, of a
rigid translation of B relative to A) are computed exactly: every candidate pair
gives one sample at σ = 0 (d = 0) and, where σ > 0, ``displacements`` samples with
d ~ N(0, σ²I₂), each labelled with the exact overlap of A and B + d in the pair's
local frame (:func:`..overlap.exact_overlap` on the full-detail geometries). The
network inputs are the descriptors of the model geometries (:func:`..preparation.model_geometry`)
at the pair's σ, exactly as :func:`training_arrays` makes them for synthetic pairs.

The data file is an ``.npz`` without pickles: float/int arrays plus ``meta``, a
UTF-8 JSON document stored as a uint8 array.
"""

import json
from pathlib import Path

import numpy as np

from ..encoding import DESCRIPTOR_NAMES, pair_descriptors
from ..overlap import exact_overlap, translate
from ..preparation import model_geometry

DATA_FORMAT = "overlap_relevance.training_data"
DATA_VERSION = 1
#: Arrays every data file holds, aligned on axis 0 (n samples).
ARRAY_NAMES = ("x", "overlap", "centroid", "centroid_mask", "sigma", "group", "source")
#: Codes of the ``source`` array.
SOURCE_LAYERS, SOURCE_SYNTHETIC = 0, 1


def _targets(a, b_displaced, context_reference, context_scale):
    """Overlap targets (n, 2), centroid targets (n, 2) in normalised units and the centroid mask (n,)."""
    exact = exact_overlap(a, b_displaced)
    centroid = np.column_stack([exact.centroid_x, exact.centroid_y])
    mask = np.all(np.isfinite(centroid), axis=1)
    target = np.zeros_like(centroid)
    target[mask] = (centroid[mask] - context_reference[mask]) / context_scale[mask, None]
    return np.column_stack([exact.cover_a, exact.cover_b]), target, mask


def layer_pair_arrays(a, b, sigma, displacements, rng, group_offset=0):
    """Network inputs and exact targets for candidate pairs of the user's layers.

    Parameters
    ----------
    a, b : (p,) valid (Multi)Polygons of each pair in its local frame (metres), full detail
        (:attr:`..frame.PairFrames.a`, ``.b``).
    sigma : scalar or (p,) positional uncertainty, metres.
    displacements : displacements drawn per pair where σ > 0 (besides the σ = 0 sample).
    rng : numpy Generator for the displacements.
    group_offset : the group id of the first pair; all samples of one pair share its group
        (so that a train/validation split never separates them).

    Returns a dict of arrays with the names of :data:`ARRAY_NAMES` (source = layers), and
    ``iou`` (n,), the exact IoU label of every sample.
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    p = len(a)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (p,)).copy()
    model_a, model_b = model_geometry(a), model_geometry(b)
    group = np.arange(p, dtype=np.int64) + int(group_offset)

    # σ = 0: the pair as it is.
    x0, context0 = pair_descriptors(model_a, model_b, np.zeros(p))
    overlap0, centroid0, mask0 = _targets(a, b, context0["reference"], context0["scale"])
    parts = [dict(x=x0, overlap=overlap0, centroid=centroid0, centroid_mask=mask0, sigma=np.zeros(p), group=group)]

    uncertain = np.flatnonzero(sigma > 0)
    k = int(displacements)
    if len(uncertain) and k > 0:
        x1, context1 = pair_descriptors(model_a[uncertain], model_b[uncertain], sigma[uncertain])
        rows = np.repeat(uncertain, k)  # k samples of each uncertain pair, pair by pair
        local = np.repeat(np.arange(len(uncertain)), k)
        d = sigma[rows, None] * rng.standard_normal((len(rows), 2))
        overlap1, centroid1, mask1 = _targets(a[rows], translate(b[rows], d), context1["reference"][local],
                                              context1["scale"][local])
        parts.append(dict(x=x1[local], overlap=overlap1, centroid=centroid1, centroid_mask=mask1,
                          sigma=sigma[rows], group=group[rows]))
    out = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return _typed(out, SOURCE_LAYERS)


def training_arrays(pairs):
    """Network inputs and targets for a :class:`.synthetic.SyntheticPairs` batch.

    Returns dict with ``x`` (n, F) float32 descriptors, ``overlap`` (n, 2) targets
    (cover_a, cover_b after the displacement), ``centroid`` (n, 2) centroid targets
    in normalised units (relative to the reference point, divided by the pair
    scale; 0 where masked), ``centroid_mask`` (n,) float32 and ``sigma`` (n,).
    """
    x, context = pair_descriptors(model_geometry(pairs.a), model_geometry(pairs.b), pairs.sigma)
    centroid = np.asarray(pairs.centroid, dtype=float)
    mask = np.all(np.isfinite(centroid), axis=1)
    target = np.zeros_like(centroid)
    target[mask] = (centroid[mask] - context["reference"][mask]) / context["scale"][mask, None]
    return {
        "x": x,
        "overlap": np.column_stack([pairs.cover_a, pairs.cover_b]).astype(np.float32),
        "centroid": target.astype(np.float32),
        "centroid_mask": mask.astype(np.float32),
        "sigma": np.asarray(pairs.sigma, dtype=np.float64),
        "iou": np.asarray(pairs.iou, dtype=np.float64),
        "scale": context["scale"],
    }


def synthetic_arrays(pairs, group_offset=0):
    """The arrays of :data:`ARRAY_NAMES` for a :class:`.synthetic.SyntheticPairs` batch (source = synthetic)."""
    arrays = training_arrays(pairs)
    arrays = {key: arrays[key] for key in ("x", "overlap", "centroid", "centroid_mask", "sigma", "iou")}
    arrays["group"] = np.arange(len(pairs), dtype=np.int64) + int(group_offset)
    return _typed(arrays, SOURCE_SYNTHETIC)


def _typed(arrays, source):
    n = len(arrays["x"])
    out = {
        "x": np.asarray(arrays["x"], dtype=np.float32),
        "overlap": np.asarray(arrays["overlap"], dtype=np.float32).reshape(n, 2),
        "centroid": np.asarray(arrays["centroid"], dtype=np.float32).reshape(n, 2),
        "centroid_mask": np.asarray(arrays["centroid_mask"], dtype=np.float32),
        "sigma": np.asarray(arrays["sigma"], dtype=np.float64),
        "group": np.asarray(arrays["group"], dtype=np.int64),
        "source": np.full(n, source, dtype=np.int8),
    }
    if "iou" in arrays:
        out["iou"] = np.asarray(arrays["iou"], dtype=np.float64)
    else:  # IoU from the two coverages: |A∩B| / (|A| + |B| − |A∩B|) = ca·cb / (ca + cb − ca·cb)
        ca, cb = out["overlap"][:, 0].astype(float), out["overlap"][:, 1].astype(float)
        denominator = ca + cb - ca * cb
        with np.errstate(divide="ignore", invalid="ignore"):
            out["iou"] = np.where(denominator > 0, ca * cb / np.where(denominator > 0, denominator, 1.0), 0.0)
    return out


def concatenate(parts):
    """One dict of arrays from several (layer and synthetic parts)."""
    parts = [part for part in parts if len(part["x"])]
    if not parts:
        return _typed({"x": np.zeros((0, len(DESCRIPTOR_NAMES))), "overlap": np.zeros((0, 2)),
                       "centroid": np.zeros((0, 2)), "centroid_mask": np.zeros(0), "sigma": np.zeros(0),
                       "group": np.zeros(0)}, SOURCE_LAYERS)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def save_training_data(path, arrays, meta):
    """Write the arrays (dict, :data:`ARRAY_NAMES` at least) and ``meta`` (JSON-able dict) to ``path``."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise ValueError(f"training data lacks {missing}")
    meta = dict(meta, format=DATA_FORMAT, format_version=DATA_VERSION, descriptors=list(DESCRIPTOR_NAMES))
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    with open(path, "wb") as handle:  # a handle keeps numpy from appending '.npz'
        np.savez(handle, meta=blob, **{name: np.asarray(value) for name, value in arrays.items()})
    return path


def load_training_data(path):
    """(arrays dict, meta dict) of a file written by :func:`save_training_data`; ValueError when it is not one."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if "meta" not in arrays:
        raise ValueError(f"{path} is not an overlap_relevance training data file (no meta entry)")
    meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    if meta.get("format") != DATA_FORMAT or meta.get("format_version") != DATA_VERSION:
        raise ValueError(f"{path}: unknown training data format {meta.get('format')!r} "
                         f"version {meta.get('format_version')!r}")
    if list(meta.get("descriptors", [])) != list(DESCRIPTOR_NAMES):
        raise ValueError(f"{path} was written with other descriptors than this version of the plugin computes")
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}")
    n = len(arrays["x"])
    if any(len(arrays[name]) != n for name in ARRAY_NAMES):
        raise ValueError(f"{path}: arrays of different lengths")
    return arrays, meta


def split_by_group(group, validation_share, seed):
    """(train rows, validation rows): whole groups go to validation, about ``validation_share`` of them.

    At least one group is held out when there are two or more; with a single group the
    validation rows are the training rows.
    """
    group = np.asarray(group)
    ids = np.unique(group)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    if len(ids) < 2:
        rows = np.arange(len(group))
        return rows, rows
    n_validation = min(len(ids) - 1, max(1, int(round(validation_share * len(ids)))))
    held_out = rng.choice(ids, size=n_validation, replace=False)
    is_validation = np.isin(group, held_out)
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
