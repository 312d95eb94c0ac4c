"""The point encoding of pairs of polygons, for the architecture study (:mod:`compare_architectures`).

Each geometry becomes its ring vertices in normalised coordinates (``(p - c) / L``, the pair scale and
centre of :func:`overlap_relevance.model.encoding.pair_scale_and_centre`) with one-hot features
``[geometry A, geometry B, exterior ring, hole]`` plus the ring and part they belong to, as in the research
this project grew from. Ring orientation is normalised (exteriors counter-clockwise, holes clockwise)
through a per-ring sign, without reordering vertices. The plugin does not use it: the network reads the
pair descriptors (:mod:`overlap_relevance.model.encoding`).
"""

from dataclasses import dataclass

import numpy as np
import shapely
from overlap_relevance.model.encoding import pair_scale_and_centre

POINT_FEATURE_NAMES = ("geometry_a", "geometry_b", "exterior", "hole")


@dataclass
class PairPoints:
    """The point encoding of n pairs (V vertices in all).

    xy : (V, 2) float64 normalised coordinates.
    features : (V, 4) float32 one-hot ``POINT_FEATURE_NAMES``.
    pair : (V,) int64 pair of each vertex.
    ring : (V,) int64 global ring id; consecutive vertices of one ring form its edges.
    part : (V,) int64 global polygon-part id.
    orientation : (R,) float64, +1 or -1 per ring: the sign that makes exteriors
        counter-clockwise and holes clockwise.
    centre : (n, 2) metres, the frame point mapped to (0, 0).
    scale : (n,) metres, the pair scale L.
    """

    xy: np.ndarray
    features: np.ndarray
    pair: np.ndarray
    ring: np.ndarray
    part: np.ndarray
    orientation: np.ndarray
    centre: np.ndarray
    scale: np.ndarray

    def __len__(self):
        return len(self.scale)


def _rings(geoms, first_pair_offset=0):
    """Vertices of every ring of (n,) polygonal geometries, with their ring and part ids.

    Returns xy (V, 2), pair (V,), ring (V,) local ring ids 0..R-1, part (V,) local part
    ids, ring_is_hole (R,) and ring_orientation (R,) (+1 counter-clockwise).
    """
    geoms = np.asarray(geoms, dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    index = np.flatnonzero(usable)
    parts, part_owner = shapely.get_parts(geoms[index], return_index=True)
    part_pair = index[part_owner]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    first_of_part = np.r_[True, ring_part[1:] != ring_part[:-1]] if len(ring_part) else np.zeros(0, bool)
    ring_is_hole = ~first_of_part
    # Shoelace signed area per ring, to know its orientation without reordering.
    nxt = np.r_[xy[1:], xy[:1]]
    same_ring = np.r_[vertex_ring[1:] == vertex_ring[:-1], False]
    cross = np.where(same_ring, xy[:, 0] * nxt[:, 1] - nxt[:, 0] * xy[:, 1], 0.0)
    signed = np.bincount(vertex_ring, weights=cross, minlength=len(rings))
    orientation = np.where(signed >= 0, 1.0, -1.0)
    return xy, part_pair[ring_part[vertex_ring]], vertex_ring, ring_part[vertex_ring], ring_is_hole, orientation


def encode_points(a, b):
    """The point encoding (:class:`PairPoints`) of n pairs in their local frames.

    Parameters
    ----------
    a, b : (n,) aligned arrays of shapely (Multi)Polygons in a metric frame (metres);
        None or empty is allowed and contributes no points.
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    scale, centre = pair_scale_and_centre(a, b)
    xy_a, pair_a, ring_a, part_a, hole_a, orient_a = _rings(a)
    xy_b, pair_b, ring_b, part_b, hole_b, orient_b = _rings(b)
    n_rings_a = len(hole_a)
    n_parts_a = part_a.max() + 1 if len(part_a) else 0
    pair = np.concatenate([pair_a, pair_b]).astype(np.int64)
    ring = np.concatenate([ring_a, ring_b + n_rings_a]).astype(np.int64)
    part = np.concatenate([part_a, part_b + n_parts_a]).astype(np.int64)
    hole = np.concatenate([hole_a, hole_b])
    xy = (np.concatenate([xy_a, xy_b]) - centre[pair]) / scale[pair, None]
    features = np.zeros((len(xy), 4), dtype=np.float32)
    features[: len(xy_a), 0] = 1.0
    features[len(xy_a):, 1] = 1.0
    features[:, 2] = ~hole[ring]
    features[:, 3] = hole[ring]
    # Exteriors counter-clockwise, holes clockwise.
    orientation = np.concatenate([orient_a, orient_b]) * np.where(hole, -1.0, 1.0)
    return PairPoints(xy, features, pair, ring, part, orientation, centre, scale)
