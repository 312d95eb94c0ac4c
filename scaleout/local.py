"""The single-process engine: both layers whole, in one Python process, no Dask (runs in ``.venv`` too)."""

import time

import numpy as np

from ..model.scoring import load_model
from .kernel import RELEVANCE_SUFFIXES, best_matches, prepare_lonlat, relevance_columns


def sigma_per_feature(n, sigma=0.0, sigma_values=None):
    """(n,) σ in metres: the field's value where finite and >= 0, else ``sigma`` (as the plugin does)."""
    out = np.full(n, float(sigma))
    if sigma_values is not None:
        values = np.asarray(sigma_values, dtype=float)
        usable = np.isfinite(values) & (values >= 0)
        out[usable] = values[usable]
    return out


def score_layers(input_geoms, input_crs, reference_geoms, reference_crs, reference_keys, sigma,
                 search_distance_m=0.0, threshold=0.5, model=None, same_layer_ids=None, workers=None):
    """Relevance of every input feature, whole layers at once.

    Returns (values, null, info): values/null as :func:`.kernel.relevance_columns`, info a dict with
    n_pairs and the seconds per stage.
    """
    model = model if model is not None else load_model()
    seconds = {}
    started = time.perf_counter()
    model_a, usable_a, detail_a = prepare_lonlat(input_geoms, input_crs, with_detail=True)
    model_b, _, detail_b = prepare_lonlat(reference_geoms, reference_crs, with_detail=True)
    seconds["preparing"] = time.perf_counter() - started
    started = time.perf_counter()
    ids_a, ids_b = same_layer_ids if same_layer_ids is not None else (None, None)
    best, n_pairs = best_matches(model, model_a, model_b, sigma, search_distance_m, threshold, ids_a, ids_b,
                                 workers=workers, input_detail=detail_a, reference_detail=detail_b)
    seconds["scoring"] = time.perf_counter() - started
    values, null = relevance_columns(best, usable_a, reference_keys)
    return values, null, {"n_pairs": n_pairs, "seconds": seconds}


def output_fields(layer, values, null, prefix="rel_"):
    """The input's fields then the relevance fields: ({name: array}, {name: null mask})."""
    fields = dict(layer.fields)
    nulls = dict(layer.nulls)
    for suffix in RELEVANCE_SUFFIXES:
        name = prefix + suffix
        if name in fields:
            raise SystemExit(f"The input layer already has a field named '{name}'; rename or remove it.")
        fields[name] = values[suffix]
        nulls[name] = null[suffix]
    return fields, nulls
