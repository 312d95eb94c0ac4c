"""Scoring on Dask: both layers staged on disk, Hilbert-sorted on one world grid, one task per input bucket.

The layers are staged by :mod:`.staging` (prepared partition by partition, sorted along one Hilbert curve
over the lon/lat world, written as Parquet into a work directory). Then each input bucket is one task: it
reads its input rows and the reference rows whose boxes meet its outline widened by its largest search
distance, finds candidates, scores them and keeps each feature's best match locally. So every input
feature is kept, with or without a candidate, the numbers are those of the single process, and no worker
holds more than a bucket and its neighbourhood. Ids are explicit columns (``_order``: partition and row),
never the index.

Imports Dask, pandas and geopandas: only ``.venv-dask`` runs this module.
"""

from functools import lru_cache

import numpy as np

from ..model.fields import RELEVANCE_FIELDS
from .kernel import FIELD_PREFIX, RELEVANCE_SUFFIXES, best_matches, relevance_columns
from .staging import (
    INTERNAL,
    DETAIL,
    DETAIL_ERROR,
    MODEL,
    ORDER,
    REF_KEY,
    DISTANCE,
    SIGMA,
    USABLE,
    bucket_areas,
    read_input_bucket,
    read_reference_near,
    stage_layers,
)


#: The nullable pandas dtype of each neutral kind of model/fields.py ("key" takes the key column's, _key_dtype).
PANDAS_DTYPES = {"double": "Float64", "int": "Int64", "string": "object"}


@lru_cache(maxsize=4)
def _model(path):
    from ..model.scoring import load_model

    return load_model(path)


def _score_bucket(files, lo, hi, references, model_path, threshold, key_dtype, prefix, same_layer, meta):
    left = read_input_bucket(files, lo, hi)
    if left is None:
        return meta
    right = read_reference_near(references, bucket_areas(left))
    if right is not None:
        reference_geoms, reference_keys = right[MODEL].to_numpy(), right[REF_KEY].to_numpy()
        reference_detail = (right[DETAIL].to_numpy(), right[DETAIL_ERROR].to_numpy())
        right_order = right[ORDER].to_numpy()
    else:
        reference_geoms, reference_keys = np.empty(0, dtype=object), np.empty(0, dtype=object)
        reference_detail = None
        right_order = np.empty(0, dtype=np.int64)
    ids = (left[ORDER].to_numpy(), right_order) if same_layer else (None, None)
    best, _ = best_matches(_model(model_path), left[MODEL].to_numpy(), reference_geoms, left[SIGMA].to_numpy(),
                           left[DISTANCE].to_numpy(), threshold, *ids, workers=1,
                           input_detail=(left[DETAIL].to_numpy(), left[DETAIL_ERROR].to_numpy()),
                           reference_detail=reference_detail)
    values, null = relevance_columns(best, left[USABLE].to_numpy(), reference_keys)
    return _output_frame(left, values, null, key_dtype, prefix)


def _output_frame(left, values, null, key_dtype, prefix):
    import pandas as pd

    out = left.drop(columns=[c for c in INTERNAL if c in left.columns])
    for field in RELEVANCE_FIELDS:
        kind = key_dtype if field.kind == "key" else PANDAS_DTYPES[field.kind]
        out[prefix + field.name] = _nullable_column(pd, values[field.name], null[field.name], kind, out.index)
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
                    threshold=0.5, model=None, partitions=None, prefix=FIELD_PREFIX, same_layer=False, workdir=None,
                    progress=False):
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
    workdir : where the staged layers go (a folder every worker sees); default a temporary folder,
        removed when Python exits. The result reads it, so keep it until the result is computed.
    progress : show a progress bar of the staging (distributed's when a client is running).

    Returns a lazy dask-geopandas GeoDataFrame: the input's columns and geometry (the input's CRS and
    index), then ``rel_match, rel_score, rel_p, rel_cov, rel_covref, rel_sd, rel_n``; one row per input
    feature, in Hilbert order. The staging runs when this is called; the scoring when the result is
    computed or written.
    """
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (registers GeoDataFrame collections with dask)

    _check_layers(input_ddf, reference_ddf, [prefix + s for s in RELEVANCE_SUFFIXES])
    n_buckets = int(partitions or max(input_ddf.npartitions, reference_ddf.npartitions))
    stage = stage_layers(dask, input_ddf, reference_ddf, n_buckets, sigma, sigma_field, search_distance,
                         reference_key, workdir, progress)
    key_dtype = _key_dtype(reference_ddf._meta, reference_key)
    meta = _output_meta(input_ddf._meta, key_dtype, prefix)
    score = dask.delayed(_score_bucket, pure=True)
    model_path = None if model is None else str(model)
    tasks = [score(stage.input_files(i), *stage.key_range(i), stage.references, model_path, float(threshold),
                   key_dtype, prefix, bool(same_layer), meta)
             for i in range(stage.n_buckets)]
    return dd.from_delayed(tasks, meta=meta, verify_meta=False)


def _check_layers(input_ddf, reference_ddf, new_columns):
    if input_ddf.crs is None or reference_ddf.crs is None:
        raise ValueError("Both layers need a CRS.")
    for name in new_columns:
        if name in input_ddf.columns:
            raise ValueError(f"The input already has a column named '{name}'; choose another prefix.")


def _output_meta(input_meta, key_dtype, prefix):
    n = len(input_meta)
    empty = {s: np.zeros(n) for s in RELEVANCE_SUFFIXES}
    return _output_frame(input_meta, empty, {s: np.zeros(n, dtype=bool) for s in RELEVANCE_SUFFIXES},
                         key_dtype, prefix)
