"""model/special.py against SciPy (SciPy is only needed here, never in the plugin)."""

import numpy as np
import pytest

from overlap_relevance.model.special import normal_cdf, normal_pdf, normal_sf, owens_t

special = pytest.importorskip("scipy.special")


def test_owens_t_matches_scipy_over_the_plane():
    rng = np.random.default_rng(5)
    h = np.concatenate([rng.uniform(-12, 12, 4000), rng.exponential(1.0, 4000), [0.0, 0.0, 1e-9, 3.0, 40.0]])
    a = np.concatenate([3 * rng.standard_cauchy(4000), rng.uniform(-1, 1, 4000), [1e9, np.inf, 1e12, -np.inf, 2.0]])
    assert np.max(np.abs(owens_t(h, a) - special.owens_t(h, a))) < 1e-15


def test_owens_t_symmetries_and_limits():
    h = np.linspace(-5, 5, 41)
    assert np.allclose(owens_t(h, 2.5), owens_t(-h, 2.5), atol=0, rtol=0)
    assert np.allclose(owens_t(h, -0.7), -owens_t(h, 0.7), atol=0, rtol=0)
    assert np.allclose(owens_t(h, np.inf), 0.5 * normal_sf(np.abs(h)), atol=1e-16)
    assert np.allclose(owens_t(0.0, np.array([0.3, 1.0, 4.0])), np.arctan([0.3, 1.0, 4.0]) / (2 * np.pi), atol=1e-16)


def test_normal_functions_match_scipy():
    z = np.linspace(-37, 37, 2001)
    reference = special.ndtr(z)
    assert np.max(np.abs(normal_cdf(z) - reference) / reference) < 1e-9
    assert np.max(np.abs(normal_sf(z) - special.ndtr(-z)) / special.ndtr(-z)) < 1e-9
    assert np.allclose(normal_pdf(z), np.exp(-z * z / 2) / np.sqrt(2 * np.pi), rtol=1e-15, atol=0)
