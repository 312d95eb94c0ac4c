"""Candidate search: never misses a pair within the search distance, across the antimeridian and poles."""

import numpy as np
import pytest
import shapely

from overlap_relevance.model.candidates import boxes_within, coarse_candidates, lonlat_boxes, widen_lonlat_boxes
from overlap_relevance.model.frame import layer_to_lonlat, project_pairs
from overlap_relevance.model.laea import laea_inverse
from overlap_relevance.model.pairs import iter_pair_chunks
from overlap_relevance.model.parallel import chunk_bounds


def square_at(lon0, lat0, x, y, size):
    """A square of ``size`` metres with its lower-left corner at (x, y) metres from (lon0, lat0), in lon/lat."""
    xs = np.array([x, x + size, x + size, x, x])
    ys = np.array([y, y, y + size, y + size, y])
    lon, lat = laea_inverse(xs, ys, lon0, lat0)
    return shapely.Polygon(np.column_stack([lon, lat]))


@pytest.mark.parametrize("lon0, lat0", [(0.0, 0.0), (13.4, 52.5), (179.9999, 10.0), (-179.9999, -40.0),
                                        (45.0, 88.9), (-120.0, -88.5)])
def test_pairs_within_distance_are_found_and_far_ones_are_not(lon0, lat0):
    # A at the origin, B at gaps of 0 (touching), 5, 49 and 51 m to the east; distance 50 m.
    a = np.array([square_at(lon0, lat0, -10, -10, 20)], dtype=object)
    gaps = [0.0, 5.0, 49.0, 51.0, 500.0]
    b = np.array([square_at(lon0, lat0, 10 + g, -10, 20) for g in gaps], dtype=object)
    index_a, index_b = coarse_candidates(a, b, 50.0)
    assert set(index_b.tolist()) >= {0, 1, 2}, "coarse search missed a pair within the distance"
    assert 4 not in index_b
    chunks = list(iter_pair_chunks(a, b, 50.0))
    kept = np.concatenate([c.index_b for c in chunks])
    assert sorted(kept.tolist()) == [0, 1, 2]


def test_zero_distance_means_touching_bounding_boxes():
    a = np.array([square_at(10, 50, 0, 0, 20)], dtype=object)
    b = np.array([square_at(10, 50, 20, 0, 20), square_at(10, 50, 20.5, 0, 20)], dtype=object)
    chunks = list(iter_pair_chunks(a, b, 0.0))
    assert np.concatenate([c.index_b for c in chunks]).tolist() == [0]


def test_antimeridian_crossing_geometry_gets_two_boxes_not_a_world_wide_one():
    crossing = square_at(180.0, 0.0, -500, -500, 1000)
    boxes, owner = lonlat_boxes(np.array([crossing, None], dtype=object))
    assert owner.tolist() == [0, 0]
    widths = boxes[:, 2] - boxes[:, 0]
    assert np.all(widths < 0.1)
    assert boxes[:, 0].min() < -180 or boxes[:, 2].max() > 180


def test_neighbours_across_the_antimeridian_are_candidates():
    west = square_at(179.99995, 0.0, -20, 0, 10)  # both sides of the date line, 40 m apart
    east = square_at(179.99995, 0.0, 30, 0, 10)
    lon = shapely.get_coordinates(np.array([west, east]))[:, 0]
    assert lon.max() > 179 and lon.min() < -179  # really on both sides
    index_a, index_b = coarse_candidates(np.array([west], dtype=object), np.array([east], dtype=object), 45.0)
    assert index_b.tolist() == [0]
    assert list(iter_pair_chunks(np.array([west], dtype=object), np.array([east], dtype=object), 35.0)) == []


def test_widening_is_conservative_in_metres_at_high_latitude():
    box = np.array([[10.0, 80.0, 10.001, 80.001]])
    widened = widen_lonlat_boxes(box, 1000.0)
    # 1 km east of the box at 80.001 N is about 0.0518 degrees of longitude
    assert widened[0, 2] - box[0, 2] > 1000.0 / (111_320.0 * np.cos(np.radians(80.01)))
    assert widened[0, 3] - box[0, 3] > 1000.0 / 111_700.0


def test_same_layer_ids_exclude_self_pairs():
    geoms = np.array([square_at(5, 5, 0, 0, 10), square_at(5, 5, 5, 0, 10)], dtype=object)
    ids = np.array([7, 8])
    chunks = list(iter_pair_chunks(geoms, geoms, 0.0, ids, ids))
    pairs = {(int(a), int(b)) for c in chunks for a, b in zip(c.index_a, c.index_b)}
    assert pairs == {(0, 1), (1, 0)}


def test_chunks_split_by_vertex_budget_and_cover_every_pair_once():
    counts = np.array([5, 5, 5, 100, 5, 5])
    bounds = chunk_bounds(counts, 12)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(6))
    assert all(counts[start:stop].sum() <= 12 or stop - start == 1 for start, stop in bounds)


def test_many_chunks_give_the_same_pairs_as_one():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 2000, (300, 2))
    geoms = np.array([square_at(-70.0, -33.0, x, y, 30) for x, y in xy], dtype=object)
    lonlat = layer_to_lonlat(geoms, "EPSG:4326")
    one = list(iter_pair_chunks(lonlat, lonlat, 10.0))
    many = list(iter_pair_chunks(lonlat, lonlat, 10.0, max_vertices=100))
    assert len(one) == 1 and len(many) > 5
    as_set = lambda chunks: {(int(a), int(b)) for c in chunks for a, b in zip(c.index_a, c.index_b)}  # noqa: E731
    assert as_set(one) == as_set(many)
    # Brute force in each pair's frame agrees with the two-stage search.
    ia, ib = np.meshgrid(np.arange(300), np.arange(300), indexing="ij")
    frames = project_pairs(lonlat, lonlat, ia.ravel(), ib.ravel())
    near = boxes_within(frames.a, frames.b, 10.0)
    assert as_set(one) == set(zip(ia.ravel()[near].tolist(), ib.ravel()[near].tolist()))
