"""The strongest exact script we could write, as a contestant of ``make bench``.

Plain Python, no QGIS: OGR reads both layers, STRtree candidates on the globe, every pair
projected into its own local metric frame (the plugin's ellipsoidal LAEA, pyproj for the
layer CRS; the frame of the pair's larger feature where that one has many vertices, as the plugin
measures it), each feature repaired once in its own frame, and overlaid exactly with vectorised shapely 2 (GEOS) on the
full-detail geometries, on the same threads the plugin uses. Its best match per input
feature (highest exact IoU) is the truth the plugin's agreement is measured against. With
``--layer`` it also delivers what the plugin delivers: the input layer, geometry and fields,
with the best match, its IoU and the number of candidates written back, as a GeoPackage.

Modes::

    exact_baseline.py exact INPUT REFERENCE OUT.npz [--search-distance M] [--layer OUT.gpkg]
    exact_baseline.py monte-carlo INPUT REFERENCE OUT.json --sigma S --pairs K [--samples 256]

``monte-carlo`` draws K candidate pairs (seeded) and measures the exact overlap under
positional uncertainty the direct way: B translated by 256 displacements d ~ N(0, σ²I₂)
in each pair's frame, each overlaid exactly; it reports the seconds per pair.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import read_layer  # noqa: E402
from overlap_relevance.model.frame import layer_to_lonlat  # noqa: E402
from overlap_relevance.model.overlap import exact_overlap, exact_overlap_of_frames  # noqa: E402
from overlap_relevance.model.pairs import full_detail_layers, iter_measured_chunks  # noqa: E402
from overlap_relevance.model.parallel import default_workers, ordered_map  # noqa: E402

MC_SEED = 7


def exact_pairs(input_source, reference_source, search_distance=0.0):
    """Read both layers; (fids_a, fids_b, index_a, index_b, iou) of every candidate pair."""
    fids_a, geoms_a, crs_a = read_layer(input_source)
    fids_b, geoms_b, crs_b = read_layer(reference_source)
    # Every feature repaired once in its own frame, at full detail; each pair in the frame the plugin measures it
    # in (centred on its larger feature when that one is large): straight edges bend differently in other frames.
    (lonlat_a, lonlat_b), _ = full_detail_layers(layer_to_lonlat(geoms_a, crs_a), layer_to_lonlat(geoms_b, crs_b))
    index_a, index_b, iou = [], [], []

    def overlay(chunk):
        return chunk.index_a, chunk.index_b, exact_overlap_of_frames(chunk.frames).iou

    chunks = iter_measured_chunks(lonlat_a, lonlat_b, search_distance, workers=1)
    for a, b, value in ordered_map(overlay, chunks, default_workers()):
        index_a.append(a)
        index_b.append(b)
        iou.append(value)
    cat = (lambda parts, kind: np.concatenate(parts) if parts else np.zeros(0, kind))
    return fids_a, fids_b, cat(index_a, np.int64), cat(index_b, np.int64), cat(iou, float)


def best_per_input(index_a, iou, n_a):
    """(best pair position (-1 without candidates), best IoU, second-best IoU) per input feature."""
    best = np.full(n_a, -1, dtype=np.int64)
    best_iou = np.zeros(n_a)
    second_iou = np.full(n_a, -np.inf)
    if len(index_a):
        order = np.lexsort((np.arange(len(iou)), -iou, index_a))
        first = np.r_[True, index_a[order][1:] != index_a[order][:-1]]
        best[index_a[order][first]] = order[first]
        best_iou[index_a[order][first]] = iou[order][first]
        has_second = np.r_[first[1:], True] == False  # noqa: E712 (element-wise)
        nxt = np.flatnonzero(first & has_second)
        second_iou[index_a[order][nxt]] = iou[order][nxt + 1]
    return best, best_iou, second_iou


def run_exact(args):
    started = time.perf_counter()
    fids_a, fids_b, index_a, index_b, iou = exact_pairs(args.input, args.reference, args.search_distance)
    best, best_iou, second_iou = best_per_input(index_a, iou, len(fids_a))
    best_fid = np.where(best >= 0, fids_b[index_b[np.maximum(best, 0)]] if len(index_b) else -1, -1)
    if args.layer:  # the same deliverable as the plugin: the input layer with the best match written back
        write_best_matches(args.input, args.layer, best_fid, best_iou, len(iou) and np.bincount(index_a,
                                                                                              minlength=len(fids_a)))
    np.savez(args.out, fids_a=fids_a, best_fid=best_fid, best_iou=best_iou, second_iou=second_iou,
             pairs=np.int64(len(iou)), seconds=time.perf_counter() - started)


def write_best_matches(input_source, path, best_fid, best_iou, count):
    """Copy the input layer (geometry and fields) to a GeoPackage with ex_match, ex_iou, ex_n added."""
    from osgeo import ogr

    from datasets import _path_and_layer

    source_path, layer_name = _path_and_layer(input_source)
    source = ogr.Open(str(source_path))
    layer = source.GetLayerByName(layer_name) if layer_name else source.GetLayer(0)
    Path(path).unlink(missing_ok=True)
    target = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    out = target.CreateLayer("exact", layer.GetSpatialRef(), layer.GetGeomType())
    definition = layer.GetLayerDefn()
    for i in range(definition.GetFieldCount()):
        out.CreateField(definition.GetFieldDefn(i))
    n_fields = definition.GetFieldCount()
    for name, kind in (("ex_match", ogr.OFTInteger64), ("ex_iou", ogr.OFTReal), ("ex_n", ogr.OFTInteger)):
        out.CreateField(ogr.FieldDefn(name, kind))
    out_definition = out.GetLayerDefn()
    count = np.zeros(len(best_fid), dtype=int) if np.isscalar(count) else count
    out.StartTransaction()
    for position, feature in enumerate(layer):
        row = ogr.Feature(out_definition)
        row.SetFrom(feature)
        if best_fid[position] >= 0:
            row.SetField(n_fields, int(best_fid[position]))
            row.SetField(n_fields + 1, float(best_iou[position]))
        row.SetField(n_fields + 2, int(count[position]))
        out.CreateFeature(row)
    out.CommitTransaction()
    target = source = None


def run_monte_carlo(args):
    """Seconds per pair of the direct Monte-Carlo overlap under uncertainty, on K random pairs."""
    from overlap_relevance.model.pairs import pair_chunk, plan_pair_chunks

    _, geoms_a, crs_a = read_layer(args.input)
    _, geoms_b, crs_b = read_layer(args.reference)
    lonlat_a, lonlat_b = layer_to_lonlat(geoms_a, crs_a), layer_to_lonlat(geoms_b, crs_b)
    distance = 3.0 * args.sigma  # the plugin's search distance under uncertainty
    plan = plan_pair_chunks(lonlat_a, lonlat_b, distance)
    index_a = np.concatenate([a for a, _ in plan])
    index_b = np.concatenate([b for _, b in plan])
    rng = np.random.default_rng(MC_SEED)
    pick = np.sort(rng.choice(len(index_a), size=min(args.pairs, len(index_a)), replace=False))
    displacement = rng.normal(0.0, args.sigma, (args.samples, 2))

    def simulate(rows):
        chunk = pair_chunk(lonlat_a, lonlat_b, index_a[rows], index_b[rows], distance, repair=True)
        if chunk is None:
            return np.zeros((0, args.samples))
        a, b = chunk.frames.a, chunk.frames.b
        m = args.samples
        moved = np.repeat(b, m)
        coords, owner = shapely.get_coordinates(moved, return_index=True)
        moved = shapely.set_coordinates(moved.copy(), coords + displacement[owner % m])
        return exact_overlap(np.repeat(a, m), moved, assume_valid=True).iou.reshape(-1, m)

    started = time.perf_counter()
    batches = np.array_split(pick, max(1, len(pick) // 8))
    iou = np.concatenate(list(ordered_map(simulate, batches, default_workers())))
    seconds = time.perf_counter() - started
    Path(args.out).write_text(json.dumps({
        "pairs": int(len(iou)), "samples": args.samples, "sigma": args.sigma, "seconds": seconds,
        "seconds_per_pair": seconds / max(len(iou), 1), "mean_iou": float(iou.mean()) if iou.size else None,
    }))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("exact", "monte-carlo"))
    parser.add_argument("input")
    parser.add_argument("reference")
    parser.add_argument("out")
    parser.add_argument("--search-distance", type=float, default=0.0)
    parser.add_argument("--layer", default=None, help="exact mode: also write the input layer with the best "
                                                      "match written back to this GeoPackage")
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args(argv)
    (run_exact if args.mode == "exact" else run_monte_carlo)(args)


if __name__ == "__main__":
    main()
