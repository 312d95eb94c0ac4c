"""The first moments of A ∩ (B + d) from the exact shift kernel (model/shift_overlap.py) against GEOS
centroids, and the product's σ > 0 centroid built from them (model/scoring.py)."""

import numpy as np
import pytest
import shapely

from overlap_relevance.model import encoding, scoring
from overlap_relevance.model.overlap import translate
from overlap_relevance.model.scoring import (EXACT_SHIFTS, OverlapModel, _standard_shifts, centroid_from_shifts,
                                             summarise_overlap)
from overlap_relevance.model.shift_overlap import centroids_at_shifts, overlap_at_shifts, polygon_areas
from test_shift_overlap import mixed_pairs, province_pair
from tools.compiled import numba_missing


def geos_centroids(a, b, d):
    """(area (n, k), centroid (n, k, 2)) of A ∩ (B + d) by GEOS, one overlay per pair and shift."""
    area, centre = np.zeros(d.shape[:2]), np.full(d.shape, np.nan)
    for j in range(d.shape[1]):
        inter = shapely.intersection(a, translate(b, d[:, j]))
        area[:, j] = shapely.area(inter)
        has = area[:, j] > 0
        centre[has, j] = shapely.get_coordinates(shapely.centroid(inter[has]))
    return area, centre


def test_moments_give_the_geos_centroids_with_holes_parts_shared_edges_and_no_overlap():
    a, b = mixed_pairs(60, seed=21)
    d = np.random.default_rng(22).normal(0, 3.0, (len(a), 16, 2))
    d[:, 0] = 0.0  # the pairs as they lie: shared edges of the grid pairs stay shared
    d[:, 1] = 40.0  # far apart: no overlap anywhere
    area, centre, overlaps = centroids_at_shifts(a, b, d)
    geos_area, geos_centre = geos_centroids(a, b, d)
    smaller = np.minimum(polygon_areas(a), polygon_areas(b))[:, None]
    np.testing.assert_array_equal(overlaps, geos_area > 1e-9 * smaller)
    assert (~overlaps[:, 1]).all() and overlaps.mean() > 0.5  # the far shift overlaps nowhere; most others do
    assert np.isnan(centre[~overlaps]).all()
    np.testing.assert_allclose(centre[overlaps], geos_centre[overlaps], rtol=0, atol=1e-9)
    np.testing.assert_allclose(area, geos_area, rtol=0, atol=1e-9)
    # The moments are zero where nothing overlaps, and the area is the one moments=False gives, to the bit.
    plain = overlap_at_shifts(a, b, d)
    with_moments, moment_x, moment_y = overlap_at_shifts(a, b, d, moments=True)
    np.testing.assert_array_equal(with_moments, plain)
    assert np.abs(moment_x[:, 1]).max() < 1e-9 and np.abs(moment_y[:, 1]).max() < 1e-9


def test_moments_of_translated_copies_follow_the_shift():
    """B = A centrally symmetric (rotated rectangles, one with a centred hole, two point-symmetric parts):
    A ∩ (A + d) is symmetric about A's centre + d/2, so that is its centroid."""
    rng = np.random.default_rng(5)
    shapes = []
    for i in range(12):
        w, h = rng.uniform(2, 12, 2)
        shape = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
        if i % 3 == 1:
            shape = shape.difference(shapely.box(-w / 4, -h / 4, w / 4, h / 4))
        elif i % 3 == 2:
            shape = shapely.union(shapely.box(-w, -h, -w / 2, h / 2), shapely.box(w / 2, -h / 2, w, h))
        shape = shapely.affinity.rotate(shape, rng.uniform(0, 180), origin=(0, 0))
        shapes.append(shapely.affinity.translate(shape, *rng.normal(0, 50, 2)))
    a = np.array(shapes, dtype=object)
    d = rng.normal(0, 1.0, (len(a), 8, 2))
    _, centre, overlaps = centroids_at_shifts(a, a, d)
    assert overlaps.mean() > 0.8
    expected = shapely.get_coordinates(shapely.centroid(a))[:, None, :] + d / 2
    np.testing.assert_allclose(centre[overlaps], expected[overlaps], rtol=0, atol=1e-9)


def test_province_moments_match_geos():
    a, b = province_pair()
    d = np.random.default_rng(7).normal(0, 20_000.0, (1, 4, 2))
    d[0, 0] = 0.0
    area, centre, overlaps = centroids_at_shifts(a, b, d)
    geos_area, geos_centre = geos_centroids(a, b, d)
    assert overlaps[0, 0]
    scale = np.sqrt(shapely.area(a)[0])
    assert np.abs(centre[overlaps] - geos_centre[overlaps]).max() < 1e-7 * scale
    np.testing.assert_array_equal(overlaps, geos_area > 1e-9 * min(shapely.area(a)[0], shapely.area(b)[0]))


def test_the_compiled_kernel_gives_the_same_moments():
    """Bit for bit, where numba imports (Dask workers, a user's venv); never needed in QGIS."""
    from overlap_relevance.model.shift_kernel_numba import compiled_kernel

    a, b = mixed_pairs(40, seed=12)
    d = np.random.default_rng(13).normal(0, 2.0, (len(a), 33, 2))
    if numba_missing(compiled_kernel()):
        pytest.skip("numba is not installed here")
    compiled = overlap_at_shifts(a, b, d, engine="numba", moments=True)
    plain = overlap_at_shifts(a, b, d, moments=True)
    for mine, theirs in zip(compiled, plain):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(compiled[0], overlap_at_shifts(a, b, d, engine="numba"))


def test_centroid_from_shifts_moments_and_smoothing():
    centres = np.array([[[0.0, 0.0], [2.0, 0.0], [9.0, 9.0], [1.0, 3.0]],
                        [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]],
                        [[1.0, 1.0], [np.nan, np.nan], [2.0, 2.0], [3.0, 3.0]]])
    overlaps = np.array([[True, True, False, True], [True, True, True, True], [False, False, False, False]])
    sigma = np.array([1.0, 0.5, 2.0])
    mean, covariance, seen = centroid_from_shifts(np.where(overlaps[..., None], centres, np.nan), overlaps, sigma)
    np.testing.assert_array_equal(seen, [True, True, False])
    points = centres[0, [0, 1, 3]]
    np.testing.assert_allclose(mean[0], points.mean(axis=0))
    np.testing.assert_allclose(covariance[0], np.cov(points.T, bias=True) + np.eye(2) * 1.0 / 3)
    np.testing.assert_allclose(mean[1], [5.0, 5.0])
    np.testing.assert_allclose(covariance[1], np.eye(2) * 0.25 / 4)  # a fixed centroid: the smoothing alone


def test_the_products_sigma_path_centroid_is_the_moment_match_of_the_exact_centroids(monkeypatch):
    model = OverlapModel.load(sigma_path="exact")
    a = np.array([shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10), shapely.Polygon([(0, 0), (8, 0), (4, 6)]),
                  shapely.box(0, 0, 4, 4), shapely.box(0, 0, 4, 4)], dtype=object)
    b = np.array([shapely.box(2, 2, 12, 12), shapely.box(1, 1, 4, 4), shapely.box(1, 1, 7, 3),
                  shapely.box(5.0, 0, 9, 4), shapely.box(40, 0, 44, 4)], dtype=object)
    sigma = np.array([2.0, 1.0, 0.5, 0.2, 0.5])

    def refuse(*args, **kwargs):
        raise AssertionError("the σ > 0 exact path must not compute this")

    # Neither the descriptors (with the sweep) nor the network run for pairs at σ > 0.
    monkeypatch.setattr(scoring, "pair_descriptors", refuse)
    monkeypatch.setattr(encoding, "sweep_summary", refuse)
    monkeypatch.setattr(model.network, "raw", refuse)
    overlap, centroid = model.predict_frames(a, b, sigma)
    assert centroid.n_components == model.network.centroid_components
    np.testing.assert_allclose(centroid.weights[:, 0], 1.0)
    d = sigma[:, None, None] * _standard_shifts(EXACT_SHIFTS)[None]
    geos_area, geos_centre = geos_centroids(a, b, d)
    overlaps = geos_area > 1e-9 * np.minimum(polygon_areas(a), polygon_areas(b))[:, None]
    for i in range(3):  # overlapping pairs: the mean and the (smoothed) covariance of the exact centroids
        points = geos_centre[i, overlaps[i]]
        np.testing.assert_allclose(centroid.mean()[i], points.mean(axis=0), atol=1e-9)
        expected = np.cov(points.T, bias=True) + np.eye(2) * sigma[i] ** 2 / len(points)
        np.testing.assert_allclose(centroid.covariance()[i], expected, atol=1e-9)
    # B inside A (pair 1) moves with the shift; pair 3 is 1 m apart at σ = 0.2 m: no shift reaches, so the centroid
    # sits where an overlap would begin, spread by σ; pair 4 is 36 m apart: it cannot overlap.
    assert not overlaps[3].any()
    assert centroid.mean()[3, 0] == 4.5 and 0.0 <= centroid.mean()[3, 1] <= 4.0  # on the middle of the 1 m gap
    np.testing.assert_allclose(centroid.covariance()[3], np.eye(2) * 0.04)
    summary = summarise_overlap(overlap)
    assert summary.iou_mean[3] == 0.0 and summary.iou_mean[4] == 0.0 and summary.iou_mean[0] > 0.3


def test_mixed_batches_keep_their_rows_and_the_network_path_still_serves():
    model = OverlapModel.load(sigma_path="exact")
    a = np.array([shapely.box(0, 0, 10, 10), shapely.box(0, 0, 8, 6), shapely.box(0, 0, 5, 5)], dtype=object)
    b = np.array([shapely.box(2, 2, 12, 12), shapely.box(1, 1, 9, 7), shapely.box(1, 0, 6, 5)], dtype=object)
    sigma = np.array([0.0, 1.0, 0.0])
    overlap, centroid = model.predict_frames(a, b, sigma)
    still_overlap, still_centroid = model.predict_frames(a[[0, 2]], b[[0, 2]], sigma[[0, 2]])
    moving_overlap, moving_centroid = model.predict_frames(a[[1]], b[[1]], sigma[[1]])
    summary = summarise_overlap(overlap)
    np.testing.assert_array_equal(summary.iou_mean[[0, 2]], summarise_overlap(still_overlap).iou_mean)
    assert summary.iou_mean[1] == summarise_overlap(moving_overlap).iou_mean[0]
    np.testing.assert_array_equal(centroid.means[[0, 2]], still_centroid.means)
    np.testing.assert_array_equal(centroid.means[1], moving_centroid.means[0])
    # σ = 0 keeps the network's centroid (around the exact one); the network path gives its head at σ > 0.
    exact_centroids = shapely.get_coordinates(shapely.centroid(shapely.intersection(a, b)))
    assert np.abs(centroid.mean()[[0, 2]] - exact_centroids[[0, 2]]).max() < 0.5
    network = OverlapModel.load(sigma_path="network")
    _, network_centroid = network.predict_frames(a, b, sigma)
    np.testing.assert_allclose(network_centroid.means[[0, 2]], still_centroid.means)
    assert not np.allclose(network_centroid.means[1], centroid.means[1])
