"""The yardstick (model/evaluation/yardstick.py, samplers.py): the QMC sampler against known answers, its
determinism, the equivalent-k and interpolation logic, and one tiny run through JSON, Markdown, plot and card.
NumPy only: nothing here imports TensorFlow. A few seconds."""

import json

import numpy as np
import pytest
import shapely
from overlap_relevance.model.datasets.synthetic import generate_pairs
from overlap_relevance.model.evaluation import card, samplers, yardstick
from overlap_relevance.model.evaluation.heldout import MODEL_DIR
from overlap_relevance.model.evaluation.metrics import YARDSTICK_TARGETS
from overlap_relevance.model.scoring import load_model


# --------------------------------------------------------------------------
# Sobol' points and the samplers.
# --------------------------------------------------------------------------
def test_unscrambled_points_are_scipys_sobol_sequence():
    qmc = pytest.importorskip("scipy.stats.qmc")
    points = samplers.sobol_points(1, 256, None, scramble=False)[0]
    np.testing.assert_allclose(points, qmc.Sobol(2, scramble=False).random(256), atol=1e-9)


def test_scrambled_rows_are_nets_each_with_its_own_scrambling():
    x = samplers.sobol_points(200, 16, np.random.default_rng(0))
    for bits_x in range(5):  # every elementary box of area 1/16 holds exactly one point of every row
        cell = np.floor(x[..., 0] * 2 ** bits_x) * 2 ** (4 - bits_x) + np.floor(x[..., 1] * 2 ** (4 - bits_x))
        assert all(np.unique(row).size == 16 for row in cell)
    assert np.unique(x[:, 0, 0]).size == 200 and np.all((x > 0) & (x < 1))
    first = samplers.sobol_points(20000, 1, np.random.default_rng(1))[:, 0]  # one point per row: uniform
    assert np.all(np.abs(np.histogram(first, 10, (0, 1))[0] / 4000 - 1) < 0.1)  # both coordinates


def square_pair_truth(side, sigma, nodes=96):
    """E[IoU] and E[cover] of two equal axis-aligned squares, B displaced by N(0, σ²I₂), by Gauss-Legendre.

    With u = 1 - |dx|/side and v = 1 - |dy|/side the cover is u·v and IoU = uv / (2 - uv); folding the
    normal onto |d| leaves a smooth integrand on [0, 8σ]².
    """
    t, w = np.polynomial.legendre.leggauss(nodes)
    x, w = 4 * sigma * (t + 1), 4 * sigma * w
    density = 2 * np.exp(-x**2 / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    u = np.clip(1 - x / side, 0, None)
    cover = np.outer(u, u)
    weight = np.outer(w * density, w * density)
    return float(np.sum(weight * cover / (2 - cover))), float(np.sum(weight * cover))


def test_qmc_mean_iou_of_two_squares_matches_the_known_answer():
    side, sigma = 10.0, 1.0
    iou, cover = square_pair_truth(side, sigma)
    assert cover == pytest.approx((1 - sigma * np.sqrt(2 / np.pi) / side) ** 2, abs=1e-9)  # the quadrature is right
    square = shapely.box(-side / 2, -side / 2, side / 2, side / 2)
    a, b = np.full(64, square), np.full(64, square)
    qmc = samplers.qmc_contestant(256).predict(a, b, np.full(64, sigma), np.random.default_rng(2))
    mc = samplers.mc_contestant(256).predict(a, b, np.full(64, sigma), np.random.default_rng(2))
    assert qmc.iou_samples().shape == (64, 256)
    qmc_error, mc_error = np.abs(qmc.iou_mean - iou), np.abs(mc.iou_mean - iou)
    assert qmc_error.max() < 2e-3 and qmc_error.mean() < 5e-4
    assert qmc_error.mean() < 0.5 * mc_error.mean()  # 64 independent replicates of each


def boxes(n, rng):
    """n pairs of axis-aligned rectangles with σ: (a, b, sigma, (n, 4) bounds of a, (n, 4) bounds of b)."""
    size_a, size_b = rng.uniform(5, 20, (n, 2)), rng.uniform(5, 20, (n, 2))
    offset = rng.uniform(-0.6, 0.6, (n, 2)) * (size_a + size_b) / 2
    bounds_a = np.column_stack([-size_a / 2, size_a / 2])
    bounds_b = np.column_stack([offset - size_b / 2, offset + size_b / 2])
    return (shapely.box(*bounds_a.T), shapely.box(*bounds_b.T), rng.uniform(0.5, 4, n), bounds_a, bounds_b)


def box_iou(bounds_a, bounds_b, d):
    """(n, m) IoU of rectangle a and rectangle b shifted by d (n, m, 2), in closed form."""
    lo = np.maximum(bounds_a[:, None, :2], bounds_b[:, None, :2] + d)
    hi = np.minimum(bounds_a[:, None, 2:], bounds_b[:, None, 2:] + d)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(bounds_a[:, 2:] - bounds_a[:, :2], axis=1)[:, None]
    area_b = np.prod(bounds_b[:, 2:] - bounds_b[:, :2], axis=1)[:, None]
    return inter / (area_a + area_b - inter)


def test_qmc_error_falls_with_k_and_beats_mc():
    rng = np.random.default_rng(3)
    a, b, sigma, bounds_a, bounds_b = boxes(40, rng)
    d = sigma[:, None, None] * rng.standard_normal((40, 200_000, 2))
    reference = box_iou(bounds_a, bounds_b, d).mean(axis=1)  # standard error < 1e-4
    exact = samplers.displaced_iou(a, b, d[:, :50])
    np.testing.assert_allclose(exact, box_iou(bounds_a, bounds_b, d[:, :50]), atol=1e-9)  # the overlays are right
    error = {(family, k): np.mean(np.abs(make(k).predict(a, b, sigma, np.random.default_rng(k)).iou_mean - reference))
             for family, make in (("qmc", samplers.qmc_contestant), ("mc", samplers.mc_contestant))
             for k in (4, 16, 64)}
    assert error["qmc", 64] < error["qmc", 16] < error["qmc", 4]
    assert error["qmc", 64] < 0.5 * error["mc", 64]


def test_samplers_are_deterministic_for_a_seed():
    a, b, sigma, _, _ = boxes(10, np.random.default_rng(4))
    for contestant in (samplers.qmc_contestant(8), samplers.mc_contestant(8)):
        first = contestant.predict(a, b, sigma, np.random.default_rng(7)).iou_samples()
        again = contestant.predict(a, b, sigma, np.random.default_rng(7)).iou_samples()
        other = contestant.predict(a, b, sigma, np.random.default_rng(8)).iou_samples()
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
    rng = yardstick.contestant_rng("QMC-8", 0)
    assert rng.integers(1 << 30) == yardstick.contestant_rng("QMC-8", 0).integers(1 << 30)
    assert rng.integers(1 << 30) != yardstick.contestant_rng("MC-8", 0).integers(1 << 30)


# --------------------------------------------------------------------------
# Equivalent k and the speed ratio, on made-up numbers.
# --------------------------------------------------------------------------
KS = np.array(samplers.K_VALUES)


def test_equivalent_k_and_log_log_interpolation():
    errors = 1.0 / KS
    assert yardstick.equivalent_k(KS, errors, 0.1) == 8
    assert yardstick.cost_at_error(KS, errors, 0.1) == (pytest.approx(10.0), False)
    assert yardstick.equivalent_k(KS, errors, 2.0) == 0  # worse than one overlay
    assert yardstick.cost_at_error(KS, errors, 2.0) == (pytest.approx(0.5), True)
    assert yardstick.equivalent_k(KS, errors, 1e-3) == 256  # better than all of them
    assert yardstick.cost_at_error(KS, errors, 1e-3) == (pytest.approx(1000.0), True)
    bumpy = np.array([1.0, 0.4, 0.6, 0.2])  # the largest k no better than 0.5 is the third
    assert yardstick.equivalent_k(KS[:4], bumpy, 0.5) == 4
    cost, extrapolated = yardstick.cost_at_error(KS[:4], bumpy, 0.5)
    assert 4 < cost < 8 and not extrapolated
    assert yardstick.cost_at_error([1, 2], [0.3, 0.3], 0.1)[0] is None  # a flat segment never gets there


def test_speed_ratio_takes_the_strongest_sampler():
    model = {"name": "model", "family": "model", "k": 0, "seconds_per_pair": 2.0, "overlay_seconds": 1.0,
             "mae_mean": 0.1, "mae_p": 0.1, "crps": 0.1}
    rows = [model] + [{"name": f"{f.upper()}-{k}", "family": f, "k": int(k), "seconds_per_pair": float(k),
                       "mae_mean": scale / k, "mae_p": scale / k, "crps": scale / k}
                      for f, scale in (("qmc", 1.0), ("mc", 2.0)) for k in KS]
    eq = yardstick.equivalents(rows)["mae_mean"]
    assert eq["families"]["qmc"]["equivalent_k"] == 8 and eq["families"]["mc"]["equivalent_k"] == 16
    assert eq["strongest"] == "qmc" and eq["speed_ratio"] == pytest.approx(5.0)
    assert eq["families"]["mc"]["cost_overlays_at_model_accuracy"] == pytest.approx(20.0)


def test_the_network_is_measured_against_the_methods_without_it():
    network = {"name": "network", "family": "network", "k": 0, "seconds_per_pair": 4.0, "overlay_seconds": 1.0,
               "mae_mean": 0.1, "mae_p": 0.1, "crps": 0.1}
    rows = [network] + [{"name": f"{f}-{k}", "family": f, "k": int(k), "seconds_per_pair": float(k) / speed,
                         "mae_mean": 1.0 / k, "mae_p": 1.0 / k, "crps": 1.0 / k}
                        for f, speed in (("qmc", 1.0), ("exact", 10.0)) for k in KS]
    eq = yardstick.equivalents(rows, yardstick.WITHOUT_NETWORK, reference="network")["crps"]
    assert eq["model"] == 0.1 and eq["strongest"] == "exact"
    assert eq["speed_ratio"] == pytest.approx(10.0 / 10.0 / 4.0)  # exact reaches 0.1 at k = 10: 1 s vs the network's 4


def test_coverage_is_judged_only_where_a_perfect_forecast_can_meet_it():
    def group(model, oracle):
        return {"model": {"coverage": model}, "oracle_coverage": oracle}

    contestants = [{"name": "model", "family": "model", "mae_mean": 0.1, "mae_p": 0.1, "crps": 0.1,
                    "cost_overlays": 1.0, "us_per_pair": 1.0}]
    results = {"contestants": contestants, "equivalents": {}, "groups": [group(0.91, 0.90), group(0.79, 0.99)]}
    row = {r["key"]: r for r in yardstick.target_rows(results)}["yardstick_band_coverage"]
    assert row["value"] == pytest.approx(0.91) and row["status"] == "met"
    results["groups"].append(group(0.95, 0.92))
    row = {r["key"]: r for r in yardstick.target_rows(results)}["yardstick_band_coverage"]
    assert row["value"] == pytest.approx(0.95) and row["status"] == "missed"


# --------------------------------------------------------------------------
# One tiny run: JSON, Markdown, plot, card.
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results():
    pool = generate_pairs(200, seed=5)
    rows = np.flatnonzero(pool.sigma > 0)[:30]
    synthetic = yardstick.PairSet("synthetic", pool.a[rows], pool.b[rows], pool.sigma[rows], pool.kind[rows])
    sets = [synthetic] + yardstick.yardstick_sets(0, 6, 0, progress=False)
    return yardstick.run_yardstick(truth_draws=256, model_samples=256, repeats=1, ks=(1, 2, 8, 64), progress=False,
                                   sets=sets, exact_ks=(8, 64))


def test_the_results_are_json_with_every_part(results):
    again = json.loads(json.dumps(results, allow_nan=True))
    assert {"settings", "sets", "overlay_us_per_pair", "truth", "contestants", "equivalents", "groups",
            "never_overlap", "constant_iou", "model_parts", "model_api", "targets", "runtime_seconds"} <= set(again)
    assert [c["name"] for c in again["contestants"]] == ["model", "network", "QMC-1", "QMC-2", "QMC-8", "QMC-64", "MC-1", "MC-2",
                                                        "MC-8", "MC-64", "sweep", "sweep+CV-2", "sweep+CV-4",
                                                        "exact-QMC-8", "exact-QMC-64", "exact-QMC-8+CV",
                                                        "exact-QMC-64+CV"]
    assert [c["k"] for c in again["contestants"] if c["family"] == "sweep"] == [0, 2, 4]
    assert again["sets"]["synthetic"]["pairs"] == 30 and again["sets"]["buildings"]["pairs"] == 6
    for c in again["contestants"]:
        assert c["cost_overlays"] > 0 and 0 <= c["coverage"] <= 1 and set(c["by_set"]) == {"synthetic", "buildings"}
        assert c["crps"] >= again["truth"]["oracle_crps"] - 0.01
    assert set(again["equivalents"]) == set(yardstick.MEASURES)
    assert {row["key"] for row in again["targets"]} == set(YARDSTICK_TARGETS)
    # coverage is judged only in cells where the truth's own coverage lies in the target: 36 pairs may have none
    assert all(row["status"] in ("met", "missed") for row in again["targets"] if row["key"] != "yardstick_band_coverage")
    assert sum(g["n"] for g in again["groups"]) == 36 and "buildings" in {g["kind"] for g in again["groups"]}
    assert again["model_api"]["buildings"]["us_per_pair"] > 0
    # the ablation: the network's own head against every method without it
    assert set(again["network_equivalents"]) == set(yardstick.MEASURES)
    for e in again["network_equivalents"].values():
        assert set(e["families"]) <= set(yardstick.WITHOUT_NETWORK) and "network" not in e["families"]
    network = next(c for c in again["contestants"] if c["name"] == "network")
    model = next(c for c in again["contestants"] if c["name"] == "model")
    assert network["family"] == "network" and network["mae_mean"] != model["mae_mean"]


def test_the_renderer_writes_the_tables(results):
    text = yardstick.render_section(results)
    for header in ("| Metric | Measured | Target | Status |", "| Contestant | Cost (overlays) | µs / pair |",
                   "| Measure | Model | QMC equivalent k | MC equivalent k |", "| Kind | σ band | Pairs |"):
        assert header in text
    assert text.count("\n| QMC-") == 4 and text.count("\n| MC-") == 4
    assert "each cell model / network / QMC-8 / QMC-64" in text and "![accuracy against cost" in text
    assert "| Measure | Network | GEOS QMC | GEOS MC | sweep (+CV) | exact-QMC | exact-QMC+CV | Ratio |" in text


def test_outputs_and_the_card_section(results, tmp_path):
    pytest.importorskip("matplotlib")
    paths = tmp_path / "yardstick.json", tmp_path / "yardstick.md", tmp_path / "plots" / "yardstick.png"
    yardstick.write_outputs(results, *paths)
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](plots/yardstick.png)" in paths[1].read_text(encoding="utf-8")
    assert yardstick.load_results(paths[0])["targets"] == results["targets"]
    evaluation = json.loads((MODEL_DIR / "evaluation.json").read_text(encoding="utf-8"))
    evaluation.pop("yardstick", None)
    text = card.render_card(evaluation, paths[0])
    section = text[text.index("## Yardstick"):]
    assert "| Contestant | Cost (overlays) |" in section and "](../docs/yardstick.png)" in section
    assert "Not measured yet" in card.render_card(evaluation, tmp_path / "absent.json")


def test_the_model_contestant_draws_its_samples_after_the_timed_part():
    model = load_model()
    a, b, sigma, _, _ = boxes(5, np.random.default_rng(6))
    forecast = samplers.model_contestant(model, samples=128).predict(a, b, sigma, None)
    assert callable(forecast.samples) and forecast.iou_samples().shape == (5, 128)
    assert np.all((forecast.iou_mean >= 0) & (forecast.iou_mean <= 1))


def test_control_variates_make_the_sweep_exact_where_it_is_exact_to_first_order():
    """Axis-aligned squares shifted in both axes: the surrogate misses the corner term xy; with enough
    control overlays at the same points the residual mean is the exact correction."""
    a = np.array([shapely.box(0, 0, 10, 10)] * 4, dtype=object)
    sigma = np.full(4, 1.0)
    alone = samplers.sweep_contestant(points=64).predict(a, a, sigma, np.random.default_rng(0))
    every = samplers.sweep_contestant(points=64, controls=64).predict(a, a, sigma, np.random.default_rng(0))
    exact = samplers.displaced_iou(a, a, samplers.qmc_displacements(sigma, 64, np.random.default_rng(0)))
    np.testing.assert_allclose(every.iou_mean, exact.mean(axis=1), atol=1e-12)
    assert np.all(alone.iou_mean < every.iou_mean)  # 1 - |x| - |y| lies below (1 - |x|)(1 - |y|)
    assert alone.samples.shape == (4, 64) and np.all((every.p_iou >= 0) & (every.p_iou <= 1))


def test_the_exact_kernel_contestants_see_what_geos_sees_and_the_control_helps():
    side, sigma = 10.0, 1.0
    iou, _ = square_pair_truth(side, sigma)
    square = shapely.box(-side / 2, -side / 2, side / 2, side / 2)
    rotated = shapely.affinity.rotate(square, 30.0)
    a, b = np.array([square] * 32 + [rotated] * 32), np.array([square] * 32 + [square] * 32)
    geos = samplers.qmc_contestant(16).predict(a, b, np.full(64, sigma), np.random.default_rng(3))
    exact = samplers.exact_kernel_contestant(16).predict(a, b, np.full(64, sigma), np.random.default_rng(3))
    np.testing.assert_allclose(exact.iou_samples(), geos.iou_samples(), rtol=0, atol=1e-12)
    controlled = samplers.exact_kernel_contestant(16, control=True).predict(a[:32], b[:32], np.full(32, sigma),
                                                                            np.random.default_rng(4))
    plain = samplers.exact_kernel_contestant(16).predict(a[:32], b[:32], np.full(32, sigma), np.random.default_rng(4))
    assert np.mean(np.abs(controlled.iou_mean - iou)) < 0.5 * np.mean(np.abs(plain.iou_mean - iou))
    names = [c.name for c in samplers.default_contestants(None, ks=(1,), exact_ks=(8,))]
    assert names[-2:] == ["exact-QMC-8", "exact-QMC-8+CV"]
