"""The held-out evaluation (model/training/evaluate.py): its metrics on small known inputs, the matching set,
and one end-to-end run with a tiny NumPy-made model. NumPy only: nothing here imports TensorFlow."""

import json
import subprocess
import sys

import numpy as np
import pytest
import shapely
from overlap_relevance.model.datasets.synthetic import generate_pairs
from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.evaluation import cli, heldout, measure, metrics
from overlap_relevance.model.mixture import raw_size, sigma_to_raw
from overlap_relevance.model.scoring import load_model
from tools.models import numpy_model_file


# --------------------------------------------------------------------------
# Scores and coverage.
# --------------------------------------------------------------------------
def brute_force_crps(forecast, observations):
    """Mean over observations of E|X - y| - E|X - X'| / 2, with full matrices."""
    to_observation = np.abs(forecast[:, :, None] - observations[:, None, :]).mean(axis=1)
    spread = np.abs(forecast[:, :, None] - forecast[:, None, :]).mean(axis=(1, 2))
    return to_observation.mean(axis=1) - 0.5 * spread


def test_crps_from_samples_matches_brute_force():
    rng = np.random.default_rng(0)
    forecast = rng.uniform(0, 1, (7, 40))
    forecast[0] = 0.0  # an atom
    forecast[1, :20] = 1.0  # half an atom
    observations = rng.uniform(0, 1, (7, 25))
    observations[2] = forecast[2, :25]  # observations equal to forecast samples
    np.testing.assert_allclose(metrics.crps_from_samples(forecast, observations), brute_force_crps(forecast, observations),
                               atol=1e-12)


def test_crps_known_values():
    rng = np.random.default_rng(1)
    # A point forecast scores the mean absolute error.
    point = np.full((3, 5), 0.25)
    observations = rng.uniform(0, 1, (3, 9))
    np.testing.assert_allclose(metrics.crps_from_samples(point, observations), np.abs(observations - 0.25).mean(axis=1))
    # U(0, 1) against U(0, 1): 1/3 - 1/6 = 1/6, for the model and the oracle alike.
    uniform = rng.uniform(0, 1, (2, 20_000))
    assert metrics.crps_from_samples(uniform, rng.uniform(0, 1, (2, 2000))) == pytest.approx([1 / 6, 1 / 6], abs=0.005)
    assert metrics.oracle_crps(uniform) == pytest.approx([1 / 6, 1 / 6], abs=0.005)
    # A constant truth is forecast perfectly by itself.
    assert metrics.oracle_crps(np.zeros((2, 64))) == pytest.approx([0.0, 0.0])


def test_rowwise_search_equals_numpy_per_row():
    rng = np.random.default_rng(2)
    rows = np.sort(np.round(rng.uniform(-3, 5, (6, 30)), 1), axis=1)
    values = np.round(rng.uniform(-4, 6, (6, 11)), 1)
    for side in ("left", "right"):
        expected = np.stack([np.searchsorted(r, v, side=side) for r, v in zip(rows, values)])
        np.testing.assert_array_equal(metrics._rowwise_search(rows, values, side), expected)


def test_interval_and_pit_coverage_are_nominal_when_calibrated():
    rng = np.random.default_rng(3)
    n = 200
    # IoU-like distributions with an atom at 0 (40 %) and a continuous part.
    def draw(size):
        values = rng.beta(2, 5, (n, size))
        return np.where(rng.uniform(0, 1, (n, size)) < 0.4, 0.0, values)

    forecast, truth = draw(4000), draw(500)
    pit = metrics.randomised_pit(forecast, truth, np.random.default_rng(4))
    assert pit.shape == truth.shape and np.all((pit >= 0) & (pit <= 1))
    assert metrics.pit_coverage(pit).mean() == pytest.approx(0.9, abs=0.01)
    histogram = np.histogram(pit, bins=10, range=(0, 1))[0] / pit.size
    np.testing.assert_allclose(histogram, 0.1, atol=0.01)
    # The closed interval [q05, q95] covers the atom at 0 as a whole: at least 90 %.
    assert 0.9 <= metrics.interval_coverage(forecast, truth).mean() <= 1.0
    # Continuous case: close to 90 %.
    forecast, truth = rng.normal(size=(n, 4000)), rng.normal(size=(n, 500))
    assert metrics.interval_coverage(forecast, truth).mean() == pytest.approx(0.9, abs=0.01)
    # Too narrow a forecast covers less.
    assert metrics.interval_coverage(0.5 * forecast, truth).mean() < 0.7
    # An atom forecast for an atom truth is covered.
    assert metrics.interval_coverage(np.zeros((2, 10)), np.zeros((2, 5))).tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------
# Best match.
# --------------------------------------------------------------------------
def test_best_match_agreement_with_exclusions():
    #            g7: hit        g3: miss        g5: zero   g9: tie        g4: single
    group = np.array([7, 7, 7, 3, 3, 3, 5, 5, 9, 9, 9, 4])
    exact = np.array([0.1, 0.8, 0.3, 0.5, 0.49, 0.0, 0.0, 0.0, 0.6, 0.6 + 1e-8, 0.1, 0.2])
    predicted = np.array([0.2, 0.7, 0.1, 0.4, 0.46, 0.1, 0.3, 0.1, 0.5, 0.4, 0.3, 0.1])
    result = metrics.best_match_agreement(group, exact, predicted)
    assert result["groups"] == 5
    assert result["excluded_zero"] == 1 and result["excluded_tie"] == 1 and result["used"] == 3
    assert result["agreement"] == pytest.approx(2 / 3) and result["mismatches"] == 1
    assert result["mean_regret"] == pytest.approx(0.01 / 3)
    assert result["close_calls"] == 1 and result["close_call_agreement"] == 0.0  # g3: 0.5 vs 0.49
    assert sorted(result["_used_groups"].tolist()) == [3, 4, 7]


def test_group_ranking_keeps_the_first_of_ties():
    ids, best_index, best, second = metrics.group_ranking(np.array([2, 2, 1, 2]), np.array([0.5, 0.5, 0.1, 0.2]))
    assert ids.tolist() == [1, 2] and best_index.tolist() == [2, 0]
    assert best.tolist() == [0.1, 0.5] and second[0] == -np.inf and second[1] == 0.5


# --------------------------------------------------------------------------
# Buckets, tables, targets, seed summaries.
# --------------------------------------------------------------------------
def test_buckets_and_grouped_means():
    assert metrics.bucket_codes([1, 16, 17, 64, 65, 5000], metrics.VERTEX_EDGES).tolist() == [0, 0, 1, 1, 2, 4]
    assert len(metrics.bucket_labels(metrics.VERTEX_EDGES)) == len(metrics.VERTEX_EDGES) + 1
    sigma = np.array([0.0, 0.1, 0.2, 0.5, 2.0, 9.0])
    assert metrics.sigma_bucket_codes(sigma).tolist() == [0, 1, 1, 2, 3, 4]
    assert len(metrics.sigma_bucket_labels()) == 5
    codes = np.array([0, 0, 1, 1, 1])
    values = np.array([1.0, 3.0, 2.0, 4.0, 100.0])
    valid = np.array([True, True, True, True, False])
    rows = metrics.grouped_means(codes, ["a", "b", "c"], {"mae": (values, valid), "median_x": (values, valid),
                                                     "count_v": (values, valid)})
    assert [r["n"] for r in rows] == [2, 3, 0]
    assert rows[0]["mae"] == 2.0 and rows[1]["mae"] == 3.0 and rows[2]["mae"] is None
    assert rows[1]["median_x"] == 3.0 and rows[1]["count_v"] == 2 and rows[2]["count_v"] == 0


def test_target_status():
    assert metrics.target_status("iou_mae_sigma0", 0.01) == "met"
    assert metrics.target_status("iou_mae_sigma0", 0.03) == "missed"
    assert metrics.target_status("matching_agreement", 0.995) == "met"
    assert metrics.target_status("interval_coverage", 0.97) == "missed"
    assert metrics.target_status("interval_coverage", 0.9) == "met"
    assert metrics.target_status("seed_nan_runs", 0) == "met"
    assert metrics.target_status("admin_agreement", None) == "not measured"


def test_seed_summary_spread_and_nan():
    runs = [{"seed": s, "final_val_loss": v, "final_val_overlap_loss": v / 2, "nan": False}
            for s, v in zip(range(11, 16), [-10.0, -10.5, -9.5, -10.0, -10.0])]
    summary = measure.summarise_seed_runs(runs)
    assert summary["spread"] == pytest.approx(0.1) and summary["nan_runs"] == 0
    runs[2] = {"seed": 13, "final_val_loss": float("nan"), "final_val_overlap_loss": None, "nan": True}
    summary = measure.summarise_seed_runs(runs)
    assert summary["nan_runs"] == 1 and summary["spread"] == pytest.approx(0.5 / 10.125)


def test_the_overlap_nll_is_each_heads_own_likelihood_of_the_labels():
    """The 2-D head: the density of (cover_a, cover_b); the u-head: the mixed likelihood of u = max(covers),
    an atom's log mass at 0 or 1; both per label, for one label per pair and for m."""
    from overlap_relevance.model.mixture import GaussianMixture
    from overlap_relevance.model.overlap_head import UnitMixture

    rng = np.random.default_rng(3)
    cover_a, cover_b = rng.uniform(0.05, 0.95, (4, 5)), rng.uniform(0.05, 0.95, (4, 5))
    cover_a[0, :2], cover_b[0, :2] = 0.0, 0.0  # no overlap: the atom at 0
    cover_a[1, 0] = 1.0  # A inside B: the atom at 1
    planar = GaussianMixture.from_components(np.log(np.full((4, 2), 0.5)), rng.uniform(0.2, 0.8, (4, 2, 2)),
                                             np.full((4, 2, 2), 0.2), np.zeros((4, 2)))
    expected = -np.stack([planar.log_prob(np.column_stack([cover_a[:, j], cover_b[:, j]])) for j in range(5)], axis=1)
    np.testing.assert_allclose(measure.labels_nll(planar, cover_a, cover_b), expected, rtol=1e-12)
    unit = UnitMixture(np.full(4, 0.2), np.full(4, 0.1), np.log(np.full((4, 2), 0.5)), rng.normal(size=(4, 2)),
                       np.full((4, 2), 0.7), np.ones(4), np.ones(4))
    nll = measure.labels_nll(unit, cover_a, cover_b)
    np.testing.assert_allclose(nll, -unit.log_prob_unit(np.maximum(cover_a, cover_b)), rtol=1e-12)
    assert nll[0, 0] == pytest.approx(-np.log(0.2)) and nll[1, 0] == pytest.approx(-np.log(0.1))
    labels = type("Labels", (), {"cover_a": cover_a[:, 2], "cover_b": cover_b[:, 2]})
    np.testing.assert_allclose(measure.overlap_nll(unit, labels), nll[:, 2], rtol=1e-12)
    np.testing.assert_allclose(measure.overlap_nll(planar, labels), expected[:, 2], rtol=1e-12)


# --------------------------------------------------------------------------
# Matching set and a tiny model.
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool():
    return generate_pairs(400, seed=5)


def test_matching_set_structure(pool):
    groups = heldout.matching_set(pool, 25, seed=7)
    roles = len(heldout.CANDIDATE_ROLES)
    same_object = np.flatnonzero(pool.kind == 0)
    g = min(25, same_object.size)
    assert len(groups) == roles * g
    assert np.array_equal(groups.group, np.repeat(np.arange(g), roles))
    assert np.all(shapely.is_valid(groups.b)) and np.all(shapely.area(groups.b) > 0)
    # A repeats within a group and the first candidate is the anchor's own counterpart.
    a = groups.a.reshape(g, roles)
    assert all(shapely.equals_exact(a[:, 0], a[:, k]).all() for k in range(roles))
    counterpart = groups.b[groups.role == 0]
    anchors = np.flatnonzero(np.isin(shapely.to_wkb(pool.a), shapely.to_wkb(a[:, 0])))
    assert len(anchors) == g and shapely.equals_exact(counterpart, pool.b[anchors], tolerance=1e-6).all()
    inter = shapely.area(shapely.intersection(groups.a, groups.b)).reshape(g, roles)
    disjoint = heldout.CANDIDATE_ROLES.index("disjoint")
    neighbour = heldout.CANDIDATE_ROLES.index("neighbour")
    partial = heldout.CANDIDATE_ROLES.index("partial_overlap")
    area_a = shapely.area(a[:, 0])
    assert np.all(inter[:, disjoint] == 0)
    assert np.all(inter[:, neighbour] <= 1e-6 * area_a)
    assert np.mean(inter[:, partial] > 0) > 0.9
    # Reproducible.
    again = heldout.matching_set(pool, 25, seed=7)
    assert shapely.equals_exact(again.b, groups.b).all()


def tiny_model_file(path, seed=0):
    """A small model file made with NumPy: the overlap head predicts the zero-displacement covers
    (residual means) with sigma 0.005, so at sigma = 0 it is nearly exact by construction."""
    k = 2
    overlap_bias = np.zeros(raw_size(k, 2))
    overlap_bias[k + 2 * k:k + 4 * k] = sigma_to_raw(0.005)
    centroid_bias = np.zeros(raw_size(k, 2))
    centroid_bias[k + 2 * k:k + 4 * k] = sigma_to_raw(0.05)
    training = {"recipe_hash": "test", "train_pairs": 0, "train_seed": 1, "validation_pairs": 0,
                "validation_seed": 2, "epochs": 0, "batch_size": 1, "learning_rate": 0.0,
                "data_seconds": 0.0, "fit_seconds": 0.0, "history": {"loss": [0.0], "val_loss": [0.0]}}
    numpy_model_file(path, seed=seed, hidden=(8, 8), components=k, trunk_scale=0.1, head_scale=0.0,
                     overlap_bias=overlap_bias, centroid_bias=centroid_bias,
                     extra_config={"encoding": {"descriptors": list(DESCRIPTOR_NAMES), "max_model_vertices": 256},
                                   "training": training})
    return path


def test_real_layer_agreement_on_the_building_sample(tmp_path):
    model = load_model(tiny_model_file(tmp_path / "tiny.npz"))
    result = measure.evaluate_real_layers(
        model, (heldout.SAMPLE_DIR / "buildings_mapping.gpkg", "buildings_mapping", "map_id"),
        (heldout.SAMPLE_DIR / "buildings_cadastre.gpkg", "buildings_cadastre", "building_id"), measure.BUILDING_SEARCH_M,
        "building footprints", progress=False)
    assert result["inputs"] == 248 and result["references"] == 252
    assert result["used"] > 200 and result["candidate_pairs"] >= result["groups"]
    # The tiny model's sigma-0 mean is the overlap of the model geometries: every best match agrees.
    assert result["agreement"] > 0.98 and result["iou_mae"] < 0.01


def test_end_to_end_with_a_tiny_model(tmp_path):
    model_path = tiny_model_file(tmp_path / "tiny.npz")
    card, out = tmp_path / "MODEL_CARD.md", tmp_path / "evaluation.json"
    results = cli.main(["--model", str(model_path), "--pairs", "300", "--mc-pairs", "30", "--mc-samples", "64",
                      "--model-samples", "128", "--groups", "30", "--seeds", "0", "--no-real-layers",
                      "--workers", "1", "--yardstick-pairs", "0", "--no-cache", "--card", str(card),
                      "--json", str(out)])
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["data"]["pairs"] == 300 and saved["data"]["seed"] == heldout.HELD_OUT_SEED == 3
    assert saved["uncertainty"]["n"] == 30 and saved["uncertainty"]["mc_samples"] == 64
    assert saved["sigma0"]["iou_mae"] < 0.01  # nearly exact by construction
    assert saved["matching"]["agreement"] > 0.9
    assert {row["key"] for row in saved["targets"]} == set(metrics.TARGETS)
    assert results["targets"][0]["status"] == "met"
    text = card.read_text(encoding="utf-8")
    for heading in ("# Model card", "## Model summary", "## Intended use and limitations", "## Training data",
                    "## Architecture", "## Architecture choice", "## Training", "## Metrics against targets",
                    "### By pair kind", "### By σ bucket", "### By vertex count", "## Real layers",
                    "## Convergence across training seeds", "## Reproduction", "## Yardstick"):
        assert heading in text
    assert "not measured" in text  # seeds and real layers were skipped
    # The card can be rebuilt from the JSON alone.
    card.unlink()
    cli.main(["--card-only", "--json", str(out), "--card", str(card)])
    assert card.read_text(encoding="utf-8").startswith("# Model card")
    # ... and its yardstick section from a later standalone run's results, stored beside the JSON too.
    standalone = heldout.MODEL_DIR / "yardstick.json"
    stored = json.loads(standalone.read_text(encoding="utf-8"))
    cli.main(["--card-only", "--json", str(out), "--card", str(card), "--yardstick-from", str(standalone)])
    model_row = next(row for row in stored["contestants"] if row["name"] == "model")
    assert f"| model | {model_row['cost_overlays']:.2f} |" in card.read_text(encoding="utf-8")
    assert json.loads(out.read_text(encoding="utf-8"))["yardstick"]["runtime_seconds"] == stored["runtime_seconds"]
    assert (tmp_path / "yardstick.json").exists() and (tmp_path / "yardstick.md").exists()
    assert (tmp_path / "yardstick.png").exists()


def test_importing_the_evaluation_does_not_load_tensorflow():
    code = ("import sys, overlap_relevance.model.evaluation.measure, overlap_relevance.model.evaluation.card; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0
