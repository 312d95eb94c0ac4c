"""From two layers to candidate pairs in their local metric frames, in bounded chunks.

This is the shared front half of every algorithm: candidates on the globe
(:mod:`.candidates`), then each chunk of pairs projected into its local frames
(:mod:`.frame`) and filtered in metres. Chunks are cut by vertex count, not pair
count, so a layer of large administrative polygons stays in bounded memory too.
"""

from dataclasses import dataclass

import numpy as np
import shapely

from .candidates import boxes_within, coarse_candidates
from .frame import project_pairs
from .parallel import chunk_bounds, ordered_map
from .preparation import prepare_layer

# About 6 MB of coordinates per chunk, and well under a second of work, so that a
# cancel in QGIS is honoured quickly; larger chunks gain little throughput.
DEFAULT_CHUNK_VERTICES = 100_000
#: Parts of features further apart than this many search distances cannot meet: the search distance is at
#: least 3σ, and a displacement beyond 6σ has probability exp(-18).
REACH_FACTOR = 3.0


@dataclass
class PairChunk:
    """Candidate pairs of one chunk, kept after the fine filter.

    index_a, index_b : (p,) int64 positions in the two input arrays.
    frames : the pairs' local frames (:class:`.frame.PairFrames`), aligned with the indices.
    """

    index_a: np.ndarray
    index_b: np.ndarray
    frames: object
    reach_m: object = 0.0


def plan_pair_chunks(lonlat_a, lonlat_b, search_distance_m=0.0, ids_a=None, ids_b=None,
                     max_vertices=DEFAULT_CHUNK_VERTICES):
    """The coarse candidate pairs, cut into chunks: a list of (index_a, index_b) arrays.

    Arguments as for :func:`iter_pair_chunks`. Cheap (boxes and an STRtree); the work per
    chunk is :func:`pair_chunk`.
    """
    distance = np.asarray(search_distance_m, dtype=float)
    # Candidates are found on the full-detail geometries, where a model layer has them.
    index_a, index_b = coarse_candidates(_geometries(full_detail(lonlat_a)), _geometries(full_detail(lonlat_b)),
                                         distance)
    if ids_a is not None and ids_b is not None:
        keep = np.asarray(ids_a)[index_a] != np.asarray(ids_b)[index_b]
        index_a, index_b = index_a[keep], index_b[keep]
    for layer in (lonlat_a, lonlat_b):  # per-feature caches made once here, not by the first chunks at once
        getattr(layer, "unit_centres", None)
        getattr(layer, "vertex_trig", None)
    vertices_a = shapely.get_num_coordinates(_geometries(lonlat_a))
    vertices_b = shapely.get_num_coordinates(_geometries(lonlat_b))
    cost = vertices_a[index_a] + vertices_b[index_b]
    return [(index_a[start:stop], index_b[start:stop]) for start, stop in chunk_bounds(cost, max_vertices)]


def pair_chunk(lonlat_a, lonlat_b, chunk_a, chunk_b, search_distance_m=0.0, repair=True, centre_on_large=False):
    """One planned chunk projected into its pairs' frames and fine-filtered: a PairChunk, or None if empty.

    centre_on_large : see :func:`.frame.project_pairs`.
    """
    distance = np.asarray(search_distance_m, dtype=float)
    pair_distance = distance[chunk_a] if distance.ndim else distance
    # Simplified model geometries: the full-detail features may reach this much further (preparation.prepare_layer).
    pair_distance = pair_distance + _detail_error(lonlat_a, chunk_a) + _detail_error(lonlat_b, chunk_b)
    # What can meet: within the search distance (at least 3σ), and what a displacement of up to 6σ can close.
    reach = REACH_FACTOR * pair_distance
    frames = project_pairs(lonlat_a, lonlat_b, chunk_a, chunk_b, repair=repair, centre_on_large=centre_on_large,
                           reach_m=reach)
    near = boxes_within(frames.a, frames.b, pair_distance)
    if not near.all():
        frames = frames.subset(near)
        reach = reach[near] if np.ndim(reach) else reach
    return PairChunk(frames.index_a, frames.index_b, frames, reach) if len(frames) else None


def iter_pair_chunks(lonlat_a, lonlat_b, search_distance_m=0.0, ids_a=None, ids_b=None,
                     max_vertices=DEFAULT_CHUNK_VERTICES, repair=True, workers=1, cancelled=None):
    """Yield :class:`PairChunk` objects covering every candidate pair once.

    Parameters
    ----------
    lonlat_a, lonlat_b : :class:`.frame.LonLatLayer` (preferred: per-feature centres are
        computed once for all chunks) or (n_a,), (n_b,) arrays of lon/lat polygons.
    search_distance_m : float or (n_a,) array, metres; pairs whose local bounding boxes
        are further apart than this are dropped.
    ids_a, ids_b : optional feature ids; when given, pairs with equal ids are dropped
        (the two arrays come from the same layer and a feature is never its own match).
    max_vertices : vertex budget per chunk.
    repair : repair validity in each pair frame (see :func:`.frame.project_pairs`).
    workers : threads projecting chunks at once (see :func:`.parallel.ordered_map`;
        None: the default); chunks still come in order.
    cancelled : optional callable; when it returns True no further chunk is started.
    """
    plan = plan_pair_chunks(lonlat_a, lonlat_b, search_distance_m, ids_a, ids_b, max_vertices)

    def project(chunk):
        return pair_chunk(lonlat_a, lonlat_b, *chunk, search_distance_m, repair)

    for chunk in ordered_map(project, plan, workers, cancelled):
        if chunk is not None:
            yield chunk


def _geometries(layer):
    return np.asarray(getattr(layer, "geoms", layer), dtype=object)


def full_detail(layer):
    """The full-detail layer of a model layer (:func:`.preparation.prepare_layer`), else the layer itself."""
    full = getattr(layer, "full_detail", None)
    return layer if full is None else full


def _detail_error(layer, index):
    """(k,) metres within which the model geometries of features ``index`` lie of their full detail."""
    error = getattr(layer, "detail_error", None)
    return 0.0 if error is None else error[index]


def full_detail_layers(lonlat_a, lonlat_b, workers=None):
    """Both layers repaired once, each feature in its own frame, at full detail: ((a, b), (repaired_a, repaired_b)).

    What exact measures take, in the frames scoring measures pairs in (:func:`iter_measured_chunks`).
    """
    prepared_a, prepared_b = (prepare_layer(layer, workers=workers) for layer in (lonlat_a, lonlat_b))
    return (prepared_a.full_detail, prepared_b.full_detail), (prepared_a.repaired, prepared_b.repaired)


def iter_measured_chunks(full_a, full_b, search_distance_m=0.0, ids_a=None, ids_b=None,
                         max_vertices=DEFAULT_CHUNK_VERTICES, workers=1, cancelled=None):
    """As :func:`iter_pair_chunks`, on layers from :func:`full_detail_layers`, each pair in the frame
    scoring measures it in at σ = 0 (centred on its larger feature when that one is large), so exact
    overlaps are those :mod:`.scoring` writes at σ = 0."""
    plan = plan_pair_chunks(full_a, full_b, search_distance_m, ids_a, ids_b, max_vertices)

    def project(chunk):
        return pair_chunk(full_a, full_b, *chunk, search_distance_m, repair=False, centre_on_large=True)

    for chunk in ordered_map(project, plan, workers, cancelled):
        if chunk is not None:
            yield chunk
