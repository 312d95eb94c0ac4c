"""The doubtful blocks of the source edits, the m_p network and the group test's thresholds per σ band."""

import numpy as np
import shapely

from overlap_relevance.model.datasets.source_edits import (DOUBTFUL_KINDS, _doubtful_block,
                                                           generate_source_edits)
from overlap_relevance.model.evaluation.source_matching import assigned_rows, class_rows
from overlap_relevance.model.group_test import threshold_at
from overlap_relevance.model.match_model import MatchModel, Network, assigned_features, load_match_model
from overlap_relevance.model.matching import CandidateEdges, MatchThresholds, decide


def test_doubtful_blocks_leave_the_ordinary_ones_as_they_were():
    plain = generate_source_edits(7, n_blocks=30, sigma=2.0)
    more = generate_source_edits(7, n_blocks=30, sigma=2.0, doubtful_blocks=40)
    n_a, n_b = len(plain.input), len(plain.reference)
    assert shapely.equals_exact(plain.input, more.input[:n_a], 0.0).all()
    assert shapely.equals_exact(plain.reference, more.reference[:n_b], 0.0).all()
    for name in ("group_a", "class_a", "change_a"):
        assert (getattr(plain, name) == getattr(more, name)[:n_a]).all()
    assert not plain.doubtful_a.any() and not plain.doubtful_b.any()
    assert not more.doubtful_a[:n_a].any() and more.doubtful_a[n_a:].all() and more.doubtful_b[n_b:].all()
    # the doubtful groups are their own: no truth group has members in both families
    assert not set(more.group_b[more.doubtful_b]) & set(more.group_b[~more.doubtful_b])
    assert not set(more.group_a[more.doubtful_a]) & set(more.group_a[~more.doubtful_a])
    # the doubtful blocks lie away from the ordinary ones (no reference of one within 20 m of the other)
    far = shapely.distance(shapely.union_all(more.reference[~more.doubtful_b]),
                           shapely.union_all(more.reference[more.doubtful_b]))
    assert far > 20.0
    assert shapely.is_valid(more.input).all() and shapely.is_valid(more.reference).all()
    # their truth: kept (1:1, unchanged or modified), removed or new; features of the reference never overlap
    assert set(more.class_b[more.doubtful_b]) <= {"1:1", "unmatched"}
    assert {"unchanged", "modified", "removed"} <= set(more.change_b[more.doubtful_b])
    assert "new" in set(more.change_a[more.doubtful_a])
    ref = more.reference[more.doubtful_b]
    left, right = shapely.STRtree(ref).query(ref, predicate="intersects")
    apart = left < right
    assert np.all(shapely.area(shapely.intersection(ref[left[apart]], ref[right[apart]])) < 1e-6)


def test_every_doubtful_kind_is_drawn_and_rebuilt_buildings_are_new():
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(200):
        block = _doubtful_block(rng, 1.0, ())
        seen.add(len(block))
        groups_a = {g for _, side, g, _ in block if side == "a"}
        for _, side, g, edit in block:
            if side == "b" and edit == "removed":
                assert g not in groups_a  # a rebuilt or replaced building is another object
            if side == "b" and edit in ("unchanged", "modified"):
                assert g in groups_a
    assert len(DOUBTFUL_KINDS) == 5 and len(seen) > 5


def test_class_rows_split_the_features_into_the_two_families():
    edits = generate_source_edits(11, n_blocks=10, sigma=1.0, doubtful_blocks=10)
    edges = CandidateEdges(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
                           np.zeros(0), q=np.zeros(0))
    result = decide(len(edits.input), len(edits.reference), edges, MatchThresholds())
    ordinary, doubtful = class_rows(result, edits), class_rows(result, edits, True)
    assert ordinary["all"][1] + doubtful["all"][1] == len(edits.input) + len(edits.reference)
    # nothing matched: exactly the truly unmatched features are right
    assert ordinary["all"][0] == ordinary["unmatched"][0] == ordinary["unmatched"][1]
    assert doubtful["all"][0] == doubtful["unmatched"][1] > 0


def test_group_threshold_per_sigma_band():
    config = {"threshold": 0.7, "threshold_bands": {"band_sigmas": [0.5, 2.0, 5.0], "thresholds": [0.8, 0.5, 0.6]}}
    got = threshold_at(config, np.array([0.25, 0.9, 1.1, 2.0, 3.5, 40.0, np.nan, 0.0]))
    # nearest band on a log scale: 1.0 is exactly between 0.5 and 2.0 (0.9 nearer 0.5, 1.1 nearer 2.0)
    assert got.tolist() == [0.8, 0.8, 0.5, 0.5, 0.6, 0.6, 0.7, 0.7]
    assert threshold_at({"threshold": 0.4}, np.array([1.0, 3.0])).tolist() == [0.4, 0.4]


def test_m_p_reads_the_network_then_the_table_of_its_band():
    shipped = load_match_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    network = Network.fit(x, x[:, 1] > 0, hidden=3, epochs=50)
    table = {"raw": [0.0, 0.5, 1.0], "calibrated": [0.1, 0.4, 0.9]}
    config = {**shipped.config, "assigned_model": network.as_dict(),
              "tables": {"assigned": {"pooled": table, "band_sigmas": [1.0], "bands": [table]}}}
    model = MatchModel(config)
    q, p_same, p_part, iou, sigma = (np.array([0.9, 0.6]), np.array([0.8, 0.1]), np.array([0.7, 0.2]),
                                     np.array([0.6, 0.1]), np.array([1.0, 2.0]))
    expected = np.interp(network(assigned_features(q, p_same, p_part, iou, sigma)), table["raw"], table["calibrated"])
    assert np.allclose(model.assigned(q, p_same, p_part, iou, sigma), expected)
    # without the network: the edge probability through the table, as before
    del config["assigned_model"]
    assert np.allclose(MatchModel(config).assigned(q, p_same, p_part, iou, sigma),
                       np.interp(q, table["raw"], table["calibrated"]))


def test_decide_writes_the_shipped_m_p_of_the_chosen_pairs():
    shipped = load_match_model()
    edges = CandidateEdges(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), np.array([0.9, 0.2, 0.7, 0.95]),
                           np.array([0.9, 0.3, 0.8, 0.97]), np.array([0.8, 0.1, 0.6, 0.9]),
                           q=np.array([0.99, 0.3, 0.97, 0.999]), sigma=np.array([2.0, 2.0, 2.0, 0.5]))
    result = decide(3, 3, edges, MatchThresholds(p_edge=0.5))
    assert result.partner_a.tolist() == [0, 1, 2]
    a, rows = assigned_rows(edges, result, 3)
    assert rows.tolist() == [0, 2, 3]
    expected = shipped.assigned(edges.q[rows], edges.p_same[rows], edges.p_part[rows], edges.iou_mean[rows],
                                edges.sigma[rows])
    assert np.allclose(result.p_a[a], expected) and np.allclose(result.p_b[result.partner_a[a]], expected)
