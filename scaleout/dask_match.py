"""Matching on Dask: groups, one-to-one matches and change labels of ``matchfeatures``, bucket by bucket.

A group is a connected component of the match graph (``model/matching.py``), so it may reach across the
buckets that the staging (:mod:`.staging`) cuts the layers into. Three rounds:

1. **One task per input bucket** reads its input rows and the reference rows near them, scores the
   candidate pairs and decides every component of its own graph as the single process would (classes,
   one-to-one assignment, the change test of 1:1 pairs). It writes its edges and these provisional
   results into the work directory and returns the reference features it reached that belong to another
   bucket (their Hilbert key lies outside its range): only those can join components of two buckets.
2. **The components that touch such a feature** come back from every bucket (their edges only, a few per
   cent of all) and are joined on the client through the reference features they share. A joined
   component made of pieces of two or more buckets is decided again as a whole (:func:`..model.matching.
   decide`). It has input features from two buckets, so it is never 1:1 and needs no change test.
3. **One task per bucket** (and per reference partition) writes the final fields: the provisional ones,
   replaced where a joined component decided again.

Group ids are unique across the run but numbered otherwise than in one process (bucket by bucket, joined
groups last). Imports Dask, pandas and geopandas: only ``.venv-dask`` runs this module.
"""

from pathlib import Path

import numpy as np

from ..model.fields import MATCH_FIELDS
from .dask_engine import PANDAS_DTYPES, _check_layers, _key_dtype, _model, _nullable_column
from .kernel import MATCH_NAMES
from .staging import (
    DETAIL,
    DETAIL_ERROR,
    DISTANCE,
    INTERNAL,
    KEY,
    LONLAT,
    MODEL,
    ORDER,
    REF_KEY,
    SIGMA,
    USABLE,
    bucket_areas,
    compute_with_progress,
    read_input_bucket,
    read_reference_near,
    stage_layers,
)

FIELDS = MATCH_NAMES
_EDGE_COLUMNS = ("a", "b", "p_same", "p_part", "iou_mean", "q", "sigma", "piece", "link_p")
_REFERENCE_READ = [ORDER, REF_KEY, MODEL, LONLAT, KEY, DETAIL, DETAIL_ERROR]


def _keys_of(frame, key):
    return frame.index.to_numpy() if key is None else frame[key].to_numpy()


def _match_bucket(i, files, lo, hi, references, model_path, thresholds, input_key, same_layer, folder):
    """Round 1 for bucket i: writes edges-i, input-i and reference-i; returns a small summary."""
    import pandas as pd

    from ..model.matching import candidate_edges, decide_and_test, kept_edges
    from ..model.preparation import PreparedLayer
    from .kernel import as_lonlat_layer

    left = read_input_bucket(files, lo, hi)
    summary = {"bucket": i, "n_groups": 0, "foreign": np.empty(0, dtype=np.int64), "reference_parts": []}
    if left is None:
        return summary
    right = read_reference_near(references, bucket_areas(left), columns=_REFERENCE_READ)
    if right is None:
        right = pd.DataFrame({ORDER: np.empty(0, dtype=np.int64), REF_KEY: [], MODEL: [], LONLAT: [], DETAIL: [],
                              DETAIL_ERROR: np.empty(0),
                              KEY: np.empty(0, dtype=np.int64)})
    n_a, n_b = len(left), len(right)
    order_a, order_b = left[ORDER].to_numpy(), right[ORDER].to_numpy()
    model_a, model_b = (as_lonlat_layer(side[MODEL].to_numpy(),
                                        (side[DETAIL].to_numpy(), side[DETAIL_ERROR].to_numpy()))
                        for side in (left, right))
    lonlat_a, lonlat_b = as_lonlat_layer(left[LONLAT].to_numpy()), as_lonlat_layer(right[LONLAT].to_numpy())
    sigma = left[SIGMA].to_numpy()
    ids = (order_a, order_b) if same_layer else (None, None)
    edges = candidate_edges(_model(model_path), PreparedLayer(lonlat_a, model_a), PreparedLayer(lonlat_b, model_b),
                            sigma, left[DISTANCE].to_numpy(), *ids, thresholds=thresholds, workers=1)
    result = decide_and_test(n_a, n_b, edges, lonlat_a, lonlat_b, sigma, thresholds, workers=1)
    keep = kept_edges(edges, thresholds, np.asarray(left[USABLE].to_numpy(), dtype=bool), np.ones(n_b, dtype=bool))
    ia, ib = edges.index_a[keep], edges.index_b[keep]
    keys_a, keys_b = _keys_of(left, input_key), right[REF_KEY].to_numpy()
    pd.DataFrame({"a": order_a[ia], "b": order_b[ib], "p_same": edges.p_same[keep], "p_part": edges.p_part[keep],
                  "iou_mean": edges.iou_mean[keep], "q": _q_column(edges)[keep],
                  "sigma": sigma[edges.index_a[keep]], "piece": result.group_a[ia],
                  "link_p": _link_column(edges)[keep], "key_a": keys_a[ia],
                  "key_b": keys_b[ib]}).sort_values("b", kind="stable").to_parquet(
        Path(folder, "match", f"edges-{i:05d}.parquet"), index=False)
    _side_frame(order_a, result.group_a, result.class_a, result.partner_a, keys_b, result.p_a, result.change_a,
                result.change_p_a).to_parquet(
        Path(folder, "match", f"input-{i:05d}.parquet"), index=False)
    touched = np.flatnonzero(result.group_b >= 0)
    reference = _side_frame(order_b[touched], result.group_b[touched], result.class_b[touched],
                            result.partner_b[touched], keys_a, result.p_b[touched], result.change_b[touched],
                            result.change_p_b[touched])
    reference.sort_values(ORDER, kind="stable").to_parquet(Path(folder, "match", f"reference-{i:05d}.parquet"),
                                                           index=False)
    hilbert_b = right[KEY].to_numpy()[touched]
    outside = np.zeros(len(touched), dtype=bool)
    if lo is not None:
        outside |= hilbert_b < lo
    if hi is not None:
        outside |= hilbert_b >= hi
    summary.update(n_groups=len(result.groups["id"]), foreign=order_b[touched][outside],
                   reference_parts=sorted(set((order_b[touched] >> 32).tolist())))
    return summary


def _removed_p():
    """m_change_p of a reference feature no bucket put in a group: that of a feature without a likely partner
    (the round-1 buckets keep only grouped reference features, so the candidates' q are not at hand here)."""
    from ..model.match_model import load_match_model

    match_model = load_match_model()
    return float(match_model.calibrated("unmatched", 1.0)) if match_model is not None else np.nan


def _q_column(edges):
    return np.full(len(edges), np.nan) if edges.q is None else np.asarray(edges.q, dtype=float)


def _link_column(edges):
    """The group test's probability of the pairs it linked (:mod:`..model.group_test`), NaN elsewhere."""
    if edges.linked is None:
        return np.full(len(edges), np.nan)
    return np.where(np.asarray(edges.linked, dtype=bool), np.asarray(edges.link_p, dtype=float), np.nan)


def _side_frame(order, group, klass, partner, other_keys, p, change, change_p=None):
    import pandas as pd

    has = partner >= 0
    other = np.asarray(other_keys, dtype=object)
    key = np.full(len(partner), None, dtype=object)
    key[has] = other[partner[has]]
    return pd.DataFrame({ORDER: np.asarray(order, dtype=np.int64), "group": np.asarray(group, dtype=np.int64),
                         "class": np.asarray(klass, dtype=object), "key": key, "p": np.asarray(p, dtype=float),
                         "change": np.asarray(change, dtype=object),
                         "change_p": (np.full(len(p), np.nan) if change_p is None
                                      else np.asarray(change_p, dtype=float))})


def _pending(i, folder, shared):
    """Round 2 for bucket i: the edges of its components that reach a shared reference feature."""
    import pandas as pd

    path = Path(folder, "match", f"edges-{i:05d}.parquet")
    if not path.exists():
        return None
    edges = pd.read_parquet(path)
    pieces = np.unique(edges["piece"].to_numpy()[np.isin(edges["b"].to_numpy(), shared)])
    out = edges[np.isin(edges["piece"].to_numpy(), pieces)].copy()
    out["bucket"] = i
    return out


def _join(pending, thresholds):
    """Decide again the components made of pieces of two or more buckets: (input results, reference results),
    each a DataFrame keyed by _order (group ids local to this join, from 0)."""
    import pandas as pd

    from ..model.matching import CandidateEdges, connected_labels, decide

    frames = [p for p in pending if p is not None and len(p)]
    if not frames:
        return None, None
    edges = pd.concat(frames, ignore_index=True)
    piece = edges["bucket"].to_numpy().astype(np.int64) * (1 << 32) + edges["piece"].to_numpy()
    pieces, piece_index = np.unique(piece, return_inverse=True)
    refs, ref_index = np.unique(edges["b"].to_numpy(), return_inverse=True)
    labels = connected_labels(len(pieces) + len(refs), piece_index, ref_index + len(pieces))[:len(pieces)]
    pieces_per_label = np.bincount(labels, minlength=len(pieces) + len(refs))
    joined = pieces_per_label[labels[piece_index]] >= 2
    edges = edges[joined]
    if not len(edges):
        return None, None
    a, index_a = np.unique(edges["a"].to_numpy(), return_inverse=True)
    bucket_a = np.empty(len(a), dtype=np.int64)
    bucket_a[index_a] = edges["bucket"].to_numpy()
    b, index_b = np.unique(edges["b"].to_numpy(), return_inverse=True)
    keys_a = np.empty(len(a), dtype=object)
    keys_a[index_a] = edges["key_a"].to_numpy()
    keys_b = np.empty(len(b), dtype=object)
    keys_b[index_b] = edges["key_b"].to_numpy()
    q = edges["q"].to_numpy(dtype=float)
    link_p = edges["link_p"].to_numpy(dtype=float)
    # the pairs a bucket's group test linked stay links of the joined component (and the links its cut test cut
    # are not among the edges it wrote)
    result = decide(len(a), len(b), CandidateEdges(index_a, index_b, edges["p_same"].to_numpy(),
                                                   edges["p_part"].to_numpy(), edges["iou_mean"].to_numpy(),
                                                   None if np.isnan(q).any() else q,
                                                   edges["sigma"].to_numpy(dtype=float), ~np.isnan(link_p),
                                                   np.nan_to_num(link_p)),
                    thresholds)
    assert not np.any(result.class_a == "1:1"), "a component of two buckets has two input features"
    joined_a = _side_frame(a, result.group_a, result.class_a, result.partner_a, keys_b, result.p_a, result.change_a,
                           result.change_p_a)
    joined_a["bucket"] = bucket_a
    return (joined_a,
            _side_frame(b, result.group_b, result.class_b, result.partner_b, keys_a, result.p_b, result.change_b,
                        result.change_p_b))


def _final_fields(out, results, offset, joined, joined_offset, key_dtype):
    """Write the m_ fields into ``out`` (rows aligned with ``results``' _order), joined results replacing."""
    import pandas as pd

    group = results["group"].to_numpy().astype(np.int64)
    group = np.where(group >= 0, group + offset, -1)
    columns = {"class": results["class"].to_numpy(dtype=object).copy(), "key": results["key"].to_numpy(dtype=object).copy(),
               "p": results["p"].to_numpy(dtype=float).copy(),
               "change": results["change"].to_numpy(dtype=object).copy(),
               "change_p": results["change_p"].to_numpy(dtype=float).copy()}
    if joined is not None and len(joined):
        position = pd.Index(joined[ORDER].to_numpy()).get_indexer(results[ORDER].to_numpy())
        hit = position >= 0
        group[hit] = joined["group"].to_numpy()[position[hit]] + joined_offset
        for name in columns:
            columns[name][hit] = joined[name].to_numpy()[position[hit]]
    columns["group"] = group
    for field in MATCH_FIELDS:  # m_group, m_class, ...: the column without "m_"
        data = columns[field.name[2:]]
        if field.kind == "string":
            out[field.name] = pd.Series(data, index=out.index, dtype=object)
            continue
        if field.kind == "int":
            null = data < 0
        elif field.kind == "double":
            null = ~np.isfinite(data)
        else:  # the key of the feature on the other side
            null = np.asarray(pd.isna(data), dtype=bool)
        dtype = key_dtype if field.kind == "key" else PANDAS_DTYPES[field.kind]
        out[field.name] = _nullable_column(pd, data, null, dtype, out.index)
    return out


def _finish_input(i, files, lo, hi, folder, offset, joined, joined_offset, key_dtype, meta):
    import pandas as pd

    left = read_input_bucket(files, lo, hi)
    if left is None:
        return meta
    results = pd.read_parquet(Path(folder, "match", f"input-{i:05d}.parquet"))
    position = pd.Index(results[ORDER].to_numpy()).get_indexer(left[ORDER].to_numpy())
    assert (position >= 0).all(), "a staged input row without its round-1 result"
    results = results.iloc[position]
    out = left.drop(columns=[c for c in INTERNAL if c in left.columns])
    return _final_fields(out, results, offset, joined, joined_offset, key_dtype)


def _finish_reference(part, reference, folder, buckets, offsets, joined, joined_offset, key_dtype, meta):
    """The reference partition ``part`` with its m_ fields: untouched features are unmatched ("removed")."""
    import geopandas
    import pandas as pd

    from .staging import BOX

    frame = geopandas.read_parquet(reference["path"])
    if not len(frame):
        return meta
    lo, hi = part << 32, (part + 1) << 32
    found = []
    for i in buckets:
        path = Path(folder, "match", f"reference-{i:05d}.parquet")
        if path.exists():
            rows = pd.read_parquet(path, filters=[(ORDER, ">=", lo), (ORDER, "<", hi)])
            rows["group"] = np.where(rows["group"] >= 0, rows["group"] + offsets[i], -1)
            found.append(rows)
    frame = frame.iloc[np.argsort(frame[ORDER].to_numpy(), kind="stable")]
    n = len(frame)
    usable = frame[USABLE].to_numpy(dtype=bool)
    results = pd.DataFrame({ORDER: frame[ORDER].to_numpy(), "group": np.full(n, -1, dtype=np.int64),
                            "class": np.full(n, "unmatched", dtype=object), "key": np.full(n, None, dtype=object),
                            "p": np.full(n, np.nan), "change": np.where(usable, "removed", None).astype(object),
                            "change_p": np.where(usable, _removed_p(), np.nan)})
    if found:
        # A feature reached from two buckets is in both their files; a joined group decides it below.
        rows = pd.concat(found, ignore_index=True).drop_duplicates(ORDER)
        position = pd.Index(rows[ORDER].to_numpy()).get_indexer(results[ORDER].to_numpy())
        hit = position >= 0
        for name in ("group", "class", "key", "p", "change", "change_p"):
            values = results[name].to_numpy().copy()
            values[hit] = rows[name].to_numpy()[position[hit]]
            results[name] = values
    out = frame.drop(columns=[c for c in (*INTERNAL, REF_KEY, *BOX) if c in frame.columns])
    return _final_fields(out, results, 0, joined, joined_offset, key_dtype)


def match(input_ddf, reference_ddf, input_key=None, reference_key=None, search_distance=0.0, sigma=0.0,
          sigma_field=None, thresholds=None, model=None, partitions=None, same_layer=False, workdir=None,
          progress=False):
    """Groups, one-to-one matches and change labels of both layers, as ``matchfeatures`` writes them.

    Parameters as :func:`.dask_engine.score_relevance`; input_key / reference_key : the columns written as
    the other side's ``m_key`` (None: the index); thresholds : :class:`..model.matching.MatchThresholds`.

    Returns (input result, reference result): lazy dask-geopandas GeoDataFrames with each layer's columns
    and geometry and ``m_group, m_class, m_key, m_p, m_change, m_change_p``, one row per feature. Scoring and deciding
    run when this is called (their results wait in ``workdir``); the fields are put together when the
    results are computed or written.
    """
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401

    from ..model.matching import MatchThresholds

    thresholds = thresholds or MatchThresholds()
    _check_layers(input_ddf, reference_ddf, FIELDS)
    if any(name in reference_ddf.columns for name in FIELDS):
        raise ValueError(f"The reference already has one of the columns {', '.join(FIELDS)}.")
    n_buckets = int(partitions or max(input_ddf.npartitions, reference_ddf.npartitions))
    stage = stage_layers(dask, input_ddf, reference_ddf, n_buckets, sigma, sigma_field, search_distance,
                         reference_key, workdir, progress, full_detail=True)
    Path(stage.folder, "match").mkdir()
    model_path = None if model is None else str(model)
    task = dask.delayed(_match_bucket, pure=False)
    summaries = compute_with_progress(dask, [
        task(i, stage.input_files(i), *stage.key_range(i), stage.references, model_path, thresholds, input_key,
             bool(same_layer), stage.folder) for i in range(stage.n_buckets)], progress)
    shared = np.unique(np.concatenate([s["foreign"] for s in summaries] or [np.empty(0, dtype=np.int64)]))
    offsets = np.concatenate([[0], np.cumsum([s["n_groups"] for s in summaries])]).astype(np.int64)
    pending = compute_with_progress(dask, [dask.delayed(_pending)(i, stage.folder, shared)
                                           for i in range(stage.n_buckets)], False) if len(shared) else []
    joined_a, joined_b = _join(pending, thresholds)
    joined_offset = int(offsets[-1])

    key_b = _key_dtype(reference_ddf._meta, reference_key)
    key_a = _key_dtype(input_ddf._meta, input_key)
    meta_a = _final_fields(input_ddf._meta.copy(), _empty_results(), 0, None, 0, key_b)
    meta_b = _final_fields(reference_ddf._meta.copy(), _empty_results(), 0, None, 0, key_a)
    finish_a = dask.delayed(_finish_input, pure=True)
    inputs = [finish_a(i, stage.input_files(i), *stage.key_range(i), stage.folder, int(offsets[i]),
                       _rows_of_bucket(joined_a, i), joined_offset, key_b, meta_a)
              for i in range(stage.n_buckets)]
    by_part = {}
    for s in summaries:
        for part in s["reference_parts"]:
            by_part.setdefault(part, []).append(s["bucket"])
    finish_b = dask.delayed(_finish_reference, pure=True)
    references = [finish_b(part, reference, stage.folder, by_part.get(part, []), offsets,
                           _rows_of_part(joined_b, part), joined_offset, key_a, meta_b)
                  for part, reference in enumerate(stage.references)]
    return (dd.from_delayed(inputs, meta=meta_a, verify_meta=False),
            dd.from_delayed(references, meta=meta_b, verify_meta=False))


def _empty_results():
    import pandas as pd

    return pd.DataFrame({ORDER: np.empty(0, dtype=np.int64), "group": np.empty(0, dtype=np.int64),
                         "class": np.empty(0, dtype=object), "key": np.empty(0, dtype=object), "p": np.empty(0),
                         "change": np.empty(0, dtype=object), "change_p": np.empty(0)})


def _rows_of_bucket(joined, i):
    if joined is None:
        return None
    return joined[joined["bucket"].to_numpy() == i]


def _rows_of_part(joined, part):
    if joined is None:
        return None
    order = joined[ORDER].to_numpy()
    return joined[(order >> 32) == part]
