"""Prediction.iou_quantile and the cover quantiles: shape, monotone in the level, agreement with sampling
from the mixture, and the exact overlap at σ = 0."""

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from overlap_relevance.model import load_model
from overlap_relevance.model.mixture import GaussianMixture
from overlap_relevance.model.scoring import cover_quantiles, iou_from_covers, iou_quantiles

LEVELS = np.array([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])


def mixtures(n=40, seed=0):
    rng = np.random.default_rng(seed)
    log_weights = np.log(rng.dirichlet(np.ones(3), n))
    means = rng.uniform(-0.1, 1.1, (n, 3, 2))
    sigmas = rng.uniform(0.01, 0.3, (n, 3, 2))
    rho = rng.uniform(-0.9, 0.9, (n, 3))
    return GaussianMixture.from_components(log_weights, means, sigmas, rho)


def test_shapes_bounds_and_monotone():
    overlap = mixtures()
    for q in (iou_quantiles(overlap, LEVELS), cover_quantiles(overlap, LEVELS, 0), cover_quantiles(overlap, LEVELS, 1)):
        assert q.shape == (40, LEVELS.size)
        assert np.all((q >= 0) & (q <= 1)) and np.all(np.diff(q, axis=1) >= 0)
    with pytest.raises(ValueError):
        iou_quantiles(overlap, [0.5, 1.5])


def test_quantiles_match_sampling_from_the_mixture():
    overlap = mixtures(20, seed=1)
    draws = overlap.sample(40_000, np.random.default_rng(2))  # (m, n, 2)
    levels = LEVELS[1:-1]
    covers = np.clip(draws, 0, 1)
    iou = iou_from_covers(draws[..., 0], draws[..., 1])
    for mine, sample in ((iou_quantiles(overlap, levels), iou), (cover_quantiles(overlap, levels, 0), covers[..., 0]),
                         (cover_quantiles(overlap, levels, 1), covers[..., 1])):
        # The share of draws at or below each quantile is its level (within the sampling error of 40,000
        # draws, SE ≤ 0.0025, and of the 4,096 QMC points), except at the atoms 0 and 1 the clipping makes.
        share = np.mean(sample <= mine.T[:, None, :], axis=1).T
        inside = (mine > 0) & (mine < 1)
        assert inside.sum() > 50 and np.max(np.abs(share - levels)[inside]) < 0.012
        below = np.mean(sample < mine.T[:, None, :], axis=1).T  # at an atom, the level lies inside its jump
        assert np.all((below <= levels + 0.012) & (share >= levels - 0.012))


def utm_squares(offsets, size=20.0):
    a = np.array([shapely.box(500000, 5000000, 500000 + size, 5000000 + size)] * len(offsets))
    b = np.array([shapely.box(500000 + dx, 5000000, 500000 + dx + size, 5000000 + size) for dx in offsets])
    return a, b


def test_prediction_quantiles_at_sigma_zero_are_the_exact_overlap():
    a, b = utm_squares([0.0, 5.0, 10.0, 30.0])
    prediction = load_model().predict(a, b, "EPSG:32633", sigma=0.0)
    exact_cover = np.array([1.0, 0.75, 0.5, 0.0])
    exact_iou = exact_cover / (2 - exact_cover)
    q = prediction.iou_quantile(LEVELS[1:-1])
    assert q.shape == (4, 5)
    np.testing.assert_allclose(q, np.repeat(exact_iou[:, None], 5, 1), atol=1e-6)
    np.testing.assert_allclose(prediction.cover_a_quantile([0.1, 0.9]), np.repeat(exact_cover[:, None], 2, 1),
                               atol=1e-6)
    np.testing.assert_allclose(prediction.cover_b_quantile(0.5)[:, 0], exact_cover, atol=1e-6)
    moving = load_model().predict(a, b, "EPSG:32633", sigma=2.0)
    assert np.all(np.diff(moving.iou_quantile(LEVELS), axis=1) >= 0)
    assert Transformer  # the API takes any CRS pyproj knows
