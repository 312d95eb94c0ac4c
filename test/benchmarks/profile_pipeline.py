"""Where the time of scoring goes: every stage of the pipeline timed on its own, one thread.

Plain Python, no QGIS (OGR reads the layers, as ``qgis_process`` would through its own
provider): reading features, WKB to shapely, lon/lat, model geometries, candidates,
projection into the pair frames, encoding (descriptors, with the one exact overlay of
the model geometries they need, also shown on its own), network inference, and the
mixture summaries. Run as ``profile_pipeline.py INPUT REFERENCE OUT.json [--sigma S]``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import _path_and_layer  # noqa: E402
from osgeo import ogr  # noqa: E402
from overlap_relevance.model.encoding import pair_descriptors  # noqa: E402
from overlap_relevance.model.frame import layer_to_lonlat  # noqa: E402
from overlap_relevance.model.preparation import prepare_layer  # noqa: E402
from overlap_relevance.model.mixture import mixture_from_raw  # noqa: E402
from overlap_relevance.model.overlap import exact_overlap  # noqa: E402
from overlap_relevance.model.pairs import pair_chunk, plan_pair_chunks  # noqa: E402
from overlap_relevance.model.scoring import load_model, search_distances, summarise_overlap  # noqa: E402


class Stopwatch:
    def __init__(self):
        self.seconds = {}

    def time(self, stage, function, *args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        return result


def read_wkb(source):
    path, layer_name = _path_and_layer(source)
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    wkbs = [bytes(f.GetGeometryRef().ExportToIsoWkb()) if f.GetGeometryRef() is not None else None for f in layer]
    return wkbs, layer.GetSpatialRef().ExportToWkt()


def profile(input_source, reference_source, sigma=0.0):
    watch = Stopwatch()
    model = load_model()
    (wkb_a, crs_a), (wkb_b, crs_b) = (watch.time("reading features (OGR)", read_wkb, s)
                                      for s in (input_source, reference_source))
    geoms_a, geoms_b = (watch.time("WKB to shapely", shapely.from_wkb, np.array(w, dtype=object))
                        for w in (wkb_a, wkb_b))
    lonlat_a = watch.time("to lon/lat (pyproj)", layer_to_lonlat, geoms_a, crs_a)
    lonlat_b = watch.time("to lon/lat (pyproj)", layer_to_lonlat, geoms_b, crs_b)
    model_a = watch.time("model geometries (repair, simplify)", prepare_layer, lonlat_a, workers=1).model
    model_b = watch.time("model geometries (repair, simplify)", prepare_layer, lonlat_b, workers=1).model
    sigma_a = np.full(len(geoms_a), sigma)
    distance = search_distances(0.0, sigma_a)
    plan = watch.time("candidates (STRtree)", plan_pair_chunks, model_a, model_b, distance)
    pairs = 0
    for planned in plan:
        chunk = watch.time("projection to pair frames", pair_chunk, model_a, model_b, *planned, distance,
                           repair=False)
        if chunk is None:
            continue
        pairs += len(chunk.index_a)
        a, b, s = chunk.frames.a, chunk.frames.b, sigma_a[chunk.index_a]
        if model.sigma_path == "exact" and (s > 0).any():  # the product at σ > 0: no descriptors, no network
            moving = s > 0
            overlap, _ = watch.time("exact overlap and centroid at shifts", model._shifted, a[moving], b[moving],
                                    s[moving])
            watch.time("summaries (of the overlap distribution)", summarise_overlap, overlap)
            if moving.all():
                continue
            a, b, s = a[~moving], b[~moving], s[~moving]
        watch.time("(of encoding: the exact overlay)", exact_overlap, a, b, assume_valid=True)
        descriptors, context = watch.time("encoding (descriptors)", pair_descriptors, a, b, s)
        raw = watch.time("inference (network)", model.network.raw, descriptors)
        if model.sigma_path == "exact":  # the product's σ > 0 overlap: exact at fixed shifts (scoring.SIGMA_PATH)
            still = (s == 0) & ~context["cannot_overlap"]
            overlap = watch.time("exact overlap at shifts", model._exact_shift_mixture, a, b, s, context["overlap0"],
                                 still, context["cannot_overlap"])
        elif model.network.overlap_head_kind == "unit_atoms":
            overlap = watch.time("inference (network)", model._unit_mixture, raw.overlap, descriptors,
                                 context["overlap0"], (s == 0) & ~context["cannot_overlap"], context["cannot_overlap"])
        else:
            overlap = watch.time("inference (network)", mixture_from_raw, raw.overlap,
                                 model.network.overlap_components, 2)
        watch.time("summaries (of the overlap distribution)", summarise_overlap, overlap)
    total = sum(v for k, v in watch.seconds.items() if not k.startswith("("))
    return {"pairs": pairs, "sigma": sigma, "seconds": watch.seconds, "total": total,
            "features": [len(geoms_a), len(geoms_b)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("reference")
    parser.add_argument("out")
    parser.add_argument("--sigma", type=float, default=0.0)
    args = parser.parse_args(argv)
    Path(args.out).write_text(json.dumps(profile(args.input, args.reference, args.sigma), indent=1))


if __name__ == "__main__":
    main()
