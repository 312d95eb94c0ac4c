"""The pure-Python core of overlap_relevance.

Data flow: geometries in any CRS -> :mod:`.frame` (local metres around each pair)
-> :mod:`.overlap` (exact reference) / the network (:mod:`.mixture` distributions).

Nothing in this package imports ``qgis``; only :mod:`.training` imports TensorFlow.
"""


def load_model(path=None):
    """The bundled overlap model, or the model file at ``path`` (see :mod:`.scoring`)."""
    from .scoring import load_model as _load

    return _load(path)


def match(geoms_a, geoms_b, crs, sigma=0.0, crs_b=None, search_distance=0.0, model=None, thresholds=None):
    """Match two arrays of shapely polygons (input = new, reference = old): a :class:`.matching.MatchResult`.

    geoms_a, geoms_b : (n_a,), (n_b,) polygons in ``crs`` (B in ``crs_b`` when given); sigma : scalar or
    (n_a,) positional uncertainty in metres; search_distance : metres (at least 3σ is searched);
    model : an OverlapModel (default: the bundled one); thresholds : :class:`.matching.MatchThresholds`.
    """
    import numpy as np

    from .frame import layer_to_lonlat
    from .matching import match_layers
    from .preparation import prepare_layer

    model = load_model() if model is None else model
    geoms_a = np.asarray(geoms_a, dtype=object).reshape(-1)
    geoms_b = np.asarray(geoms_b, dtype=object).reshape(-1)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (len(geoms_a),)).copy()
    if np.any(~np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError("sigma must be finite and >= 0 (metres)")
    layer_a = prepare_layer(layer_to_lonlat(geoms_a, crs))
    layer_b = prepare_layer(layer_to_lonlat(geoms_b, crs if crs_b is None else crs_b))
    return match_layers(model, layer_a, layer_b, sigma, search_distance, thresholds=thresholds)
