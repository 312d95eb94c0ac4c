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

# About 6 MB of coordinates per chunk, and well under a second of work, so that a
# cancel in QGIS is honoured quickly; larger chunks gain little throughput.
DEFAULT_CHUNK_VERTICES = 100_000


@dataclass
class PairChunk:
    """Candidate pairs of one chunk, kept after the fine filter.

    index_a, index_b : (p,) int64 positions in the two input arrays.
    frames : the pairs' local frames (:class:`.frame.PairFrames`), aligned with the indices.
    """

    index_a: np.ndarray
    index_b: np.ndarray
    frames: object


def chunk_bounds(vertex_counts, max_vertices):
    """Split positions 0..n into consecutive [start, stop) runs of about ``max_vertices``.

    Parameters
    ----------
    vertex_counts : (n,) int array, the cost of each item.
    max_vertices : int, the budget per run; an item larger than it gets a run of its own.
    """
    cumulative = np.cumsum(vertex_counts)
    bounds, start = [], 0
    while start < len(cumulative):  # one iteration per chunk, not per item
        spent_before = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, spent_before + max_vertices, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


def iter_pair_chunks(lonlat_a, lonlat_b, search_distance_m=0.0, ids_a=None, ids_b=None,
                     max_vertices=DEFAULT_CHUNK_VERTICES, repair=True):
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
    """
    distance = np.asarray(search_distance_m, dtype=float)
    index_a, index_b = coarse_candidates(_geometries(lonlat_a), _geometries(lonlat_b), distance)
    if ids_a is not None and ids_b is not None:
        keep = np.asarray(ids_a)[index_a] != np.asarray(ids_b)[index_b]
        index_a, index_b = index_a[keep], index_b[keep]
    vertices_a = shapely.get_num_coordinates(_geometries(lonlat_a))
    vertices_b = shapely.get_num_coordinates(_geometries(lonlat_b))
    cost = vertices_a[index_a] + vertices_b[index_b]
    for start, stop in chunk_bounds(cost, max_vertices):
        chunk_a, chunk_b = index_a[start:stop], index_b[start:stop]
        frames = project_pairs(lonlat_a, lonlat_b, chunk_a, chunk_b, repair=repair)
        pair_distance = distance[chunk_a] if distance.ndim else distance
        near = boxes_within(frames.a, frames.b, pair_distance)
        if not near.all():
            frames = frames.subset(near)
        if len(frames):
            yield PairChunk(frames.index_a, frames.index_b, frames)


def _geometries(layer):
    return np.asarray(getattr(layer, "geoms", layer), dtype=object)
