"""NumPy mixture core against independent references (SciPy is used only here, in tests)."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import integrate, special, stats

from overlap_relevance.model.mixture import (
    RHO_MAX,
    SIGMA_CAP,
    SIGMA_FLOOR,
    GaussianMixture,
    mixture_from_raw,
    raw_from_parameters,
    raw_size,
    rho_from_raw,
    sigma_from_raw,
    sigma_to_raw,
    split_raw,
)
from overlap_relevance.model.quasirandom import scrambled_halton
from overlap_relevance.model.special import bivariate_normal_upper, erfc, ndtr, ndtri


def random_mixture(rng, n=5, k=3, d=2, rho_bound=0.9):
    weights = rng.dirichlet(np.ones(k), size=n)
    means = rng.normal(0.0, 2.0, size=(n, k, d))
    sigmas = rng.uniform(0.3, 2.0, size=(n, k, d))
    rho = rng.uniform(-rho_bound, rho_bound, size=(n, k)) if d == 2 else None
    return GaussianMixture.from_components(np.log(weights), means, sigmas, rho)


def scipy_mixture_pdf(mixture, points):
    """Density of each row's mixture at points (m, n, D), summed component by component."""
    m, n = points.shape[:2]
    density = np.zeros((m, n))
    for row in range(n):
        for comp in range(mixture.n_components):
            w = mixture.weights[row, comp]
            if mixture.n_dims == 1:
                component = stats.norm(mixture.means[row, comp, 0], mixture.sigmas[row, comp, 0])
                density[:, row] += w * component.pdf(points[:, row, 0])
            else:
                component = stats.multivariate_normal(mixture.means[row, comp], mixture.covariances[row, comp])
                density[:, row] += w * component.pdf(points[:, row])
    return density


# --- special functions -----------------------------------------------------------

def test_erfc_ndtr_ndtri_match_scipy():
    x = np.concatenate([np.linspace(-6, 26, 40001), [0.0, 1.5, -1.5, 1e-300]])
    assert np.max(np.abs(erfc(x) / special.erfc(x) - 1)) < 5e-14
    assert erfc(np.inf) == 0.0 and erfc(-np.inf) == 2.0 and np.isnan(erfc(np.nan))
    z = np.linspace(-37, 8, 20001)
    assert np.max(np.abs(ndtr(z) / special.ndtr(z) - 1)) < 1e-12
    p = np.concatenate([10.0 ** -np.linspace(0.5, 300, 400), np.linspace(1e-3, 1 - 1e-3, 999),
                        1 - 10.0 ** -np.linspace(1, 15, 50)])
    reference = special.ndtri(p)
    assert np.max(np.abs(ndtri(p) - reference) / np.maximum(1.0, np.abs(reference))) < 1e-13
    assert ndtri(0.0) == -np.inf and ndtri(1.0) == np.inf and np.isnan(ndtri(1.5))


def test_bivariate_upper_orthant_matches_scipy():
    rng = np.random.default_rng(3)
    cases = 0
    for rho in [-0.9999999, -0.999, -0.96, -0.93, -0.92, -0.5, 0.0, 0.3, 0.9249, 0.9251, 0.99, 0.999999]:
        h = rng.uniform(-4, 4, 12)
        k = np.where(rng.uniform(size=12) < 0.5, h + rng.normal(0, 0.05, 12), rng.uniform(-4, 4, 12))
        # Tolerances through the unfrozen cdf, which takes them on every scipy (a frozen one from 1.11).
        reference = stats.multivariate_normal.cdf(np.stack([-h, -k], axis=1), mean=[0, 0],
                                                  cov=[[1, rho], [rho, 1]], abseps=1e-12, releps=1e-12,
                                                  maxpts=10**7)
        np.testing.assert_allclose(bivariate_normal_upper(h, k, rho), reference, rtol=0, atol=1e-10)
        cases += h.size
    # Independent of SciPy's routine: one-dimensional integral of the conditional.
    for h, k, rho in [(0.3, -0.7, 0.6), (1.2, 0.4, -0.8), (-2.0, 1.0, 0.95), (0.5, 0.5, 0.99)]:
        s = math.sqrt(1 - rho * rho)
        ref, _ = integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.cdf((rho * x - k) / s), h, np.inf,
                                epsabs=1e-14, points=None)
        assert abs(bivariate_normal_upper(h, k, rho) - ref) < 1e-10
    assert bivariate_normal_upper(-np.inf, 0.3, 0.7) == pytest.approx(special.ndtr(-0.3), abs=1e-15)
    assert bivariate_normal_upper(np.inf, 0.3, 0.7) == 0.0


def test_scrambled_halton_is_stratified_and_deterministic():
    points = scrambled_halton(3 ** 5, 3, seed=7)
    assert points.shape == (243, 3) and np.all((points > 0) & (points < 1))
    # base 3: each of the 243 intervals of width 1/243 holds exactly one point
    assert np.array_equal(np.sort(np.floor(points[:, 1] * 243)), np.arange(243))
    points_2 = scrambled_halton(1024, 3, seed=7)
    assert np.array_equal(np.sort(np.floor(points_2[:, 0] * 1024)), np.arange(1024))
    np.testing.assert_array_equal(points_2, scrambled_halton(1024, 3, seed=7))
    assert not np.array_equal(points_2, scrambled_halton(1024, 3, seed=8))


# --- parametrisation ---------------------------------------------------------------

def test_raw_transforms_and_round_trip():
    assert raw_size(3, 1) == 9 and raw_size(3, 2) == 18 and raw_size(1, 2) == 6
    r = np.array([-1e4, -100.0, -30.0, 0.0, 5.0, 30.0, 100.0, 1e4])
    sigma = sigma_from_raw(r)
    assert np.all((sigma >= SIGMA_FLOOR) & (sigma <= SIGMA_CAP)) and np.all(np.diff(sigma) >= 0)
    assert sigma_from_raw(0.0) == pytest.approx(1.0, rel=1e-15)  # since floor * cap == 1
    assert sigma_from_raw(2.0) == pytest.approx(math.exp(2.0), rel=1e-2)
    s = np.geomspace(2 * SIGMA_FLOOR, SIGMA_CAP / 2, 50)
    np.testing.assert_allclose(sigma_from_raw(sigma_to_raw(s)), s, rtol=1e-12)
    assert np.all(np.abs(rho_from_raw([-1e3, 1e3])) <= RHO_MAX)

    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(4), size=6)
    means = rng.normal(size=(6, 4, 2))
    sigmas = rng.uniform(0.1, 3, size=(6, 4, 2))
    rho = rng.uniform(-0.9, 0.9, size=(6, 4))
    raw = raw_from_parameters(weights, means, sigmas, rho)
    assert raw.shape == (6, raw_size(4, 2))
    log_weights, means_back, sigmas_back, rho_back = split_raw(raw, 4, 2)
    np.testing.assert_allclose(np.exp(log_weights), weights, rtol=1e-12)
    np.testing.assert_allclose(means_back, means)
    np.testing.assert_allclose(sigmas_back, sigmas, rtol=1e-12)
    np.testing.assert_allclose(rho_back, rho, rtol=1e-12)
    mixture = mixture_from_raw(raw, 4, 2)
    np.testing.assert_allclose(mixture.covariances[..., 0, 1], rho * sigmas[..., 0] * sigmas[..., 1], rtol=1e-12)
    with pytest.raises(ValueError, match="raw must have shape"):
        mixture_from_raw(raw[:, :-1], 4, 2)
    with pytest.raises(ValueError):
        raw_size(3, 3)


def test_constructor_validation():
    w = np.array([[0.5, 0.5]])
    mu = np.zeros((1, 2, 2))
    cov = np.broadcast_to(np.eye(2), (1, 2, 2, 2)).copy()
    GaussianMixture(w, mu, cov)
    with pytest.raises(ValueError, match="weights must have shape"):
        GaussianMixture(w[0], mu, cov)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(w * 2, mu, cov)
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(np.array([[1.5, -0.5]]), mu, cov)
    with pytest.raises(ValueError, match="means must have shape"):
        GaussianMixture(w, mu[:, :1], cov)
    with pytest.raises(ValueError, match="D must be one of"):
        GaussianMixture(w, np.zeros((1, 2, 3)), np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="covariances must have shape"):
        GaussianMixture(w, mu, cov[..., :1])
    bad = cov.copy()
    bad[..., 0, 1] = bad[..., 1, 0] = 1.0
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(w, mu, bad)
    asym = cov.copy()
    asym[..., 0, 1] = 0.3
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture(w, mu, asym)
    mixture = GaussianMixture(w, mu, cov)
    with pytest.raises(ValueError, match="2D points"):
        mixture.log_prob(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="1D mixture"):
        mixture.cdf(np.zeros((1, 2)))


def test_numpy_side_imports_without_tensorflow():
    code = textwrap.dedent("""
        import sys
        sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
        sys.modules["keras"] = None
        import overlap_relevance.model.mixture
        import overlap_relevance.model.training
        assert "qgis" not in sys.modules and "scipy" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- densities -------------------------------------------------------------------------

def test_log_prob_matches_scipy_1d():
    rng = np.random.default_rng(1)
    mixture = random_mixture(rng, n=6, k=3, d=1)
    points = rng.normal(0, 3, size=(7, 6, 1))
    expected = np.log(scipy_mixture_pdf(mixture, points))
    np.testing.assert_allclose(mixture.log_prob(points), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mixture.log_prob(points[..., 0]), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mixture.log_prob(points[0, :, 0]), expected[0], rtol=1e-12)
    np.testing.assert_allclose(mixture.log_prob(points[0]), expected[0], rtol=1e-12)
    assert mixture.log_prob(0.3).shape == (6,)


def test_log_prob_matches_scipy_2d_with_correlation():
    rng = np.random.default_rng(2)
    mixture = random_mixture(rng, n=5, k=4, d=2, rho_bound=0.95)
    assert np.any(np.abs(mixture.rho) > 0.5)
    points = rng.normal(0, 3, size=(9, 5, 2))
    expected = np.log(scipy_mixture_pdf(mixture, points))
    np.testing.assert_allclose(mixture.log_prob(points), expected, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(mixture.log_prob(points[3]), expected[3], rtol=1e-11)
    # one point broadcast to every row
    np.testing.assert_allclose(mixture.log_prob(points[3, :1]), mixture.log_prob(np.repeat(points[3, :1], 5, 0)))
    # same mixture given by covariance matrices
    again = GaussianMixture(mixture.weights, mixture.means, mixture.covariances)
    np.testing.assert_allclose(again.log_prob(points), expected, rtol=1e-11, atol=1e-11)


def test_log_prob_is_finite_at_extremes():
    k, d = 3, 2
    raw = np.zeros((2, raw_size(k, d)))
    raw[:, :k] = [100.0, -100.0, 0.0]  # logits
    raw[:, k + k * d:k + 2 * k * d] = -60.0  # sigmas at the floor
    raw[:, k + 2 * k * d:] = 30.0  # rho at RHO_MAX
    mixture = mixture_from_raw(raw, k, d)
    assert np.allclose(mixture.sigmas, SIGMA_FLOOR)
    value = mixture.log_prob(np.full((2, 2), 1e4))
    assert np.all(np.isfinite(value)) and np.all(value < -1e12)
    assert np.all(np.isfinite(mixture.log_prob(np.zeros((2, 2)))))
    # a component with weight exp(-200) still counts where it dominates
    far = mixture_from_raw(np.array([[100.0, -100.0, 0, 50, 0, 0]]), 2, 1)
    assert np.isfinite(far.log_prob([50.0]))[0]
    assert far.log_prob([50.0])[0] == pytest.approx(-200 - 0.5 * math.log(2 * math.pi), abs=1e-9)


def test_identical_components_equal_one_component():
    rng = np.random.default_rng(4)
    for d in (1, 2):
        single = random_mixture(rng, n=4, k=1, d=d)
        k = 5
        weights = rng.dirichlet(np.ones(k), size=4)
        repeated = GaussianMixture(weights, np.repeat(single.means, k, axis=1),
                                   np.repeat(single.covariances, k, axis=1))
        points = rng.normal(size=(6, 4, d))
        np.testing.assert_allclose(repeated.log_prob(points), single.log_prob(points), rtol=1e-12)
        np.testing.assert_allclose(repeated.mean(), single.mean(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(repeated.covariance(), single.covariance(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(repeated.mode(), single.means[:, 0], rtol=1e-9, atol=1e-9)
        if d == 1:
            np.testing.assert_allclose(repeated.cdf(points), single.cdf(points), rtol=1e-12)
            np.testing.assert_allclose(repeated.quantile(0.3), single.quantile(0.3), rtol=1e-10)
            np.testing.assert_allclose(repeated.crps(points[..., 0]), single.crps(points[..., 0]), rtol=1e-12)
        else:
            np.testing.assert_allclose(repeated.prob_upper_orthant(0.2, -0.1),
                                       single.prob_upper_orthant(0.2, -0.1), rtol=1e-12)


# --- moments, sampling, mode -----------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2])
def test_sample_moments_match_mean_and_covariance(d):
    rng = np.random.default_rng(5)
    mixture = random_mixture(rng, n=4, k=3, d=d)
    samples = mixture.sample(100_000, rng=123)
    assert samples.shape == (100_000, 4, d)
    scale = np.sqrt(np.diagonal(mixture.covariance(), axis1=1, axis2=2))  # (n, D)
    np.testing.assert_array_less(np.abs(samples.mean(axis=0) - mixture.mean()), 0.02 * scale)
    centred = samples - samples.mean(axis=0)
    empirical = np.einsum("mni,mnj->nij", centred, centred) / samples.shape[0]
    np.testing.assert_allclose(empirical, mixture.covariance(), atol=0.03 * np.max(scale) ** 2)
    np.testing.assert_array_equal(samples[:10], mixture.sample(100_000, rng=123)[:10])  # seeded


@pytest.mark.parametrize("d", [1, 2])
def test_quasi_samples_reproduce_moments(d):
    rng = np.random.default_rng(12)
    mixture = random_mixture(rng, n=4, k=3, d=d)
    points = mixture.quasi_samples(4096, seed=1)
    assert points.shape == (4096, 4, d)
    np.testing.assert_array_equal(points, mixture.quasi_samples(4096, seed=1))
    scale = np.sqrt(np.diagonal(mixture.covariance(), axis1=1, axis2=2))
    # 4096 plain samples would give ~1.6 % of the scale; QMC does much better
    np.testing.assert_array_less(np.abs(points.mean(axis=0) - mixture.mean()), 0.005 * scale)
    centred = points - mixture.mean()
    np.testing.assert_allclose(np.einsum("mni,mnj->nij", centred, centred) / 4096, mixture.covariance(),
                               atol=0.02 * np.max(scale) ** 2)


def test_sample_temperature_semantics():
    weights = np.array([[0.7, 0.3]])
    means = np.array([[[0.0, 0.0], [10.0, 5.0]]])
    mixture = GaussianMixture.from_components(np.log(weights), means, np.ones((1, 2, 2)), np.array([[0.5, -0.5]]))
    np.testing.assert_array_equal(mixture.sample(3, temperature=0.0), np.zeros((3, 1, 2)))
    cold = mixture.sample(200_000, rng=0, temperature=0.25)
    far = cold[:, 0, 0] > 5
    # weights become w^(1/tau) normalised: 0.3^4 / (0.7^4 + 0.3^4)
    assert far.mean() == pytest.approx(0.3 ** 4 / (0.7 ** 4 + 0.3 ** 4), abs=0.003)
    # and each component's covariance is scaled by tau
    assert cold[~far, 0, 0].std() == pytest.approx(0.5, rel=0.02)
    hot = mixture.sample(200_000, rng=0, temperature=1.0)
    assert (hot[:, 0, 0] > 5).mean() == pytest.approx(0.3, abs=0.005)


def test_mode_1d_matches_grid_search():
    rng = np.random.default_rng(6)
    mixture = random_mixture(rng, n=8, k=4, d=1)
    grid = np.linspace(-12, 12, 240_001)
    density = mixture.log_prob(np.broadcast_to(grid[:, None], (grid.size, 8)))
    grid_mode = grid[np.argmax(density, axis=0)]
    np.testing.assert_allclose(mixture.mode()[:, 0], grid_mode, atol=2e-4)


def test_mode_2d_is_the_global_maximum():
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    mixture = random_mixture(rng, n=5, k=3, d=2, rho_bound=0.95)
    mode = mixture.mode()
    axis = np.linspace(-9, 9, 361)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 1, 2)
    density = mixture.log_prob(np.broadcast_to(grid, (grid.shape[0], 5, 2)))
    for row in range(5):
        start = grid[np.argmax(density[:, row]), 0]
        best = minimize(lambda p: -mixture[row].log_prob(p[None, :])[0], start, method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000}).x
        np.testing.assert_allclose(mode[row], best, atol=1e-5)
    # unequal bimodal: the heavier mode wins even though it starts second
    bimodal = GaussianMixture(np.array([[0.4, 0.6]]), np.array([[[0.0], [6.0]]]), np.ones((1, 2, 1, 1)))
    assert bimodal.mode()[0, 0] == pytest.approx(6.0, abs=1e-3)


# --- 1D: CDF, quantile, CRPS -------------------------------------------------------------------

def test_cdf_and_quantile_round_trip():
    rng = np.random.default_rng(8)
    mixture = random_mixture(rng, n=6, k=3, d=1)
    x = rng.normal(0, 3, size=(50, 6))
    expected = np.zeros_like(x)
    for comp in range(3):
        expected += mixture.weights[:, comp] * stats.norm.cdf(x, mixture.means[:, comp, 0], mixture.sigmas[:, comp, 0])
    np.testing.assert_allclose(mixture.cdf(x), expected, rtol=1e-12, atol=1e-15)
    scale = np.sqrt(mixture.covariance()[:, 0, 0])
    # where the CDF is not rounded to 1, the round trip is exact to 1e-8 of the scale
    x = np.where(mixture.cdf(x) < 1 - 1e-6, x, 0.0)
    np.testing.assert_allclose(mixture.quantile(mixture.cdf(x)), x, rtol=0, atol=1e-8 * np.min(scale))
    q = np.array([1e-12, 1e-4, 0.05, 0.5, 0.95, 0.9999])[:, None]
    quantiles = mixture.quantile(q)
    assert quantiles.shape == (6, 6)
    np.testing.assert_allclose(mixture.cdf(quantiles), np.broadcast_to(q, (6, 6)), rtol=1e-9)
    assert np.all(np.isneginf(mixture.quantile(0.0))) and np.all(np.isposinf(mixture.quantile(1.0)))
    with pytest.raises(ValueError):
        mixture.quantile(1.2)


def test_quantile_of_well_separated_components():
    # Two narrow components far apart: the CDF is flat between them; Newton alone would fail.
    mixture = GaussianMixture.from_components(np.log([[0.5, 0.5]]), np.array([[[-1000.0], [1000.0]]]),
                                              np.full((1, 2, 1), 1e-3))
    assert mixture.quantile(0.125)[0] == pytest.approx(-1000 - 1e-3 * 0.6744897501960817, abs=1e-9)
    assert mixture.quantile(0.875)[0] == pytest.approx(1000 + 1e-3 * 0.6744897501960817, abs=1e-9)
    assert mixture.quantile(0.25)[0] == pytest.approx(-1000.0, abs=1e-9)
    assert abs(mixture.quantile(0.5)[0]) < 1000


def test_crps_matches_numerical_integral_and_monte_carlo():
    rng = np.random.default_rng(9)
    mixture = random_mixture(rng, n=3, k=3, d=1)
    y = np.array([0.3, -2.0, 4.0])
    crps = mixture.crps(y)
    for row in range(3):
        single = mixture[row]

        def squared_gap(t, row=row):
            return (single.cdf(np.array([t]))[0] - (t >= y[row])) ** 2

        reference = sum(integrate.quad(squared_gap, a, b, epsabs=1e-12, limit=200)[0]
                        for a, b in [(-np.inf, y[row]), (y[row], np.inf)])
        assert crps[row] == pytest.approx(reference, abs=1e-8)
    # CRPS = E|X - y| - E|X - X'| / 2
    draws = mixture.sample(400_000, rng=1)[..., 0]
    monte_carlo = np.abs(draws - y).mean(0) - 0.5 * np.abs(draws[::2] - draws[1::2]).mean(0)
    np.testing.assert_allclose(crps, monte_carlo, atol=0.01)
    assert mixture.crps(np.stack([y, y])).shape == (2, 3)


# --- 2D: orthants, regions, ellipses, energy score ----------------------------------------------------

def test_upper_orthant_matches_scipy_and_monte_carlo():
    rng = np.random.default_rng(10)
    mixture = random_mixture(rng, n=4, k=3, d=2, rho_bound=0.97)
    a = rng.normal(0, 1.5, 4)
    b = rng.normal(0, 1.5, 4)
    expected = np.zeros(4)
    for row in range(4):
        for comp in range(3):
            # P(X >= a, Y >= b) = P(-X <= -a, -Y <= -b)
            expected[row] += mixture.weights[row, comp] * stats.multivariate_normal.cdf(
                [-a[row], -b[row]], mean=-mixture.means[row, comp], cov=mixture.covariances[row, comp],
                abseps=1e-12, releps=1e-12, maxpts=10**7)
    np.testing.assert_allclose(mixture.prob_upper_orthant(a, b), expected, atol=1e-10)
    samples = mixture.sample(200_000, rng=2)
    empirical = np.mean((samples[..., 0] >= a) & (samples[..., 1] >= b), axis=0)
    np.testing.assert_allclose(mixture.prob_upper_orthant(a, b), empirical, atol=0.004)
    assert mixture.prob_upper_orthant(np.stack([a, a]), np.stack([b, b])).shape == (2, 4)
    np.testing.assert_allclose(mixture.prob_upper_orthant(-np.inf, -np.inf), 1.0)


def test_region_probability_matches_monte_carlo_and_is_deterministic():
    rng = np.random.default_rng(11)
    mixture = random_mixture(rng, n=4, k=3, d=2, rho_bound=0.9)
    radius = np.array([1.0, 2.0, 3.0, 1.5])

    def inside_disc(x, y):  # g >= 0 inside a disc of per-row radius around (0.5, -0.5)
        return radius ** 2 - (x - 0.5) ** 2 - (y + 0.5) ** 2

    qmc = mixture.prob_region(inside_disc, 0.0, m=4096, seed=3)
    samples = mixture.sample(400_000, rng=4)
    monte_carlo = np.mean(inside_disc(samples[..., 0], samples[..., 1]) >= 0, axis=0)
    np.testing.assert_allclose(qmc, monte_carlo, atol=0.01)
    np.testing.assert_array_equal(qmc, mixture.prob_region(inside_disc, 0.0, m=4096, seed=3))
    # an orthant written as a region agrees with the exact orthant probability
    a, b = 0.2, -0.4
    orthant = mixture.prob_region(lambda x, y: np.minimum(x - a, y - b), 0.0, m=8192, seed=5)
    np.testing.assert_allclose(orthant, mixture.prob_upper_orthant(a, b), atol=0.005)
    # per-row thresholds
    line = mixture.prob_region(lambda x, y: x + y, np.array([0.0, 1.0, -1.0, 2.0]), m=4096, seed=1)
    np.testing.assert_allclose(line, np.mean(samples.sum(-1) >= [0.0, 1.0, -1.0, 2.0], axis=0), atol=0.01)


def test_ellipse_coverage_is_the_level():
    from matplotlib.path import Path

    mixture = GaussianMixture.from_components(np.log([[0.5, 0.5]]), np.array([[[1.0, -2.0], [5.0, 5.0]]]),
                                              np.array([[[2.0, 0.5], [1.0, 1.0]]]), np.array([[0.8, 0.0]]))
    vertices = mixture.ellipses(level=0.9, n_vertices=512)
    assert vertices.shape == (1, 2, 512, 2)
    component = GaussianMixture(np.ones((1, 1)), mixture.means[:, :1], mixture.covariances[:, :1])
    samples = component.sample(100_000, rng=0)[:, 0]
    share = Path(vertices[0, 0]).contains_points(samples).mean()
    assert share == pytest.approx(0.9, abs=0.006)
    semi_major, semi_minor, angle = mixture.ellipse_axes(0.9)
    eigenvalues = np.linalg.eigvalsh(mixture.covariances[0, 0])
    radius = math.sqrt(stats.chi2(2).ppf(0.9))
    assert semi_major[0, 0] == pytest.approx(radius * math.sqrt(eigenvalues[1]), rel=1e-12)
    assert semi_minor[0, 0] == pytest.approx(radius * math.sqrt(eigenvalues[0]), rel=1e-12)
    major_direction = np.linalg.eigh(mixture.covariances[0, 0])[1][:, 1]
    assert abs(abs(np.dot(major_direction, [math.cos(angle[0, 0]), math.sin(angle[0, 0])])) - 1) < 1e-12
    assert semi_major[0, 1] == pytest.approx(radius) and semi_minor[0, 1] == pytest.approx(radius)
    with pytest.raises(ValueError):
        mixture.ellipses(level=1.0)


def test_energy_score_of_standard_normal():
    mixture = GaussianMixture(np.ones((2, 1)), np.zeros((2, 1, 2)), np.broadcast_to(np.eye(2), (2, 1, 2, 2)))
    # E||Z|| = sqrt(pi/2) and E||Z - Z'|| = sqrt(pi) for standard bivariate normals
    expected_at_mean = math.sqrt(math.pi / 2) - 0.5 * math.sqrt(math.pi)
    score = mixture.energy_score(np.zeros((2, 2)), m=200_000, rng=0)
    np.testing.assert_allclose(score, expected_at_mean, atol=0.005)
    np.testing.assert_array_equal(score, mixture.energy_score(np.zeros((2, 2)), m=200_000, rng=0))
    far = mixture.energy_score(np.array([[10.0, 0.0], [0.0, -10.0]]), m=20_000, rng=0)
    # E||Z - y|| ~= |y| + 1 / (2 |y|) for |y| = 10 (the orthogonal coordinate adds variance 1)
    np.testing.assert_allclose(far, 10.05 - 0.5 * math.sqrt(math.pi), atol=0.03)
