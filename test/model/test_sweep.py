"""The boundary-sweep surrogate (model/sweep.py) against closed forms and exact overlays."""

import numpy as np
import pytest
import shapely
from overlap_relevance.model import sweep
from overlap_relevance.model.sweep import boundary_samples, build_sweep, oriented_edges, sweep_summary
from shapely.geometry import MultiPolygon, Polygon, box
from tools.geometry import geos_overlap_at_shifts


def test_square_against_itself_loses_x_plus_y():
    """Boundaries in contact: each side moves along its normal, the corner term xy is left out."""
    a = np.array([box(0, 0, 1, 1)], dtype=object)
    d = np.array([[[0.3, 0.0], [0.0, -0.2], [0.2, 0.1], [-0.25, 0.4]]])
    got = build_sweep(a, a, 1.0).intersection(d)[0]
    np.testing.assert_allclose(got, [0.7, 0.8, 0.7, 0.35], atol=1e-12)
    np.testing.assert_allclose(geos_overlap_at_shifts(a, a, d)[0], [0.7, 0.8, 0.72, 0.45], atol=1e-12)


def test_axis_aligned_rectangles_and_axis_shifts_are_exact():
    """Every boundary element of axis-aligned rectangles moves along its normal or along itself: exact."""
    rng = np.random.default_rng(0)
    n = 200
    corner_a, size_a = rng.uniform(-2, 2, (n, 2)), rng.uniform(0.5, 4, (n, 2))
    corner_b, size_b = corner_a + rng.uniform(-2, 2, (n, 2)), rng.uniform(0.5, 4, (n, 2))
    a = shapely.box(*corner_a.T, *(corner_a + size_a).T)
    b = shapely.box(*corner_b.T, *(corner_b + size_b).T)
    shift = rng.normal(0, 1.0, (n, 6))
    d = np.zeros((n, 6, 2))
    d[:, :3, 0], d[:, 3:, 1] = shift[:, :3], shift[:, 3:]
    got = build_sweep(a, b, 1.0, per_pair=400, reach=50).intersection(d)
    # the midpoint rule along the sides
    np.testing.assert_allclose(got, geos_overlap_at_shifts(a, b, d), atol=0.02 * np.max(size_b))


def test_first_order_error_shrinks_quadratically(monkeypatch):
    """For a smooth pair the surrogate's error is second order in |d| (A seen with all its vertices)."""
    monkeypatch.setattr(sweep, "SWEEP_MAX_VERTICES", 10_000)
    a = np.array([shapely.Point(0, 0).buffer(10, 16)], dtype=object)
    b = np.array([shapely.affinity.scale(shapely.Point(2, 1).buffer(8, 16), 1.3, 0.8)], dtype=object)
    direction = np.array([0.6, 0.8])
    errors = []
    for step in (0.2, 0.1, 0.05):
        d = (step * direction)[None, None, :]
        model = build_sweep(a, b, 1.0, per_pair=50_000).intersection(d)[0, 0]
        errors.append(abs(model - geos_overlap_at_shifts(a, b, d)[0, 0]))
    assert errors[1] < 0.35 * errors[0] and errors[2] < 0.35 * errors[1]
    moved = geos_overlap_at_shifts(a, b, (0.2 * direction)[None, None, :])[0, 0]
    change = moved - shapely.area(shapely.intersection(a[0], b[0]))
    assert errors[0] < 1e-3 * abs(change)


def test_holes_multipolygons_and_orientation():
    """A hole in A, B in two parts, rings given clockwise: the same as the exact answer for normal motion."""
    outer = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(3, 3), (7, 3), (7, 7), (3, 7)]])  # clockwise shell
    b = MultiPolygon([box(2, 2, 4, 4), box(6, 6, 8, 8)])
    a_arr, b_arr = np.array([outer], dtype=object), np.array([b], dtype=object)
    d = np.array([[[0.5, 0.0], [-0.7, 0.0], [0.0, 0.9], [0.0, -0.3]]])
    got = build_sweep(a_arr, b_arr, 1.0, per_pair=800, reach=10).intersection(d)
    np.testing.assert_allclose(got, geos_overlap_at_shifts(a_arr, b_arr, d), atol=0.02)
    _, start, vector = oriented_edges(a_arr)
    doubled = np.sum(start[:, 0] * vector[:, 1] - start[:, 1] * vector[:, 0])  # shell CCW (+200), hole CW (-32)
    assert doubled == pytest.approx(2 * (100 - 16))


def test_large_outlines_are_coarsened_under_the_limit():
    rng = np.random.default_rng(4)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 300))
    radius = 100 + rng.normal(0, 2, 300)
    wiggly = shapely.Polygon(np.column_stack([radius * np.cos(angles), radius * np.sin(angles)]))
    small = box(0, 0, 1, 1)
    out = sweep.coarse_outline(np.array([wiggly, small, None], dtype=object), max_vertices=48)
    assert shapely.get_num_coordinates(out[0]) <= 48 and out[1] is small and out[2] is None
    assert shapely.area(out[0]) == pytest.approx(shapely.area(wiggly), rel=0.02)


def test_boundary_samples_spread_evenly_and_sum_to_the_perimeter():
    geoms = np.array([box(0, 0, 4, 1), None, shapely.Point(0, 0).buffer(1)], dtype=object)
    pair, point, weight, normal = boundary_samples(geoms, per_pair=10)
    assert set(pair) == {0, 2}
    np.testing.assert_allclose(np.bincount(pair, weight, minlength=3), np.nan_to_num(shapely.length(geoms)))
    np.testing.assert_allclose(np.hypot(*normal.T), 1.0)
    inside = shapely.contains_xy(geoms[pair], *(point - 1e-6 * normal).T)
    assert inside.all()  # the normals point outwards


def test_missing_geometries_and_apart_pairs_give_zero():
    a = np.array([None, box(0, 0, 1, 1), box(0, 0, 1, 1)], dtype=object)
    b = np.array([box(0, 0, 1, 1), shapely.Polygon(), box(50, 50, 51, 51)], dtype=object)
    d = np.random.default_rng(1).normal(0, 1, (3, 8, 2))
    got = build_sweep(a, b, 1.0).intersection(d)
    assert np.array_equal(got, np.zeros((3, 8)))


def test_summary_is_independent_of_batching_and_chunking(monkeypatch):
    rng = np.random.default_rng(2)
    centres = rng.uniform(-1, 1, (40, 2))
    a = shapely.buffer(shapely.points(rng.uniform(-1, 1, (40, 2))), rng.uniform(1, 3, 40), quad_segs=6)
    b = shapely.buffer(shapely.points(centres), rng.uniform(1, 3, 40), quad_segs=6)
    sigma = rng.uniform(0.1, 1.5, 40)
    whole = sweep_summary(a, b, sigma)
    halves = np.vstack([sweep_summary(a[:17], b[:17], sigma[:17]), sweep_summary(a[17:], b[17:], sigma[17:])])
    monkeypatch.setattr(sweep, "CHUNK_PRODUCT", 300)
    monkeypatch.setattr(sweep, "SUMMARY_BLOCK_PAIRS", 7)
    chunked = sweep_summary(a, b, sigma)
    np.testing.assert_allclose(halves, whole, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chunked, whole, rtol=1e-9, atol=1e-12)
    assert whole.shape == (40, len(sweep.SWEEP_NAMES))
    assert np.all((whole >= 0) & (whole <= 1))


def test_summary_tracks_monte_carlo_on_building_like_pairs():
    """Mean IoU of the surrogate against 4,096 exact draws: close for offset squares and rotated copies."""
    rng = np.random.default_rng(3)
    n = 30
    size = rng.uniform(8, 20, n)
    a = shapely.box(0, 0, size, size)
    b = np.array([shapely.affinity.rotate(shapely.affinity.translate(g, *rng.normal(0, 1, 2)), rng.uniform(-5, 5))
                  for g in a], dtype=object)
    sigma = rng.uniform(0.3, 2.0, n)
    d = sigma[:, None, None] * rng.standard_normal((n, 1024, 2))
    inter = geos_overlap_at_shifts(a, b, d)
    iou = inter / (shapely.area(a)[:, None] + shapely.area(b)[:, None] - inter)
    summary = sweep_summary(a, b, sigma)
    assert np.abs(summary[:, 2] - iou.mean(axis=1)).max() < 0.03
    assert np.abs(summary[:, 2] - iou.mean(axis=1)).mean() < 0.01


def test_rounding_noise_on_a_grid_layout_does_not_move_the_summary():
    """Buildings sharing walls on a grid, then the same pairs turned by 1e-12 rad (what another
    projection's last bits do): moving apart they touch, and a touch is no overlap in both."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 50, 60).round()
    a = shapely.box(x, 0, x + 10, 10)
    b = shapely.box(x + 10, rng.uniform(-5, 5, 60).round(), x + 18, 8)
    turned = [np.array([shapely.affinity.rotate(g, 1e-12, origin=(0, 0), use_radians=True) for g in side],
                       dtype=object) for side in (a, b)]
    sigma = np.full(60, 1.0)
    np.testing.assert_allclose(sweep_summary(*turned, sigma), sweep_summary(a, b, sigma), atol=1e-9)


def test_a_ray_along_an_edge_does_not_cross_it(monkeypatch):
    """A normal ray running along an edge of A whose direction is off by rounding (1e-16): no crossing."""
    args = (np.array([0]), np.array([[10.0, 5.0]]), np.array([[0.0, 1.0]]), np.array([0]),
            np.array([[10.0, 0.0]]), np.array([[1e-15, 10.0]]), 1)
    assert len(sweep._crossings(*args)[0]) == 0
    monkeypatch.setattr(sweep, "PARALLEL_SINE", 0.0)
    assert len(sweep._crossings(*args)[0]) == 1  # without the guard: a crossing made of rounding
