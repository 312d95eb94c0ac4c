"""``overlap-relevance``: score two polygon layers from the command line, on Dask or in one process.

    overlap-relevance score INPUT REFERENCE --output OUT [--reference-key building_id] [--sigma 0.5]
        [--engine dask|local] [--workers N | --scheduler ADDRESS] [--partitions N]

INPUT and REFERENCE are anything GDAL opens (GeoPackage, shapefile, GeoJSON, FlatGeobuf, ...) or
GeoParquet (a file or a folder of parts). OUT ending in .parquet is GeoParquet (with the Dask engine a
folder of parts), anything else goes through GDAL by its extension (.gpkg, .shp, ...). The fields are
those of ``overlaprelevance:scorerelevance``. ``--engine local`` needs neither Dask nor geopandas.

``overlap-relevance match`` runs ``model/matching.py`` (groups, one-to-one matches, change labels) and writes
the ``m_`` fields of the ``matchfeatures`` algorithm: on Dask bucket by bucket (:mod:`.dask_match`), or on
both layers whole in one process.
"""

import argparse
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .kernel import FIELD_PREFIX, MATCH_NAMES, RELEVANCE_SUFFIXES, match_columns


def build_parser():
    parser = argparse.ArgumentParser(prog="overlap-relevance", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="every input feature with its best reference match and its relevance")
    _layer_arguments(score)
    score.add_argument("--input-key", help="accepted for symmetry with match; scorerelevance keeps every input "
                                           "field, so it is not needed")
    score.add_argument("--threshold", type=float, default=0.5, help="IoU threshold of rel_p (default 0.5)")
    _engine_arguments(score)
    match = commands.add_parser("match", help="groups, one-to-one matches and change labels (model/matching.py)")
    _layer_arguments(match)
    match.add_argument("--input-key", help="input field written as the reference side's m_key (default: the "
                                           "feature id)")
    match.add_argument("--reference-output", help="also write the reference layer with its m_ fields here")
    match.add_argument("--threshold", type=float, default=0.5, help="IoU t of p_same = P(IoU >= t) (default 0.5)")
    _engine_arguments(match)
    return parser


def _layer_arguments(parser):
    parser.add_argument("input", help="input layer (path, or path|layername=NAME)")
    parser.add_argument("reference", help="reference layer")
    parser.add_argument("--output", "-o", required=True, help="output: .parquet (GeoParquet) or .gpkg, .shp, ...")
    parser.add_argument("--input-layer", help="layer name inside INPUT")
    parser.add_argument("--reference-layer", help="layer name inside REFERENCE")
    parser.add_argument("--reference-key", help="reference field written as rel_match (default: the feature id)")
    parser.add_argument("--search-distance", type=float, default=0.0, metavar="M",
                        help="metres between bounding boxes (default 0: touching); at least 3σ per feature")
    sigma = parser.add_mutually_exclusive_group()
    sigma.add_argument("--sigma", type=float, default=0.0, metavar="M",
                       help="positional uncertainty σ in metres (default 0)")
    sigma.add_argument("--sigma-field", metavar="F", help="input field with σ per feature, metres")
    parser.add_argument("--model", help="a model file (default: the bundled model)")


def _engine_arguments(parser, default="dask"):
    parser.add_argument("--engine", choices=("dask", "local"), default=default,
                        help="dask (default: a local cluster, or --scheduler) or local (one process, no Dask)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2, help="workers of the local Dask cluster (default 2)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="connect to a running Dask scheduler, "
                                                              "e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--partitions", type=int, help="partitions (Dask; default: 4 per worker)")
    parser.add_argument("--workdir", metavar="DIR", help="where the Dask engine stages both layers (a folder every "
                                                         "worker sees; default: beside the output); removed after")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.sigma is not None and (not np.isfinite(args.sigma) or args.sigma < 0):
        print("--sigma must be a finite number >= 0 (metres).", file=sys.stderr)
        return 2
    if args.command == "match":
        return _match(args)
    started = time.perf_counter()
    if args.engine == "local":
        summary = _score_local(args)
    else:
        summary = _score_dask(args)
    summary["seconds"] = time.perf_counter() - started
    print(f"Scored {summary['n_input']} input features ({summary['n_matched']} with a candidate) in "
          f"{summary['seconds']:.1f} s with the {args.engine} engine; wrote {args.output}")
    return 0


def _match(args):
    """`match`: model/matching.py's match_layers on both layers whole, the fields of the matchfeatures algorithm."""
    try:
        from ..model.matching import MatchThresholds, match_layers
    except ImportError:
        print("overlap-relevance match is not available yet: this version has no matching algorithm "
              "(model/matching.py). Use `overlap-relevance score`.", file=sys.stderr)
        return 2
    if args.engine != "local":
        return _match_dask(args)
    from ..model.frame import layer_to_lonlat
    from ..model.preparation import prepare_layer
    from ..model.scoring import load_model
    from .layers import read_layer, write_layer
    from .local import sigma_per_feature

    started = time.perf_counter()
    model = load_model(args.model)
    layer_a = read_layer(args.input, args.input_layer)
    same = _same_source(args)
    layer_b = layer_a if same else read_layer(args.reference, args.reference_layer)
    keys_a = _keys(layer_a, args.input_key, "input")
    keys_b = _keys(layer_b, args.reference_key, "reference")
    sigma = sigma_per_feature(len(layer_a), args.sigma, _sigma_values(layer_a, args.sigma_field))
    prepared_a = prepare_layer(layer_to_lonlat(layer_a.geoms, layer_a.crs))
    prepared_b = prepared_a if same else prepare_layer(layer_to_lonlat(layer_b.geoms, layer_b.crs))
    ids = (layer_a.fids, layer_b.fids) if same else (None, None)
    result = match_layers(model, prepared_a, prepared_b, sigma, args.search_distance, *ids,
                          thresholds=MatchThresholds(iou=args.threshold))
    sides = [(args.output, layer_a, keys_b, result.group_a, result.class_a, result.partner_a, result.p_a,
              result.change_a, result.change_p_a)]
    if args.reference_output:
        sides.append((args.reference_output, layer_b, keys_a, result.group_b, result.class_b, result.partner_b,
                      result.p_b, result.change_b, result.change_p_b))
    for output, layer, other_keys, group, klass, partner, p, change, change_p in sides:
        fields, nulls = dict(layer.fields), dict(layer.nulls)
        taken = sorted(set(MATCH_NAMES) & {n.lower() for n in fields})
        if taken:
            raise SystemExit(f"The layer already has the field(s) {', '.join(taken)}; rename or remove them.")
        values, null = match_columns(group, klass, partner, p, change, change_p, other_keys)
        fields.update(values)
        nulls.update(null)
        write_layer(output, fields, nulls, layer.geoms, layer.crs, layer.geometry_type)
    n_groups = len(result.groups["id"])
    print(f"Matched {len(layer_a)} input and {len(layer_b)} reference features: {n_groups} groups, "
          f"{int(np.count_nonzero(result.partner_a >= 0))} one-to-one pairs, {result.n_pairs} candidate pairs, "
          f"in {time.perf_counter() - started:.1f} s; wrote {', '.join(o for o, *_ in sides)}")
    return 0


def _match_dask(args):
    from ..model.matching import MatchThresholds
    from .dask_match import match

    started = time.perf_counter()
    with _dask_session(args, input_fid=not args.input_key) as session:
        result_a, result_b = match(session.input_ddf, session.reference_ddf, input_key=args.input_key,
                                   reference_key=args.reference_key, search_distance=args.search_distance,
                                   sigma=args.sigma, sigma_field=args.sigma_field,
                                   thresholds=MatchThresholds(iou=args.threshold), model=args.model,
                                   partitions=session.partitions, same_layer=session.same, workdir=session.workdir,
                                   progress=not args.quiet)
        written = [(args.output, session.write(result_a, args.output, "m_group"))]
        if args.reference_output:
            written.append((args.reference_output, session.write(result_b, args.reference_output, "m_group")))
    print(f"Matched {written[0][1]['n_input']} input features ({written[0][1]['n_matched']} in a group) in "
          f"{time.perf_counter() - started:.1f} s with the dask engine; wrote {', '.join(path for path, _ in written)}")
    return 0


def _keys(layer, key, side):
    if not key:
        return layer.fids
    if key not in layer.fields:
        raise SystemExit(f"The {side} layer has no field '{key}'.")
    return layer.fields[key]


def _sigma_values(layer, sigma_field):
    if not sigma_field:
        return None
    if sigma_field not in layer.fields:
        raise SystemExit(f"The input layer has no field '{sigma_field}'.")
    return np.where(layer.nulls.get(sigma_field, False), np.nan, np.asarray(layer.fields[sigma_field], dtype=float))


def _same_source(args):
    def key(source, layer):
        from .layers import split_source

        path, name = split_source(source, layer)
        return os.path.realpath(path), name

    return key(args.input, args.input_layer) == key(args.reference, args.reference_layer)


# ---------------------------------------------------------------- one process
def _score_local(args):
    from ..model.scoring import load_model
    from .layers import read_layer, write_layer
    from .local import output_fields, score_layers, sigma_per_feature

    model = load_model(args.model)
    layer_a = read_layer(args.input, args.input_layer)
    layer_b = layer_a if _same_source(args) else read_layer(args.reference, args.reference_layer)
    keys = _keys(layer_b, args.reference_key, "reference")
    sigma = sigma_per_feature(len(layer_a), args.sigma, _sigma_values(layer_a, args.sigma_field))
    same = (layer_a.fids, layer_b.fids) if layer_b is layer_a else None
    values, null, info = score_layers(layer_a.geoms, layer_a.crs, layer_b.geoms, layer_b.crs, keys, sigma,
                                      args.search_distance, args.threshold, model, same)
    fields, nulls = output_fields(layer_a, values, null, FIELD_PREFIX)
    write_layer(args.output, fields, nulls, layer_a.geoms, layer_a.crs, layer_a.geometry_type)
    if not args.quiet:
        seconds = info["seconds"]
        rate = info["n_pairs"] / seconds["scoring"] if seconds["scoring"] else 0.0
        print(f"{info['n_pairs']} candidate pairs, preparing {seconds['preparing']:.2f} s, scoring "
              f"{seconds['scoring']:.2f} s ({rate:,.0f} pairs/s)")
    return {"n_input": len(layer_a), "n_matched": int(np.count_nonzero(values["n"][~null["n"]] > 0))}


# ---------------------------------------------------------------- Dask
def read_dask_layer(source, layer=None, npartitions=None, with_fid=False):
    """A dask-geopandas GeoDataFrame of a layer: GeoParquet by read_parquet, anything else by pyogrio.

    with_fid: the feature ids become the index (the default reference key).
    """
    import dask_geopandas

    from .layers import is_parquet, split_source

    path, layer = split_source(source, layer)
    if is_parquet(path) or Path(path).is_dir():
        # gather_spatial_partitions=False: the spatial partitions it would gather end up in _meta.attrs.
        frame = dask_geopandas.read_parquet(path, gather_spatial_partitions=False)
        if npartitions and frame.npartitions < npartitions:
            frame = frame.repartition(npartitions=npartitions)
        return frame
    return _read_ogr_partitions(path, layer, npartitions or 1, with_fid)


def _read_chunk(path, layer, skip, count, with_fid):
    import pyogrio

    return pyogrio.read_dataframe(path, layer=layer, skip_features=skip, max_features=count, fid_as_index=with_fid)


def _read_ogr_partitions(path, layer, npartitions, with_fid):
    """Consecutive runs of features, one partition each, read by pyogrio on the workers (feature ids as the
    index with ``with_fid``, which dask_geopandas.read_file does not offer)."""
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (GeoDataFrame collections)
    import pyogrio

    n = int(pyogrio.read_info(path, layer=layer, force_feature_count=True)["features"])
    meta = _read_chunk(path, layer, 0, 1, with_fid).iloc[:0]
    stops = np.linspace(0, n, max(1, min(npartitions, n)) + 1).astype(int)
    read = dask.delayed(_read_chunk, pure=True)
    return dd.from_delayed([read(path, layer, int(a), int(b - a), with_fid) for a, b in zip(stops[:-1], stops[1:])],
                           meta=meta, verify_meta=False)


def _client(args):
    import logging

    from distributed import Client, LocalCluster

    if args.scheduler:
        return Client(args.scheduler), None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster), cluster


def _workdir(args):
    """A fresh staging folder: --workdir's, or a hidden one beside the output (workers see it when they can
    write the output)."""
    import tempfile

    parent = Path(args.workdir) if args.workdir else Path(args.output).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".overlap-relevance-", dir=parent))


class _DaskSession:
    """What one Dask command works with: the client, both layers as dask frames, the staging folder."""

    def __init__(self, args, client, input_fid):
        self.args, self.client = args, client
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})) or args.workers)
        self.partitions = args.partitions or 4 * self.n_workers
        self.same = _same_source(args)
        self.input_ddf = read_dask_layer(args.input, args.input_layer, self.partitions,
                                         with_fid=self.same or input_fid)
        self.reference_ddf = read_dask_layer(args.reference, args.reference_layer, self.partitions,
                                             with_fid=self.same or not args.reference_key)
        self.workdir = _workdir(args)

    def write(self, result, output, matched_if=FIELD_PREFIX + RELEVANCE_SUFFIXES[-1]):
        return _write_dask(self.client, result, output, self.args.quiet, self.n_workers, matched_if)


@contextmanager
def _dask_session(args, input_fid=False):
    """A :class:`_DaskSession` on a local cluster or ``--scheduler``; closes both and removes the staging."""
    client, cluster = _client(args)
    session = None
    try:
        session = _DaskSession(args, client, input_fid)
        yield session
    finally:
        if session is not None:
            shutil.rmtree(session.workdir, ignore_errors=True)
        client.close()
        if cluster is not None:
            cluster.close()


def _score_dask(args):
    from .dask_engine import score_relevance

    with _dask_session(args) as session:
        result = score_relevance(session.input_ddf, session.reference_ddf, reference_key=args.reference_key,
                                 search_distance=args.search_distance, sigma=args.sigma,
                                 sigma_field=args.sigma_field, threshold=args.threshold, model=args.model,
                                 partitions=session.partitions, same_layer=session.same, workdir=session.workdir,
                                 progress=not args.quiet)
        return session.write(result, args.output)


def _write_dask(client, result, output, quiet, n_workers=2, matched_if=FIELD_PREFIX + RELEVANCE_SUFFIXES[-1]):
    """Write the result: a GeoParquet folder of parts (written by the workers), or one OGR file written here
    part after part, with at most two parts per worker computed ahead (so finished parts never pile up).

    Returns {n_input, n_matched}: rows, and rows whose ``matched_if`` column is above 0 (rel_n) or, for any
    other column (m_group), not NULL.
    """
    from .layers import driver_for, is_parquet

    n_input = n_matched = 0
    name_n = matched_if
    counts_candidates = name_n == FIELD_PREFIX + RELEVANCE_SUFFIXES[-1]

    def matched(values):
        import pandas as pd

        values = np.asarray(values, dtype=object)
        present = ~np.asarray(pd.isna(values), dtype=bool)  # not None, NaN or NA
        if not counts_candidates:
            return int(present.sum())
        return int(np.count_nonzero(np.where(present, values, 0).astype(float) > 0))

    if is_parquet(output):
        from distributed import progress

        if Path(output).exists():
            shutil.rmtree(output) if Path(output).is_dir() else Path(output).unlink()
        written = client.compute(result.to_parquet(output, write_index=False, compute=False))
        if not quiet:
            progress(written)
            print()
        written.result()
        import pyarrow.parquet as pq

        counts = pq.read_table(output, columns=[name_n]).column(name_n).to_pylist()
        n_input, n_matched = len(counts), matched(counts)
        return {"n_input": n_input, "n_matched": n_matched}
    import pyogrio
    from tqdm import tqdm

    if Path(output).exists():
        Path(output).unlink()
    parts = result.to_delayed()
    ahead = max(2, 2 * n_workers)
    futures = {i: client.compute(parts[i]) for i in range(min(ahead, len(parts)))}
    for i in tqdm(range(len(parts)), desc="writing", unit="part", disable=quiet):
        future = futures.pop(i)
        frame = future.result()
        future.release()
        if i + ahead < len(parts):
            futures[i + ahead] = client.compute(parts[i + ahead])
        n_input += len(frame)
        n_matched += matched(frame[name_n].to_numpy(dtype=object))
        if len(frame) or i == len(parts) - 1 and n_input == 0:
            pyogrio.write_dataframe(frame, output, driver=driver_for(output), append=n_input > len(frame),
                                    promote_to_multi=True)
    return {"n_input": n_input, "n_matched": n_matched}


if __name__ == "__main__":
    sys.exit(main())
