"""The u-head's distribution (model/overlap_head.py): exact summaries against draws, the atoms, the maps
to covers and IoU, the scores, and a model file with this head through OverlapModel (issue 29)."""

import json

import numpy as np
import pytest
import shapely

from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.network import ModelFileError, save_model_file
from overlap_relevance.model.overlap_head import (
    UnitMixture, area_scales, crps_from_quantiles, crps_of_samples, expit, iou_of_unit, mixed_nll, raw_size,
    unit_of_covers, unit_of_iou)
from overlap_relevance.model.scoring import OverlapModel, iou_from_covers, iou_quantiles, summarise_overlap


def _mixture(seed=0):
    rng = np.random.default_rng(seed)
    n, k = 6, 3
    p0 = np.array([0.1, 0.0, 0.3, 0.0, 1.0, 0.05])
    p1 = np.array([0.2, 0.0, 0.1, 1.0, 0.0, 0.0])
    weights = rng.dirichlet(np.ones(k), size=n)
    return UnitMixture(p0, p1, np.log(weights), rng.normal(size=(n, k)), np.exp(0.6 * rng.normal(size=(n, k))),
                       np.array([1.0, 0.5, 1.0, 1.0, 1.0, 0.2]), np.array([0.3, 1.0, 1.0, 0.2, 1.0, 1.0]))


def _draws(mixture, count, seed=1):
    """(n, count) u drawn from each row: atom, or a component, then expit of its normal."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(mixture), count))
    for i in range(len(mixture)):
        c = rng.random(count)
        weights = np.exp(mixture.log_weights[i])
        k = rng.choice(len(weights), size=count, p=weights / weights.sum())
        z = rng.normal(mixture.means[i, k], mixture.sigmas[i, k])
        inner = (c >= mixture.p0[i]) & (c < mixture.p0[i] + mixture.continuous[i])
        out[i] = np.where(c < mixture.p0[i], 0.0, np.where(inner, expit(z), 1.0))
    return out


def test_summaries_cdf_and_quantiles_agree_with_draws():
    mixture = _mixture()
    u = _draws(mixture, 200_000)
    iou = iou_of_unit(u, mixture.ratio[:, None])
    first, second = mixture.iou_moments()
    np.testing.assert_allclose(first, iou.mean(axis=1), atol=2.5e-3)
    np.testing.assert_allclose(np.sqrt(second - first**2), iou.std(axis=1), atol=2.5e-3)
    np.testing.assert_allclose(mixture.mean(), u.mean(axis=1), atol=2.5e-3)
    for t in (0.05, 0.3, 0.5):
        np.testing.assert_allclose(mixture.p_iou_at_least(t), (iou >= t).mean(axis=1), atol=4e-3)
    for c in (0.2, 0.7):
        np.testing.assert_allclose(mixture.cdf(np.array([c]))[:, 0], (u <= c).mean(axis=1), atol=4e-3)
    levels = np.array([0.02, 0.25, 0.5, 0.9, 0.99])
    quantiles = mixture.quantile(levels)
    # The share of draws at or below each quantile is the level (up to the atoms' jumps).
    share = (u[:, None, :] <= quantiles[:, :, None] + 1e-12).mean(axis=2)
    assert np.all(share >= levels - 4e-3)
    strictly_below = (u[:, None, :] < quantiles[:, :, None] - 1e-12).mean(axis=2)
    assert np.all(strictly_below <= levels + 4e-3)
    assert np.all(np.diff(quantiles, axis=1) >= 0)


def test_atoms_and_edges_are_exact():
    mixture = _mixture()
    # Row 3 is all at u = 1, row 4 all at u = 0.
    np.testing.assert_array_equal(mixture.quantile([0.0, 0.5, 1.0])[3], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(mixture.quantile([0.0, 0.5, 1.0])[4], [0.0, 0.0, 0.0])
    assert mixture.p_iou_at_least(0.5)[4] == 0.0 and mixture.p_iou_at_least(0.0)[4] == 1.0
    # Row 3: u = 1 means IoU = r = 0.2 exactly; P(IoU >= 0.2) = 1, P(IoU >= 0.21) = 0.
    assert mixture.p_iou_at_least(0.2)[3] == pytest.approx(1.0) and mixture.p_iou_at_least(0.21)[3] == 0.0
    # Row 0: P(IoU >= r) is the atom at 1; below the atom at 0's mass the quantile is 0.
    assert mixture.p_iou_at_least(mixture.ratio[0])[0] == pytest.approx(mixture.p1[0], abs=1e-12)
    assert mixture.quantile([0.05])[0, 0] == 0.0 and mixture.quantile([0.85])[0, 0] == 1.0
    np.testing.assert_allclose(mixture.cdf(np.array([0.0, 1.0])), np.c_[mixture.p0, np.ones(6)], atol=1e-12)


def test_maps_to_covers_and_iou_are_those_of_the_intersection():
    rng = np.random.default_rng(3)
    area_a, area_b = rng.uniform(1, 100, 500), rng.uniform(1, 100, 500)
    inter = rng.uniform(0, 1, 500) * np.minimum(area_a, area_b)
    cover_a, cover_b = inter / area_a, inter / area_b
    u = unit_of_covers(cover_a, cover_b)
    np.testing.assert_allclose(u, inter / np.minimum(area_a, area_b), rtol=1e-12)
    scale_a, scale_b = area_scales(area_a, area_b)
    np.testing.assert_allclose(u * scale_a, cover_a, rtol=1e-12)
    np.testing.assert_allclose(u * scale_b, cover_b, rtol=1e-12)
    np.testing.assert_allclose(iou_of_unit(u, scale_a * scale_b), iou_from_covers(cover_a, cover_b), rtol=1e-12)
    np.testing.assert_allclose(unit_of_iou(iou_of_unit(u, scale_a * scale_b), scale_a * scale_b), u, atol=1e-12)


def test_point_masses_give_the_exact_values():
    u = np.array([0.0, 0.25, 0.999999, 1.0])
    scale_a, scale_b = np.array([1.0, 0.4, 1.0, 0.5]), np.array([0.7, 1.0, 0.1, 1.0])
    point = UnitMixture.point(u, scale_a, scale_b, n_components=3)
    summary = summarise_overlap(point, 0.2)
    exact_iou = iou_of_unit(u, scale_a * scale_b)
    np.testing.assert_allclose(summary.iou_mean, exact_iou, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(summary.iou_sd, 0.0, atol=1e-9)
    np.testing.assert_allclose(summary.cover_a_mean, u * scale_a, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(summary.p_iou, exact_iou >= 0.2)
    # Quantiles come from a bisection on the logit scale: exact to its resolution (about 1e-13 here).
    np.testing.assert_allclose(iou_quantiles(point, [0.05, 0.5, 0.95]), np.repeat(exact_iou[:, None], 3, axis=1),
                               rtol=1e-9, atol=1e-15)



def test_a_point_within_the_atom_tolerance_of_0_or_1_is_the_atom_and_has_the_labels_likelihood():
    u = np.array([1.0 - 2e-16, 1e-12, 0.5])
    point = UnitMixture.point(u, np.ones(3), np.ones(3), n_components=2)
    np.testing.assert_array_equal(point.p1, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(point.p0, [0.0, 1.0, 0.0])
    log_likelihood = point.log_prob_unit(u[:, None])[:, 0]
    np.testing.assert_array_equal(log_likelihood[:2], 0.0)  # the label is the atom, of mass 1
    assert np.isfinite(log_likelihood[2])

def test_crps_matches_the_sample_crps_and_the_quantile_form():
    mixture = _mixture(5)
    u = _draws(mixture, 60_000, seed=7)
    iou = iou_of_unit(u, mixture.ratio[:, None])
    observed = iou[:, :30]
    tau = (np.arange(4096) + 0.5) / 4096
    quantile_form = crps_from_quantiles(mixture.iou_quantile(tau), tau, observed)
    np.testing.assert_allclose(mixture.crps_iou(observed), quantile_form, atol=2e-5)
    np.testing.assert_allclose(mixture.crps_iou(observed), crps_of_samples(iou[:, 30:], observed), atol=1.5e-3)


def test_mixed_likelihood_is_a_probability_over_atoms_and_density():
    mixture = _mixture(2)
    u = np.linspace(1e-7, 1 - 1e-7, 400_001)
    density = np.exp(mixture.log_prob_unit(np.broadcast_to(u, (len(mixture), len(u))).copy()))
    total = np.trapz(density, u, axis=1) + mixture.p0 + mixture.p1
    np.testing.assert_allclose(total, 1.0, atol=2e-3)
    atoms = np.exp(mixture.log_prob_unit(np.tile([0.0, 1.0], (len(mixture), 1))))
    np.testing.assert_allclose(atoms, np.c_[mixture.p0, mixture.p1])
    # A sharper correct forecast scores better than a flat one.
    draws = _draws(mixture, 2000)
    flat = UnitMixture(np.full(6, 1 / 3), np.full(6, 1 / 3), np.zeros((6, 1)), np.zeros((6, 1)), np.full((6, 1), 3.0),
                       mixture.scale_a, mixture.scale_b)
    assert np.all(mixed_nll(draws, mixture) < mixed_nll(draws, flat))


def test_from_raw_follows_the_layout():
    k = 2
    raw = np.array([[0.0, np.log(2.0), np.log(3.0), 0.0, 0.0, 0.5, -0.5, 0.0, np.log(2.0)]])
    assert raw.shape[1] == raw_size(k)
    mixture = UnitMixture.from_raw(raw, k, np.array([1.0]), np.ones(1), np.ones(1))
    np.testing.assert_allclose([mixture.p0[0], mixture.p1[0], mixture.continuous[0]], [1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_allclose(np.exp(mixture.log_weights[0]), [0.5, 0.5])
    np.testing.assert_allclose(mixture.means[0], [1.5, 0.5])
    np.testing.assert_allclose(mixture.sigmas[0], [1.0, 2.0], rtol=2e-3)  # the soft floor/cap moves them a little
    with pytest.raises(ValueError):
        UnitMixture.from_raw(raw[:, :-1], k, np.array([1.0]), np.ones(1), np.ones(1))


def _unit_model_file(path, k=3, seed=0, head_size=None):
    """A model file with the u-head and random weights (the format, not a trained model)."""
    rng = np.random.default_rng(seed)
    n = len(DESCRIPTOR_NAMES)
    weights = {"input_mean": np.zeros(n, np.float32), "input_std": np.ones(n, np.float32),
               "trunk_0_kernel": (0.1 * rng.normal(size=(n, 8))).astype(np.float32),
               "trunk_0_bias": np.zeros(8, np.float32),
               "overlap_kernel": (0.1 * rng.normal(size=(8, head_size or raw_size(k)))).astype(np.float32),
               "overlap_bias": np.zeros(head_size or raw_size(k), np.float32),
               "centroid_kernel": (0.1 * rng.normal(size=(8, 6 * k))).astype(np.float32),
               "centroid_bias": np.zeros(6 * k, np.float32)}
    config = {"network": {"inputs": list(DESCRIPTOR_NAMES), "activation": "relu", "n_trunk": 1, "hidden": [8],
                          "overlap_components": k, "centroid_components": k,
                          "residual_means": ["sweep_cover_a", "sweep_cover_b"], "overlap_head": "unit_atoms"}}
    save_model_file(path, config, weights)
    return path


def test_a_unit_head_model_predicts_exactly_at_sigma_zero_and_coherently_above(tmp_path):
    model = OverlapModel.load(_unit_model_file(tmp_path / "unit.npz"))
    a = np.array([shapely.box(0, 0, 10, 10)] * 4)
    b = np.array([shapely.box(2, 2, 12, 12), shapely.box(1, 1, 4, 4), shapely.box(30, 0, 40, 10),
                  shapely.box(-5, -5, 15, 15)])
    overlap, _ = model.predict_frames(a, b, np.zeros(4))
    assert isinstance(overlap, UnitMixture)
    summary = summarise_overlap(overlap)
    np.testing.assert_allclose(summary.iou_mean, [64 / 136, 9 / 100, 0.0, 100 / 400], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(summary.cover_a_mean, [0.64, 0.09, 0.0, 1.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(summary.cover_b_mean, [0.64, 1.0, 0.0, 0.25], rtol=1e-12, atol=1e-15)
    overlap, _ = model.predict_frames(a, b, np.full(4, 2.0))
    summary = summarise_overlap(overlap)
    assert summary.iou_mean[2] == 0.0  # 20 m apart at σ = 2 m: 10σ, zero for certain
    q = iou_quantiles(overlap, [0.05, 0.5, 0.95])
    assert np.all(np.diff(q, axis=1) >= 0) and np.all((q >= 0) & (q <= 1))
    # cover_b = u · min / |B|: quantiles and means are those of u, scaled.
    np.testing.assert_allclose(summary.cover_b_mean[3], overlap.mean()[3] * 0.25, rtol=1e-12)
    prediction = model.predict(a, b, "EPSG:3857", sigma=2.0)
    np.testing.assert_allclose(prediction.iou_quantile([0.5]).shape, (4, 1))
    assert prediction.cover_b_quantile([0.1, 0.9]).shape == (4, 2)


def test_a_unit_head_model_file_with_the_wrong_head_size_is_refused(tmp_path):
    path = _unit_model_file(tmp_path / "bad.npz", head_size=raw_size(3) + 1)
    with pytest.raises(ModelFileError, match="overlap_kernel"):
        OverlapModel.load(path)
    path = _unit_model_file(tmp_path / "kind.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(arrays.pop("config").tobytes())
    config["network"]["overlap_head"] = "cover_3d"
    for key in ("format", "format_version", "weights_sha256"):
        config.pop(key)
    save_model_file(tmp_path / "kind.npz", config, arrays)
    with pytest.raises(ModelFileError, match="unknown overlap_head"):
        OverlapModel.load(tmp_path / "kind.npz")


def test_from_samples_summarises_exactly_as_the_plain_average_over_the_shifts():
    rng = np.random.default_rng(4)
    u = rng.uniform(0, 1, size=(5, 32))
    u[0, :10], u[1, :] = 0.0, 1.0
    u[2, 5:20] = 1.0
    scale_a, scale_b = np.array([1.0, 0.3, 1.0, 0.5, 1.0]), np.array([0.2, 1.0, 0.7, 1.0, 1.0])
    mixture = UnitMixture.from_samples(u, scale_a, scale_b)
    iou = iou_of_unit(u, (scale_a * scale_b)[:, None])
    summary = summarise_overlap(mixture, 0.3)
    np.testing.assert_allclose(summary.iou_mean, iou.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(summary.iou_sd, iou.std(axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(summary.cover_a_mean, u.mean(axis=1) * scale_a, rtol=1e-12)
    np.testing.assert_array_equal(summary.p_iou, (iou >= 0.3).mean(axis=1))
    # Quantiles are the order statistics (the smallest value with at least the level's share at or below it).
    levels = np.array([0.11, 0.52, 0.91])  # off the steps at multiples of 1/32
    expected = np.sort(iou, axis=1)[:, np.ceil(levels * 32).astype(int) - 1]
    np.testing.assert_allclose(iou_quantiles(mixture, levels), expected, rtol=1e-9, atol=1e-15)


def test_the_products_exact_path_is_the_exact_overlap_at_fixed_shifts_whatever_the_batch(tmp_path):
    from overlap_relevance.model.scoring import EXACT_SHIFTS, exact_shift_units
    from overlap_relevance.model.shift_overlap import polygon_areas

    model = OverlapModel.load(sigma_path="exact")
    a = np.array([shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10), shapely.Polygon([(0, 0), (8, 0), (4, 6)])])
    b = np.array([shapely.box(2, 2, 12, 12), shapely.box(1, 1, 4, 4), shapely.box(1, 1, 7, 3)])
    sigma = np.array([2.0, 1.0, 0.5])
    overlap, _ = model.predict_frames(a, b, sigma)
    assert overlap.means.shape[1] == EXACT_SHIFTS
    area_a, area_b = polygon_areas(a), polygon_areas(b)
    u = exact_shift_units(a, b, sigma, area_a, area_b)
    ratio = np.minimum(area_a, area_b) / np.maximum(area_a, area_b)
    summary = summarise_overlap(overlap)
    np.testing.assert_allclose(summary.iou_mean, iou_of_unit(u, ratio[:, None]).mean(axis=1), rtol=1e-12)
    alone = summarise_overlap(model.predict_frames(a[1:2], b[1:2], sigma[1:2])[0])
    assert alone.iou_mean[0] == summary.iou_mean[1] and alone.p_iou[0] == summary.p_iou[1]
    # The network path still serves the same file.
    network = OverlapModel.load(sigma_path="network")
    assert not np.array_equal(summarise_overlap(network.predict_frames(a, b, sigma)[0]).iou_mean, summary.iou_mean)
    with pytest.raises(ValueError):
        OverlapModel.load(sigma_path="guess")


def test_the_exact_path_measures_large_features_at_full_detail_at_sigma_above_zero():
    """A feature over MAX_MODEL_VERTICES vertices is simplified for the network, but the exact kernel at σ > 0
    measures it as given, through predict_frames and through the API (a wavy outline whose simplification
    moves the overlap)."""
    from overlap_relevance.model.preparation import MAX_MODEL_VERTICES, model_geometry
    from overlap_relevance.model.scoring import exact_shift_units
    from overlap_relevance.model.shift_overlap import polygon_areas

    angle = np.linspace(0, 2 * np.pi, 4 * MAX_MODEL_VERTICES, endpoint=False)
    radius = 50.0 + 0.04 * (np.arange(angle.size) % 2)  # bumps outward, within the simplification's tolerance
    wavy = shapely.Polygon(np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]))
    assert shapely.get_num_coordinates(model_geometry(np.array([wavy]))[0]) < shapely.get_num_coordinates(wavy)
    a, b = np.array([wavy, wavy]), np.array([shapely.box(-60, -20, 0, 20), shapely.box(-53, -5, -44, 5)])
    sigma = np.array([1.5, 1.0])
    model = OverlapModel.load(sigma_path="exact")
    area_a, area_b = polygon_areas(a), polygon_areas(b)
    ratio = np.minimum(area_a, area_b) / np.maximum(area_a, area_b)
    full = iou_of_unit(exact_shift_units(a, b, sigma, area_a, area_b), ratio[:, None]).mean(axis=1)
    simple_a = model_geometry(a)
    simplified = iou_of_unit(exact_shift_units(simple_a, b, sigma, polygon_areas(simple_a), area_b),
                             ratio[:, None]).mean(axis=1)
    assert np.all(np.abs(full - simplified) > 1e-5)  # the check can tell the two apart
    np.testing.assert_allclose(summarise_overlap(model.predict_frames(a, b, sigma)[0]).iou_mean, full, rtol=1e-12)
    # Through the API, from an equal-area CRS centred here: the same pairs, measured in their own frames (the same
    # shapes up to the frames' distortion over 100 m, far below the simplification's effect).
    api = model.predict(a, b, "+proj=laea +lat_0=45 +lon_0=10 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs", sigma)
    assert np.all(np.abs(api.iou_mean - full) < 0.05 * np.abs(full - simplified))


def test_concatenating_mixtures_of_other_component_counts_keeps_every_summary():
    first = _mixture(8)
    second = UnitMixture.point(np.array([0.0, 0.4, 1.0]), np.ones(3), np.full(3, 0.5), n_components=1)
    both = UnitMixture.concatenate([first, second])
    assert len(both) == 9 and both.means.shape[1] == 3
    for part, rows in ((first, slice(0, 6)), (second, slice(6, 9))):
        for got, expected in zip(summarise_overlap(both[rows], 0.2).__dict__.values(),
                                 summarise_overlap(part, 0.2).__dict__.values()):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
