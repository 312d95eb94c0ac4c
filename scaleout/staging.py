"""Both layers staged on disk, Hilbert-sorted, so that no worker ever holds more than a few partitions.

1. **Stage** (one task per partition of each side, run when the engine is called): the partition is
   prepared as the plugin prepares a layer (lon/lat, model geometries, σ and search distance per feature),
   given a key on one Hilbert curve over the whole lon/lat world (one grid for both layers), sorted by it
   and written as a Parquet file of small row groups into the work directory. Only a few numbers per
   partition come back: its row count, a sample of its keys and its key range (input), its lon/lat
   outline (reference).
2. The input's key samples give the bucket boundaries: bucket i holds the input features whose keys lie
   between two quantiles, so buckets are balanced and spatially compact.
3. **Read** (inside each later task): bucket i's input rows come from the files whose key range meets
   the bucket's, through a Parquet filter on the key (row groups outside it are skipped); the reference
   rows are those whose lon/lat box meets the outline of one of a few runs of the bucket's features (in key
   order, widened by their search distances), through a filter on the stored boxes (also across the
   antimeridian, ±360°).

Nothing is persisted in worker memory: a worker holds one partition while staging and one bucket with its
neighbourhood while scoring, whatever the size of the data. The work directory must be visible to every
worker (the output's folder is, when the output is written by the workers).

Imports pandas, geopandas and pyarrow inside the functions: only ``.venv-dask`` runs this module.
"""

import atexit
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ..model.candidates import lonlat_boxes
from .kernel import feature_search_distances, hilbert_keys, outline, outlines_meet, prepare_lonlat, unit_centre_lonlat
from .local import sigma_per_feature

ORDER = "_order"  # partition << 32 | row: the feature's place in the layer as given
MODEL, LONLAT, USABLE, SIGMA, DISTANCE, KEY, REF_KEY = ("_model", "_lonlat", "_usable", "_sigma", "_distance",
                                                        "_hilbert", "_key")
BOX = ("_x0", "_y0", "_x1", "_y1")  # the reference feature's lon/lat box (the union of its antimeridian parts)
# Where a model geometry is simplified: the repaired full-detail geometry (WKB) and the simplification's bound (m).
DETAIL, DETAIL_ERROR = "_detail", "_detail_error"
INTERNAL = (ORDER, MODEL, LONLAT, USABLE, SIGMA, DISTANCE, KEY, DETAIL, DETAIL_ERROR)
ROW_GROUP = 4096  # rows per Parquet row group: what a filter can skip
SAMPLE_PER_PARTITION = 2000


@dataclass
class Stage:
    """What the client knows of the staged layers: files and a few numbers per partition."""

    folder: str
    inputs: list = field(default_factory=list)  # dicts: path, n, lo, hi (key range)
    references: list = field(default_factory=list)  # dicts: path, n, outline (4,)
    boundaries: np.ndarray = None  # (n_buckets - 1,) int64: bucket i holds keys in [b[i-1], b[i])

    @property
    def n_buckets(self):
        return len(self.boundaries) + 1

    def key_range(self, i):
        """(lo, hi) of bucket i; None where unbounded."""
        lo = int(self.boundaries[i - 1]) if i > 0 else None
        hi = int(self.boundaries[i]) if i < len(self.boundaries) else None
        return lo, hi

    def input_files(self, i):
        lo, hi = self.key_range(i)
        return [p["path"] for p in self.inputs
                if p["n"] and (lo is None or p["hi"] >= lo) and (hi is None or p["lo"] < hi)]


def work_folder(workdir=None):
    """A fresh folder for one run inside ``workdir`` (the caller removes it), or a temporary one removed when
    Python exits."""
    if workdir is None:
        folder = tempfile.mkdtemp(prefix="overlap-relevance-")
        atexit.register(shutil.rmtree, folder, True)
        return folder
    folder = Path(workdir) / f"run-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    return str(folder)


def _to_wkb(geoms):
    return shapely.to_wkb(np.asarray(geoms, dtype=object))


def stage_input(frame, part, crs, sigma, sigma_field, search_distance, path, full_detail=False):
    """Prepare, sort and write one input partition; returns {path, n, lo, hi, sample}."""
    import pandas as pd

    frame = frame.copy()
    geoms, usable, lonlat, (detail, error) = prepare_lonlat(frame.geometry.values, crs, with_lonlat=True,
                                                            with_detail=True)
    values = None
    if sigma_field:
        values = pd.to_numeric(frame[sigma_field], errors="coerce").astype(float).to_numpy(na_value=np.nan)
    feature_sigma = sigma_per_feature(len(frame), sigma, values)
    frame[ORDER] = (np.int64(part) << 32) + np.arange(len(frame), dtype=np.int64)
    frame[MODEL] = pd.Series(list(_to_wkb(geoms)), index=frame.index, dtype=object)
    if full_detail:
        frame[LONLAT] = pd.Series(list(_to_wkb(lonlat)), index=frame.index, dtype=object)
    frame[DETAIL] = pd.Series(list(_to_wkb(detail)), index=frame.index, dtype=object)
    frame[DETAIL_ERROR] = error
    frame[USABLE] = usable
    frame[SIGMA] = feature_sigma
    frame[DISTANCE] = feature_search_distances(search_distance, feature_sigma)
    keys = hilbert_keys(unit_centre_lonlat(geoms))
    frame[KEY] = keys
    frame = frame.iloc[np.argsort(keys, kind="stable")]
    frame.to_parquet(path, index=True, row_group_size=ROW_GROUP)
    keys = np.sort(keys)
    step = max(1, len(keys) // SAMPLE_PER_PARTITION)
    return {"path": path, "n": len(keys), "lo": int(keys[0]) if len(keys) else 0,
            "hi": int(keys[-1]) if len(keys) else 0, "sample": keys[::step]}


def stage_reference(frame, part, crs, key, path, full_frame=False):
    """Prepare, sort and write one reference partition; returns {path, n, outline}.

    Only usable features are written (an unusable reference feature never matches), with their key and
    model geometry; or (``full_frame``) every feature, with every field and the geometry too, for outputs
    of the reference (an unusable one has no box, so no read near an area returns it).
    """
    import pandas as pd

    geoms, usable, lonlat, (detail, error) = prepare_lonlat(frame.geometry.values, crs, with_lonlat=True,
                                                            with_detail=True)
    keys = frame.index.to_numpy() if key is None else frame[key].to_numpy()
    order = (np.int64(part) << 32) + np.arange(len(frame), dtype=np.int64)
    wkb = pd.Series(list(_to_wkb(geoms)), index=frame.index, dtype=object)
    if full_frame:
        out = frame.copy()
        out[ORDER], out[REF_KEY], out[MODEL] = order, keys, wkb
        out[LONLAT] = pd.Series(list(_to_wkb(lonlat)), index=frame.index, dtype=object)
        out[USABLE] = usable
    else:
        out = pd.DataFrame({ORDER: order, REF_KEY: keys, MODEL: wkb.to_numpy()})
    out[DETAIL] = list(_to_wkb(detail))
    out[DETAIL_ERROR] = error
    boxes = np.full((len(frame), 4), np.nan)
    split, owner = lonlat_boxes(np.where(error > 0, detail, geoms))  # the full detail reaches a little further
    if len(split):
        np.fmin.at(boxes[:, 0], owner, split[:, 0])
        np.fmin.at(boxes[:, 1], owner, split[:, 1])
        np.fmax.at(boxes[:, 2], owner, split[:, 2])
        np.fmax.at(boxes[:, 3], owner, split[:, 3])
    for k, name in enumerate(BOX):
        out[name] = boxes[:, k]
    keys_h = hilbert_keys(unit_centre_lonlat(geoms))
    out[KEY] = keys_h
    keep = np.arange(len(out)) if full_frame else np.flatnonzero(usable)
    out = out.iloc[keep[np.argsort(keys_h[keep], kind="stable")]]
    if full_frame:
        out.to_parquet(path, index=True, row_group_size=ROW_GROUP)
    else:
        out.reset_index(drop=True).to_parquet(path, index=False, row_group_size=ROW_GROUP)
    return {"path": path, "n": len(out), "outline": _box_outline(boxes[keep])}


def _box_outline(boxes):
    if not len(boxes) or np.isnan(boxes).all():
        return np.full(4, np.nan)
    return np.array([np.nanmin(boxes[:, 0]), np.nanmin(boxes[:, 1]), np.nanmax(boxes[:, 2]), np.nanmax(boxes[:, 3])])


def stage_layers(dask, input_ddf, reference_ddf, n_buckets, sigma, sigma_field, search_distance, reference_key,
                 workdir=None, progress=False, full_detail=False):
    """Run the staging tasks of both sides (on the cluster when a client runs); returns a :class:`Stage`."""
    folder = work_folder(workdir)
    Path(folder, "input").mkdir()
    Path(folder, "reference").mkdir()
    stage_in = dask.delayed(stage_input, pure=False)
    stage_ref = dask.delayed(stage_reference, pure=False)
    input_crs, reference_crs = input_ddf.crs, reference_ddf.crs
    left = [stage_in(part, i, input_crs, float(sigma), sigma_field, float(search_distance),
                     str(Path(folder, "input", f"part-{i:05d}.parquet")), full_detail)
            for i, part in enumerate(input_ddf.to_delayed())]
    right = [stage_ref(part, i, reference_crs, reference_key, str(Path(folder, "reference", f"part-{i:05d}.parquet")),
                       full_detail)
             for i, part in enumerate(reference_ddf.to_delayed())]
    done = compute_with_progress(dask, left + right, progress)
    stage = Stage(folder, done[:len(left)], done[len(left):])
    samples = [p.pop("sample") for p in stage.inputs]
    keys = np.sort(np.concatenate(samples)) if samples else np.empty(0, dtype=np.int64)
    if len(keys) and n_buckets > 1:
        stage.boundaries = np.unique(np.quantile(keys, np.arange(1, n_buckets) / n_buckets, method="lower"))
    else:
        stage.boundaries = np.empty(0, dtype=np.int64)
    return stage


def read_input_bucket(files, lo, hi):
    """The staged input rows of one bucket (keys in [lo, hi)), model geometries decoded, in key order."""
    import geopandas
    import pandas as pd

    filters = [(KEY, ">=", lo)] if lo is not None else []
    filters += [(KEY, "<", hi)] if hi is not None else []
    frames = [geopandas.read_parquet(path, filters=filters or None) for path in files]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    return _decoded(frame)


def read_reference_near(references, areas, columns=None):
    """The staged reference rows whose lon/lat box meets one of ``areas`` ((k, 4) or (4,)), also across the
    antimeridian, in the reference layer's order; model geometries decoded (only ``columns`` when given). None
    when there are none."""
    import pandas as pd

    if areas is None:
        return None
    areas = np.asarray(areas, dtype=float).reshape(-1, 4)
    areas = areas[np.isfinite(areas).all(axis=1)]
    if not len(areas):
        return None
    meets = outlines_meet(areas, np.array([r["outline"] for r in references]).reshape(-1, 4)).any(axis=0)
    filters = [[(BOX[2], ">=", area[0] + s), (BOX[0], "<=", area[2] + s), (BOX[3], ">=", area[1]),
                (BOX[1], "<=", area[3])] for area in areas.tolist() for s in (-360.0, 0.0, 360.0)]
    frames = [pd.read_parquet(r["path"], columns=columns, filters=filters)
              for r, ok in zip(references, meets) if ok and r["n"]]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    frame = frame.iloc[np.argsort(frame[ORDER].to_numpy(), kind="stable")]  # ties go as in one process
    return _decoded(frame)


def _decoded(frame):
    """The staged WKB columns (model, and full-detail where staged) as shapely geometries."""
    for name in (MODEL, LONLAT, DETAIL):
        if name in frame.columns:
            frame[name] = shapely.from_wkb(frame[name].to_numpy())
    return frame


#: Runs of consecutive Hilbert keys a bucket's reference read is split into (see :func:`bucket_areas`).
AREA_RUNS = 16


def bucket_areas(frame, runs=AREA_RUNS):
    """(k, 4) lon/lat outlines of ``runs`` runs of a bucket's input features in key order, each widened by its
    features' search distances; None for an empty bucket.

    One outline of the whole bucket is much larger than the bucket where its key interval straddles a
    boundary of the Hilbert curve's quadrants, and the more buckets, the larger the worst one: on the
    benchmark's layout, the worst bucket of 125,000 features read 2.7 buckets' worth of reference rows
    with 10 buckets and 8.0 with 80; with 16 runs 1.3 and 1.9 (issue 28). Every candidate of a feature
    meets its run's outline, so the scores are the same.
    """
    if frame is None or not len(frame):
        return None
    order = np.argsort(frame[KEY].to_numpy(), kind="stable")
    geoms, distances = frame[MODEL].to_numpy()[order], frame[DISTANCE].to_numpy()[order]
    cuts = np.unique(np.linspace(0, len(order), min(runs, len(order)) + 1).astype(int))
    return np.array([outline(geoms[a:z], distances[a:z]) for a, z in zip(cuts[:-1], cuts[1:])])


def compute_with_progress(dask, delayeds, progress):
    """Compute small results (on the cluster when a distributed client runs), with a progress bar when asked."""
    try:
        from distributed import default_client, progress as distributed_progress

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        futures = client.compute(list(delayeds))
        if progress:
            distributed_progress(futures)
            print()
        return client.gather(futures)
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*delayeds))
    return list(dask.compute(*delayeds))
