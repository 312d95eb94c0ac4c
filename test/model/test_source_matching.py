"""Matching when sources really differ: the edits, the learned decisions, m_change_p and the sparse solver."""

import json

import numpy as np
import pytest
import shapely

from overlap_relevance.model import matching
from overlap_relevance.model.evaluation import source_matching
from overlap_relevance.model.evaluation.source_matching import step_isotonic
from overlap_relevance.model.datasets.source_edits import (HELDOUT_SEED, VALIDATION_SEED, generate_source_edits,
                                                           sample_outlines)
from overlap_relevance.model.match_model import (PAIR_FEATURES, Logistic, Network, load_match_model, monotone,
                                                 pair_features, rivalry)
from overlap_relevance.model.matching import CandidateEdges, MatchThresholds, assign_one_to_one, decide


def test_source_edits_have_every_class_and_are_seeded():
    edits = generate_source_edits(5, n_blocks=40, sigma=2.0)
    again = generate_source_edits(5, n_blocks=40, sigma=2.0)
    assert shapely.equals_exact(edits.input, again.input, 1e-9).all()
    assert set(edits.class_b) >= {"1:1", "1:n", "n:1", "m:n", "unmatched"}
    assert set(edits.change_b) >= {"unchanged", "modified", "split", "merged", "reshaped", "removed"}
    assert "new" in set(edits.change_a)
    assert shapely.is_valid(edits.input).all() and shapely.is_valid(edits.reference).all()
    # m:n truth: several on each side, one group
    for g in np.unique(edits.group_b[edits.class_b == "m:n"]):
        assert np.sum(edits.group_a == g) >= 2 and np.sum(edits.group_b == g) >= 2
    # the input is redrawn: an unchanged building is never an exact copy of its reference
    one = np.flatnonzero(edits.change_a == "unchanged")[:20]
    partner = np.array([np.flatnonzero(edits.group_b == edits.group_a[i])[0] for i in one])
    assert not shapely.equals_exact(edits.input[one], edits.reference[partner], 1e-6).any()
    assert VALIDATION_SEED != HELDOUT_SEED and HELDOUT_SEED != VALIDATION_SEED + 1


def test_sample_outlines_are_real_buildings():
    outlines = sample_outlines()
    if not outlines:
        pytest.skip("GDAL's Python bindings are missing")
    bounds = shapely.bounds(np.array(outlines, dtype=object))
    assert len(outlines) > 100
    assert np.all(bounds[:, 2] - bounds[:, 0] >= bounds[:, 3] - bounds[:, 1] - 1e-6)  # turned along x
    assert np.allclose((bounds[:, 0] + bounds[:, 2]) / 2, 0.0, atol=1e-6)


def test_logistic_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 2))
    p = 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    y = rng.random(len(p)) < p
    fitted = Logistic.fit(x, y, l2=0.0)
    assert np.abs(fitted(x) - p).max() < 0.05
    assert Logistic(**fitted.as_dict())(x[:5]) == pytest.approx(fitted(x[:5]), abs=1e-6)


def test_network_learns_what_a_line_cannot():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3000, 2))
    y = (x[:, 0] * x[:, 1]) > 0  # a checkerboard: no logistic line separates it
    network = Network.fit(x, y, hidden=8, epochs=400, rate=0.05)
    assert np.mean((network(x) > 0.5) == y) > 0.9
    assert np.mean((Logistic.fit(x, y)(x) > 0.5) == y) < 0.7
    assert Network(**network.as_dict())(x[:5]) == pytest.approx(network(x[:5]), abs=1e-6)


def test_rivalry_reads_the_other_candidates():
    # input 0 has two candidates (q 0.9 and 0.3); input 1 one (q 0.6) that shares reference 0
    q = np.array([0.9, 0.3, 0.6])
    index_a, index_b = np.array([0, 0, 1]), np.array([0, 1, 0])
    area = np.array([100.0, 100.0, 50.0])
    table = rivalry(q, index_a, index_b, 2, 2, area, np.array([100.0, 40.0, 100.0]))
    assert table[:, 2] == pytest.approx([1.0, 1 / 3, 1.0])  # share of the input's best
    assert table[:, 4] == pytest.approx([0.3, 0.9, 0.0])  # the input's best rival
    assert table[:, 5] == pytest.approx([0.6, 0.0, 0.9])  # the reference's best rival
    assert table[0, 8] == pytest.approx(0.3 * 40.0 / 100.0)  # input 0's area its other partner explains
    assert table[0, 9] == pytest.approx(0.6 * 50.0 / 100.0)  # reference 0's area input 1 explains


def test_shipped_match_model_reads_the_features():
    shipped = load_match_model()
    assert shipped is not None
    assert np.shape(shipped.stages[0].w1)[0] == len(PAIR_FEATURES)
    for name in ("assigned", "unmatched", "grouped", "one_to_one"):
        for table in (shipped.tables[name]["pooled"], *shipped.tables[name]["bands"]):
            assert_monotone_table(table)
        assert len(shipped.tables[name]["bands"]) == len(shipped.tables[name]["band_sigmas"])

    def q(p, cover, distance, aligned, sigma=0.5):
        one = np.array([0])
        features = pair_features(one, one, 1, 1, np.array([p]), np.array([p]), np.array([p]), np.array([cover]),
                                 np.array([cover]), np.array([100.0]), np.array([100.0]), np.array([distance]),
                                 np.array([sigma]), np.array([aligned]))
        return shipped.pair(features, one, one, 1, 1, np.array([100.0]), np.array([100.0]))[0]

    # the same 10 m square, in place, and touching it 10 m along (20 σ away): only the first is the same object
    assert q(0.99, 0.98, 0.3, 0.97) > 0.9
    assert q(0.0, 0.0, 10.0, 0.97) < 0.1


def test_decide_with_learned_probabilities_writes_change_probabilities():
    # a0-b0 a clear pair, a1 alone (new), b1 alone (removed), a2 and a3 parts of b2 (split)
    edges = CandidateEdges(np.array([0, 1, 2, 3]), np.array([0, 2, 2, 2]), np.zeros(4), np.zeros(4), np.zeros(4),
                           q=np.array([0.99, 0.05, 0.95, 0.9]))
    result = decide(4, 3, edges, MatchThresholds(p_edge=0.5))
    assert list(result.class_a) == ["1:1", "unmatched", "n:1", "n:1"]
    assert list(result.change_b) == ["unchanged", "removed", "split"]
    for values in (result.change_p_a, result.change_p_b):
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))
    assert result.change_p_a[1] > 0.5  # the only candidate of a1 is unlikely: "new" is likely right


def _dense_best(k, m, rows, cols, weight):
    from scipy.optimize import linear_sum_assignment

    matrix = np.zeros((k, m))
    np.maximum.at(matrix, (rows, cols), weight)
    r, c = linear_sum_assignment(matrix, maximize=True)
    return matrix[r, c].sum()


def test_sparse_assignment_is_optimal_against_a_dense_solver():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(1)
    for _ in range(200):
        k, m = int(rng.integers(1, 25)), int(rng.integers(1, 25))
        flat = rng.choice(k * m, int(rng.integers(1, k * m + 1)), replace=False)
        rows, cols, weight = flat // m, flat % m, rng.random(len(flat))
        picked = matching.sparse_assignment(k, m, rows, cols, weight)
        assert len(np.unique(rows[picked])) == len(picked) == len(np.unique(cols[picked]))
        assert weight[picked].sum() == pytest.approx(_dense_best(k, m, rows, cols, weight), abs=1e-6)


def test_large_component_goes_to_the_sparse_solver_and_stays_optimal(monkeypatch):
    pytest.importorskip("scipy")
    rng = np.random.default_rng(2)
    n = 1500  # a terrace-like chain: one component, 2.25 million dense cells
    rows = np.repeat(np.arange(n), 3)
    cols = np.clip(rows + np.tile([-1, 0, 1], n), 0, n - 1)
    weight = rng.random(len(rows))
    called = []
    original = matching.sparse_assignment
    monkeypatch.setattr(matching, "sparse_assignment", lambda *a: called.append(1) or original(*a))
    _, _, chosen = assign_one_to_one(n, n, rows, cols, weight)
    assert called
    assert weight[chosen].sum() == pytest.approx(_dense_best(n, n, rows, cols, weight), abs=1e-6)


def test_default_link_threshold_is_the_one_chosen_on_validation_edits():
    assert MatchThresholds().p_edge == load_match_model().config["p_edge"]


def assert_monotone_table(table):
    """A calibration table that never lowers a probability it is given a higher raw value for."""
    values = np.asarray(table["calibrated"], dtype=float)
    assert np.all((values >= 0) & (values <= 1)) and np.all(np.diff(values) >= 0)
    if "edges" in table:  # step table: k - 1 strictly increasing edges between k steps
        assert len(table["edges"]) == len(values) - 1 and np.all(np.diff(table["edges"]) > 0)
    else:
        assert len(table["raw"]) == len(values) and np.all(np.diff(table["raw"]) >= 0)
    x = np.linspace(-0.1, 1.1, 2001)
    assert np.all(np.diff(monotone(x, table)) >= 0)


def test_monotone_table_check_fails_on_a_table_that_goes_down():
    assert_monotone_table({"edges": [0.3, 0.6], "calibrated": [0.1, 0.5, 0.9]})
    for bad in ({"edges": [0.3, 0.6], "calibrated": [0.1, 0.5, 0.4]},
                {"edges": [0.6, 0.3], "calibrated": [0.1, 0.5, 0.9]},
                {"raw": [0.0, 0.5, 1.0], "calibrated": [0.2, 0.1, 0.9]}):
        with pytest.raises(AssertionError):
            assert_monotone_table(bad)


def test_step_isotonic_is_calibrated_on_its_decisions_and_keeps_ties_together():
    rng = np.random.default_rng(4)
    # a continuous part and a cluster of 600 equal raw values whose truth is far above its neighbours'
    x = np.concatenate([rng.uniform(0, 1, 3000), np.full(600, 0.4)])
    y = np.concatenate([rng.uniform(0, 1, 3000) < x[:3000], rng.uniform(0, 1, 600) < 0.75])
    table = step_isotonic(x, y, 300)
    assert_monotone_table(table)
    written = monotone(x, table)
    for value in np.unique(written):  # every step writes the observed share of its own decisions
        assert y[written == value].mean() == pytest.approx(value, abs=1e-6)
        assert (written == value).sum() >= 300
    assert len(np.unique(written[3000:])) == 1  # the cluster is one step
    assert np.isnan(monotone(np.array([np.nan]), table)).all()
    assert step_isotonic(np.zeros(0), np.zeros(0), 10) == {"edges": [], "calibrated": [0.5]}


def test_no_fitting_step_reads_the_held_out_seed(tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        source_matching.prepared(HELDOUT_SEED, 1.0, 2)
    config = load_match_model().config
    assert HELDOUT_SEED not in source_matching.table_seeds(config)
    fitted = config["groups"]["fitted_on"]
    cuts = config["cuts"]["fitted_on"]
    used = [*config["fitted_on"]["seeds"], *fitted["network"][:-1], *np.atleast_1d(fitted["threshold"]),
            *fitted["tables"], *cuts["network"][:-1], *cuts["threshold"]]
    assert HELDOUT_SEED not in used
    # a configuration naming the held-out seed for its tables stops fit_calibration before it generates anything
    bad = {**config,
           "groups": {**config["groups"], "fitted_on": {**fitted, "tables": [fitted["tables"][0], HELDOUT_SEED]}}}
    path = tmp_path / "match_model.json"
    path.write_text(json.dumps(bad))
    monkeypatch.setattr(source_matching, "PATH", path)
    monkeypatch.setattr(source_matching, "generate_source_edits", lambda *a, **k: pytest.fail("generated edits"))
    with pytest.raises(ValueError):
        source_matching.fit_calibration()
    assert json.loads(path.read_text()) == bad  # the file was left as it was

