"""Scoring on Dask: both layers Hilbert-sorted on one world grid, then one task per input partition.

1. **Prepare** every partition of both sides (lon/lat, model geometries, σ, search distance, a Hilbert key
   of each feature's centre on the whole lon/lat world, so both layers share one grid). Persisted.
2. **Sort**: the input's keys give the bucket boundaries (quantiles of a sample), both sides are split by
   them and gathered into buckets: bucket i of the input and bucket i of the reference cover the same
   stretch of the curve. Ids are explicit columns (``_order``: partition and row), never the index.
3. **Score**: each input bucket is one task, with the reference buckets whose outline (lon/lat boxes, split
   at the antimeridian as the candidate search splits them) meets the input bucket's outline widened by
   its largest search distance (metres to degrees, conservatively). The task finds candidates, scores
   them and keeps each feature's best match locally, so every input feature is kept, with or without a
   candidate, and the numbers are those of the single process.

Imports Dask, pandas and geopandas: only ``.venv-dask`` runs this module.
"""

from functools import lru_cache

import numpy as np

from .kernel import (
    FIELD_PREFIX,
    RELEVANCE_SUFFIXES,
    best_matches,
    feature_search_distances,
    hilbert_keys,
    outline,
    outlines_meet,
    prepare_lonlat,
    relevance_columns,
    unit_centre_lonlat,
)
from .local import sigma_per_feature

ORDER = "_order"  # partition << 32 | row: the feature's place in the layer as given
_MODEL, _USABLE, _SIGMA, _DISTANCE, _KEY, _REF_KEY = "_model", "_usable", "_sigma", "_distance", "_hilbert", "_key"
_INTERNAL = (ORDER, _MODEL, _USABLE, _SIGMA, _DISTANCE, _KEY)
_SAMPLE_PER_PARTITION = 2000


@lru_cache(maxsize=4)
def _model(path):
    from ..model.scoring import load_model

    return load_model(path)


def _prepare_input(frame, part, crs, sigma, sigma_field, search_distance):
    import pandas as pd

    frame = frame.copy()
    geoms, usable = prepare_lonlat(frame.geometry.values, crs)
    values = None
    if sigma_field:
        values = pd.to_numeric(frame[sigma_field], errors="coerce").astype(float).to_numpy(na_value=np.nan)
    feature_sigma = sigma_per_feature(len(frame), sigma, values)
    frame[ORDER] = (np.int64(part) << 32) + np.arange(len(frame), dtype=np.int64)
    frame[_MODEL] = pd.Series(geoms, index=frame.index, dtype=object)
    frame[_USABLE] = usable
    frame[_SIGMA] = feature_sigma
    frame[_DISTANCE] = feature_search_distances(search_distance, feature_sigma)
    frame[_KEY] = hilbert_keys(unit_centre_lonlat(geoms))
    return frame


def _prepare_reference(frame, part, crs, key):
    import pandas as pd

    geoms, usable = prepare_lonlat(frame.geometry.values, crs)
    keys = frame.index.to_numpy() if key is None else frame[key].to_numpy()
    out = pd.DataFrame({ORDER: (np.int64(part) << 32) + np.arange(len(frame), dtype=np.int64),
                        _REF_KEY: keys, _MODEL: pd.Series(geoms, dtype=object)})
    out[_KEY] = hilbert_keys(unit_centre_lonlat(geoms))
    return out[usable].reset_index(drop=True)  # an unusable reference feature never matches


def _key_sample(frame):
    keys = np.sort(frame[_KEY].to_numpy())
    step = max(1, len(keys) // _SAMPLE_PER_PARTITION)
    return keys[::step]


def _split(frame, boundaries):
    bucket = np.searchsorted(boundaries, frame[_KEY].to_numpy(), side="right")
    return [frame.iloc[np.flatnonzero(bucket == i)] for i in range(len(boundaries) + 1)]


def _gather(*pieces):
    import pandas as pd

    pieces = [p for p in pieces if len(p)] or list(pieces[:1])
    return pd.concat(pieces) if len(pieces) > 1 else pieces[0]


def _input_outline(frame):
    if not len(frame):
        return np.full(4, np.nan)
    return outline(frame[_MODEL].to_numpy(), frame[_DISTANCE].to_numpy())


def _reference_outline(frame):
    if not len(frame):
        return np.full(4, np.nan)
    return outline(frame[_MODEL].to_numpy())


def _score_bucket(left, model_path, threshold, key_dtype, prefix, same_layer, *rights):
    import pandas as pd

    right = pd.concat(rights) if len(rights) > 1 else (rights[0] if rights else None)
    if right is not None:
        right = right.sort_values(ORDER, kind="stable")  # the layer's own order, so ties go as in one process
        reference_geoms, reference_keys = right[_MODEL].to_numpy(), right[_REF_KEY].to_numpy()
        right_order = right[ORDER].to_numpy()
    else:
        reference_geoms, reference_keys = np.empty(0, dtype=object), np.empty(0, dtype=object)
        right_order = np.empty(0, dtype=np.int64)
    ids = (left[ORDER].to_numpy(), right_order) if same_layer else (None, None)
    best, _ = best_matches(_model(model_path), left[_MODEL].to_numpy(), reference_geoms, left[_SIGMA].to_numpy(),
                           left[_DISTANCE].to_numpy(), threshold, *ids, workers=1)
    values, null = relevance_columns(best, left[_USABLE].to_numpy(), reference_keys)
    return _output_frame(left, values, null, key_dtype, prefix)


def _output_frame(left, values, null, key_dtype, prefix):
    import pandas as pd

    out = left.drop(columns=[c for c in _INTERNAL if c in left.columns])
    for suffix in RELEVANCE_SUFFIXES:
        kind = key_dtype if suffix == "match" else ("Int64" if suffix == "n" else "Float64")
        out[prefix + suffix] = _nullable_column(pd, values[suffix], null[suffix], kind, out.index)
    return out


def _nullable_column(pd, values, mask, kind, index):
    if kind == "object":
        data = np.asarray(values, dtype=object).copy()
        data[mask] = None
        return pd.Series(data, index=index, dtype=object)
    series = pd.Series(pd.array(np.where(mask, 0, values), dtype=kind), index=index)
    return series.mask(pd.Series(mask, index=index))


def _key_dtype(reference_meta, key):
    import pandas as pd

    dtype = reference_meta.index.dtype if key is None else reference_meta[key].dtype
    if pd.api.types.is_integer_dtype(dtype):
        return "Int64"
    if pd.api.types.is_float_dtype(dtype):
        return "Float64"
    return "object"


def score_relevance(input_ddf, reference_ddf, reference_key=None, search_distance=0.0, sigma=0.0, sigma_field=None,
                    threshold=0.5, model=None, partitions=None, prefix=FIELD_PREFIX, same_layer=False, progress=False):
    """Relevance of every input feature's best reference match, as ``scorerelevance`` writes it.

    Parameters
    ----------
    input_ddf, reference_ddf : dask-geopandas GeoDataFrames, each with a CRS (they may differ).
    reference_key : the reference column written as ``rel_match`` (None: the reference's index).
    search_distance : metres; widened per feature to 3σ. sigma : metres, or sigma_field, a column of
        the input with σ per feature (the default where it is NULL or negative).
    threshold : the IoU of ``rel_p``. model : a model file, None for the bundled one.
    partitions : buckets of the Hilbert sort (default: the larger partition count of the two).
    same_layer : both sides are one layer, read the same way: a feature never matches itself.
    progress : show progress bars of the preparation (distributed's when a client is running).

    Returns a lazy dask-geopandas GeoDataFrame: the input's columns and geometry (the input's CRS and
    index), then ``rel_match, rel_score, rel_p, rel_cov, rel_covref, rel_sd, rel_n``; one row per input
    feature, in Hilbert order (index as the input's). The preparation and the sort of both sides run
    (persisted) when this is called; the scoring runs when the result is computed or written.
    """
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (registers GeoDataFrame collections with dask)

    if input_ddf.crs is None or reference_ddf.crs is None:
        raise ValueError("Both layers need a CRS.")
    for name in (prefix + s for s in RELEVANCE_SUFFIXES):
        if name in input_ddf.columns:
            raise ValueError(f"The input already has a column named '{name}'; choose another prefix.")
    n_buckets = int(partitions or max(input_ddf.npartitions, reference_ddf.npartitions))
    input_crs, reference_crs = input_ddf.crs, reference_ddf.crs
    model_path = None if model is None else str(model)
    prepare_in = dask.delayed(_prepare_input, pure=True)
    prepare_ref = dask.delayed(_prepare_reference, pure=True)
    left = [prepare_in(part, i, input_crs, float(sigma), sigma_field, float(search_distance))
            for i, part in enumerate(input_ddf.to_delayed())]
    right = [prepare_ref(part, i, reference_crs, reference_key) for i, part in enumerate(reference_ddf.to_delayed())]
    prepared = _persist(dask, left + right, progress)
    left, right = prepared[:len(left)], prepared[len(left):]

    # One grid for both sides: bucket boundaries from the input's keys.
    samples = dask.compute(*[dask.delayed(_key_sample)(p) for p in left])
    keys = np.sort(np.concatenate(samples)) if samples else np.empty(0, dtype=np.int64)
    if len(keys):
        boundaries = np.unique(np.quantile(keys, np.arange(1, n_buckets) / n_buckets, method="lower"))
    else:
        boundaries = np.empty(0, dtype=np.int64)
    n_buckets = len(boundaries) + 1
    left_buckets = _buckets(dask, left, boundaries)
    right_buckets = _buckets(dask, right, boundaries)
    persisted = _persist(dask, left_buckets + right_buckets, progress)
    left_buckets, right_buckets = persisted[:n_buckets], persisted[n_buckets:]
    del prepared, left, right  # the buckets hold everything from here on
    outlines = dask.compute(*[dask.delayed(_input_outline)(b) for b in left_buckets],
                            *[dask.delayed(_reference_outline)(b) for b in right_buckets])
    meets = outlines_meet(np.array(outlines[:n_buckets]), np.array(outlines[n_buckets:]))

    key_dtype = _key_dtype(reference_ddf._meta, reference_key)
    score = dask.delayed(_score_bucket, pure=True)
    tasks = [score(bucket, model_path, float(threshold), key_dtype, prefix, bool(same_layer),
                   *[right_buckets[j] for j in np.flatnonzero(meets[i])])
             for i, bucket in enumerate(left_buckets)]
    meta = _output_meta(input_ddf._meta, key_dtype, prefix)
    result = dd.from_delayed(tasks, meta=meta, verify_meta=False)
    return result


def _output_meta(input_meta, key_dtype, prefix):
    n = len(input_meta)
    empty = {s: np.zeros(n) for s in RELEVANCE_SUFFIXES}
    return _output_frame(input_meta, empty, {s: np.zeros(n, dtype=bool) for s in RELEVANCE_SUFFIXES},
                         key_dtype, prefix)


def _buckets(dask, parts, boundaries):
    n = len(boundaries) + 1
    if n == 1:
        pieces = [[p] for p in parts]
    else:
        split = dask.delayed(_split, pure=True, nout=n)
        pieces = [split(p, boundaries) for p in parts]
    gather = dask.delayed(_gather, pure=True)
    return [gather(*[piece[i] for piece in pieces]) for i in range(n)]


def _persist(dask, delayeds, progress):
    """Persist (on the cluster when a distributed client runs), with a progress bar when asked."""
    try:
        from distributed import default_client, progress as distributed_progress

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        persisted = list(client.persist(list(delayeds)))
        if progress:
            distributed_progress(persisted)
            print()
        return persisted
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.persist(*delayeds))
    return list(dask.persist(*delayeds))
