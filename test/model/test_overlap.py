"""Exact overlap reference: hand-computed cases."""
import numpy as np
import pytest
import shapely

from overlap_relevance.model.overlap import ExactOverlap, exact_overlap

UNIT = shapely.box(0.0, 0.0, 1.0, 1.0)


def single(a, b) -> dict:
    result = exact_overlap(np.array([a], dtype=object), np.array([b], dtype=object))
    assert isinstance(result, ExactOverlap)
    return {name: float(getattr(result, name)[0]) for name in result.__dataclass_fields__}


def test_identical_squares():
    r = single(UNIT, shapely.box(0.0, 0.0, 1.0, 1.0))
    assert r["area_a"] == r["area_b"] == r["area_inter"] == 1.0
    assert r["cover_a"] == r["cover_b"] == r["iou"] == 1.0
    assert (r["centroid_x"], r["centroid_y"]) == pytest.approx((0.5, 0.5))


def test_disjoint_squares():
    r = single(UNIT, shapely.box(3.0, 0.0, 4.0, 1.0))
    assert r["area_inter"] == r["cover_a"] == r["cover_b"] == r["iou"] == 0.0
    assert np.isnan(r["centroid_x"]) and np.isnan(r["centroid_y"])


def test_square_shifted_by_half_its_width():
    r = single(UNIT, shapely.box(0.5, 0.0, 1.5, 1.0))
    assert r["area_inter"] == pytest.approx(0.5)
    assert r["cover_a"] == pytest.approx(0.5) and r["cover_b"] == pytest.approx(0.5)
    assert r["iou"] == pytest.approx(1.0 / 3.0)
    assert (r["centroid_x"], r["centroid_y"]) == pytest.approx((0.75, 0.5))


def test_containment():
    small = shapely.box(1.0, 1.0, 2.0, 3.0)  # area 2
    big = shapely.box(0.0, 0.0, 4.0, 5.0)  # area 20
    r = single(small, big)
    assert r["cover_a"] == pytest.approx(1.0)
    assert r["cover_b"] == pytest.approx(0.1)
    assert r["iou"] == pytest.approx(0.1)
    assert (r["centroid_x"], r["centroid_y"]) == pytest.approx((1.5, 2.0))


def test_touching_edges_have_no_overlap():
    r = single(UNIT, shapely.box(1.0, 0.0, 2.0, 1.0))
    assert r["area_inter"] == 0.0 and r["iou"] == 0.0 and r["cover_a"] == 0.0
    assert np.isnan(r["centroid_x"])


def test_square_with_a_hole():
    holed = shapely.Polygon(
        [(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]]
    )  # area 12
    # B covers the left half: 8 minus the hole's left half 2 -> 6 shared.
    r = single(holed, shapely.box(0.0, 0.0, 2.0, 4.0))
    assert r["area_a"] == pytest.approx(12.0)
    assert r["area_inter"] == pytest.approx(6.0)
    assert r["cover_a"] == pytest.approx(0.5)
    assert r["cover_b"] == pytest.approx(0.75)
    assert r["iou"] == pytest.approx(6.0 / 14.0)
    # B sitting inside the hole shares nothing.
    inside_hole = single(holed, shapely.box(1.5, 1.5, 2.5, 2.5))
    assert inside_hole["area_inter"] == 0.0 and inside_hole["iou"] == 0.0


def test_multipolygon():
    two_squares = shapely.MultiPolygon([UNIT, shapely.box(2.0, 0.0, 3.0, 1.0)])  # area 2
    strip = shapely.box(0.5, 0.0, 2.5, 1.0)  # area 2, shares 0.5 with each square
    r = single(two_squares, strip)
    assert r["area_inter"] == pytest.approx(1.0)
    assert r["cover_a"] == pytest.approx(0.5) and r["cover_b"] == pytest.approx(0.5)
    assert r["iou"] == pytest.approx(1.0 / 3.0)
    assert (r["centroid_x"], r["centroid_y"]) == pytest.approx((1.5, 0.5))


def test_zero_area_degenerate_input():
    flat = shapely.Polygon([(0, 0), (1, 0), (2, 0), (0, 0)])
    r = single(flat, UNIT)
    assert r["area_a"] == 0.0 and r["area_inter"] == 0.0
    assert r["cover_a"] == 0.0 and r["cover_b"] == 0.0 and r["iou"] == 0.0
    both = single(flat, flat)
    assert both["cover_a"] == both["cover_b"] == both["iou"] == 0.0


def test_none_and_empty_give_zeros():
    a = np.array([None, shapely.Polygon(), UNIT, None], dtype=object)
    b = np.array([UNIT, UNIT, shapely.Polygon(), None], dtype=object)
    r = exact_overlap(a, b)
    for name in ("area_inter", "cover_a", "cover_b", "iou"):
        np.testing.assert_array_equal(getattr(r, name), 0.0)
    np.testing.assert_array_equal(r.area_a, [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(r.area_b, [1.0, 1.0, 0.0, 0.0])
    assert np.isnan(r.centroid_x).all()


def test_invalid_input_is_repaired_not_fatal():
    bow_tie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # two triangles, area 2
    r = exact_overlap([bow_tie, UNIT], [shapely.box(0, 0, 2, 2), UNIT])
    assert r.area_a[0] == pytest.approx(2.0) and r.cover_a[0] == pytest.approx(1.0)
    assert r.iou[1] == 1.0


def test_vectorised_batch_matches_single_pairs():
    rng = np.random.default_rng(7)
    n = 2000
    lower_left = rng.uniform(0.0, 10.0, (n, 2))
    size = rng.uniform(0.5, 3.0, (n, 2))
    a = shapely.box(lower_left[:, 0], lower_left[:, 1], *(lower_left + size).T)
    offset = rng.uniform(-2.0, 2.0, (n, 2))
    b = shapely.box(*(lower_left + offset).T, *(lower_left + offset + size[:, ::-1]).T)
    r = exact_overlap(a, b)
    # Axis-aligned boxes: the overlap is the product of the interval overlaps.
    a_max, b_min = lower_left + size, lower_left + offset
    b_max = b_min + size[:, ::-1]
    inter = np.prod(np.clip(np.minimum(a_max, b_max) - np.maximum(lower_left, b_min), 0.0, None), axis=1)
    np.testing.assert_allclose(r.area_inter, inter, atol=1e-12)
    np.testing.assert_allclose(r.iou, inter / (np.prod(size, axis=1) * 2 - inter), atol=1e-12)
    assert r.area_a.dtype == np.float64 and r.area_a.shape == (n,)
