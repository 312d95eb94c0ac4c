"""The matching core (overlap_relevance.model.matching), without QGIS: graph, assignment, labels, API."""

import numpy as np
import pytest
import shapely

from overlap_relevance.model import load_model, match
from overlap_relevance.model.datasets.edits import generate_edits
from overlap_relevance.model.frame import layer_to_lonlat
from overlap_relevance.model.matching import (CALIBRATION, CandidateEdges, MatchThresholds, assign_one_to_one,
                                              calibrate, decide, group_classes, match_layers, p_cover_at_least)
from overlap_relevance.model.mixture import GaussianMixture
from overlap_relevance.model.preparation import prepare_layer

from tools.geometry import ORIGIN, UTM, square


@pytest.fixture(scope="module")
def model():
    return load_model()


def _rect(x0, y0, x1, y1):
    return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)


def _best_by_enumeration(n_a, n_b, table):
    """Largest total weight of a one-to-one assignment over the edges in ``table`` {(a, b): w}."""
    def best(a, used):
        if a == n_a:
            return 0.0
        value = best(a + 1, used)  # a left without partner
        for b in range(n_b):
            if b not in used and (a, b) in table:
                value = max(value, table[(a, b)] + best(a + 1, used | {b}))
        return value
    return best(0, frozenset())


def test_assignment_is_optimal_on_random_graphs():
    rng = np.random.default_rng(11)
    graphs = 0
    for _ in range(600):
        n_a, n_b = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        flat = rng.choice(n_a * n_b, int(rng.integers(1, n_a * n_b + 1)), replace=False)
        index_a, index_b = flat // n_b, flat % n_b
        weight = np.where(rng.random(len(flat)) < 0.1, 0.0, rng.random(len(flat)))
        partner_a, partner_b, chosen = assign_one_to_one(n_a, n_b, index_a, index_b, weight)
        # one-to-one, only over edges, and consistent on both sides
        assigned = np.flatnonzero(partner_a >= 0)
        assert len(np.unique(partner_a[assigned])) == len(assigned)
        assert np.array_equal(partner_b[partner_a[assigned]], assigned)
        edge_set = set(zip(index_a.tolist(), index_b.tolist()))
        assert all((a, int(partner_a[a])) in edge_set for a in assigned)
        table = dict(zip(zip(index_a.tolist(), index_b.tolist()), weight.tolist()))
        assert weight[chosen].sum() == pytest.approx(_best_by_enumeration(n_a, n_b, table), abs=1e-9)
        graphs += 1
    assert graphs >= 500


def test_single_edge_components_need_no_solver_and_keep_every_edge():
    index_a, index_b = np.arange(1000), np.arange(1000)[::-1]
    partner_a, partner_b, chosen = assign_one_to_one(1000, 1000, index_a, index_b, np.full(1000, 0.7))
    assert np.array_equal(partner_a, index_b) and len(chosen) == 1000


def test_classes_follow_member_counts():
    assert list(group_classes([1, 1, 2, 3, 2], [1, 3, 1, 2, 2])) == ["1:1", "1:n", "n:1", "m:n", "m:n"]


def _edges(pairs, p=0.99):
    index_a, index_b = (np.array(x, dtype=np.int64) for x in zip(*pairs))
    n = len(index_a)
    return CandidateEdges(index_a, index_b, np.full(n, p), np.full(n, p), np.linspace(0.9, 0.5, n))


def test_groups_classes_changes_and_partners_from_edges():
    # a0-b0 1:1; a1-b1, a1-b2 1:n; a2, a3-b3 n:1; a4-b4, a4-b5, a5-b5 m:n; a6 new; b6 removed.
    pairs = [(0, 0), (1, 1), (1, 2), (2, 3), (3, 3), (4, 4), (4, 5), (5, 5)]
    edges = _edges(pairs)
    weak = CandidateEdges(np.array([6]), np.array([6]), np.array([0.01]), np.array([0.05]), np.array([0.01]))
    edges = CandidateEdges(*(np.concatenate([getattr(edges, k), getattr(weak, k)])
                             for k in ("index_a", "index_b", "p_same", "p_part", "iou_mean")))
    result = decide(7, 7, edges)
    assert list(result.class_a) == ["1:1", "1:n", "n:1", "n:1", "m:n", "m:n", "unmatched"]
    assert list(result.class_b) == ["1:1", "1:n", "1:n", "n:1", "m:n", "m:n", "unmatched"]
    assert list(result.change_a) == ["unchanged", "merged", "split", "split", "reshaped", "reshaped", "new"]
    assert list(result.change_b) == ["unchanged", "merged", "merged", "split", "reshaped", "reshaped", "removed"]
    assert result.group_a[6] == -1 and result.group_b[6] == -1
    assert list(result.groups["class"]) == ["1:1", "1:n", "n:1", "m:n"]
    assert [list(m) for m in result.groups["members_b"]] == [[0], [1, 2], [3], [4, 5]]
    # one-to-one: a1 takes b1 (higher expected IoU than b2); a4-b4 and a5-b5 beat a4-b5 alone
    assert list(result.partner_a) == [0, 1, 3, -1, 4, 5, -1]
    assert result.partner_b[2] == -1 and result.partner_b[3] == 2
    assert np.isnan(result.p_a[6]) and np.isnan(result.p_a[3])
    assert result.p_a[0] == pytest.approx(calibrate(0.99))
    assert np.all(result.groups["p"] == pytest.approx(calibrate(0.99)))
    assert result.n_pairs == 9 and result.n_edges == 8


def test_weakest_link_is_the_group_probability():
    edges = CandidateEdges(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([0.99, 0.3, 0.95]),
                           np.array([0.99, 0.3, 0.95]), np.array([0.9, 0.2, 0.8]))
    result = decide(2, 2, edges, MatchThresholds(p_edge=0.2))
    assert result.groups["p"][0] == pytest.approx(calibrate(0.3))
    strict = decide(2, 2, edges, MatchThresholds(p_edge=0.5))  # the weak link dropped: two 1:1 groups
    assert list(strict.class_a) == ["1:1", "1:1"]


def test_calibration_table_is_monotone_and_bounded():
    assert np.all(np.diff(CALIBRATION["raw"]) >= 0) and np.all(np.diff(CALIBRATION["calibrated"]) >= 0)
    p = calibrate(np.linspace(0, 1, 101))
    assert p.min() >= 0 and p.max() <= 1 and np.all(np.diff(p) >= 0)


def test_part_probability_is_the_marginal_of_the_smaller_feature():
    rng = np.random.default_rng(3)
    n, k = 50, 3
    mixture = GaussianMixture.from_components(rng.normal(size=(n, k)), rng.uniform(0, 1, (n, k, 2)),
                                              rng.uniform(0.05, 0.3, (n, k, 2)), rng.uniform(-0.8, 0.8, (n, k)))
    smaller_is_a = rng.random(n) < 0.5
    samples = mixture.quasi_samples(8192, 5)  # (m, n, 2)
    covered = np.where(smaller_is_a, samples[..., 0], samples[..., 1])
    np.testing.assert_allclose(p_cover_at_least(mixture, 0.6, smaller_is_a), (covered >= 0.6).mean(axis=0), atol=0.02)


def test_touching_and_slightly_shifted_neighbours_are_not_joined(model):
    # A terrace of touching 10 m houses, and the same terrace 0.8 m along: each overlaps its neighbour by 8 %.
    reference = np.array([square(10.0 * i, 0, 10.0) for i in range(6)], dtype=object)
    shifted = np.array([square(10.0 * i + 0.8, 0.2, 10.0) for i in range(6)], dtype=object)
    result = match(shifted, reference, UTM, sigma=0.5, model=model)
    assert list(result.class_a) == ["1:1"] * 6 and list(result.class_b) == ["1:1"] * 6
    assert np.array_equal(result.partner_a, np.arange(6))
    assert result.n_pairs > 6  # the neighbours were candidates, and were kept apart
    touching = match(reference[:3], reference[3:], UTM, sigma=0.5, model=model)  # b0 touches a2 only
    assert list(touching.class_a) == ["unmatched"] * 3 and list(touching.change_b) == ["removed"] * 3


def test_known_split_merge_new_removed(model):
    old = [square(0, 0, 20.0),                                           # 0: split in two (new 0, 1)
           square(100, 0, 15.0), square(115, 0, 15.0),                   # 1, 2: merged (new 2)
           square(200, 0, 12.0),                                         # 3: unchanged, moved by 0.3 m
           square(300, 0, 12.0),                                         # 4: extended (modified)
           square(400, 0, 12.0)]                                         # 5: removed
    new = [_rect(0, 0, 10, 20), _rect(10, 0, 20, 20),                 # 0, 1: the two halves of old 0
           _rect(100, 0, 130, 15),                                       # 2: old 1 and 2 as one
           square(200.3, 0.2, 12.0),
           _rect(300, 0, 312, 17),
           square(600, 0, 12.0)]                                         # 5: new
    result = match(np.array(new, dtype=object), np.array(old, dtype=object), UTM, sigma=0.5, model=model)
    assert list(result.class_a) == ["n:1", "n:1", "1:n", "1:1", "1:1", "unmatched"]
    assert list(result.change_a) == ["split", "split", "merged", "unchanged", "modified", "new"]
    assert list(result.change_b) == ["split", "merged", "merged", "unchanged", "modified", "removed"]
    assert result.group_a[0] == result.group_a[1] == result.group_b[0]
    assert result.partner_a[3] == 3 and result.partner_a[4] == 4 and result.partner_a[5] == -1
    assert 0.9 < result.p_a[3] <= 1.0
    limit = MatchThresholds().shape_offset_m
    assert result.shape_offset_a[3] < limit < result.shape_offset_a[4]


def test_api_on_plain_arrays_with_unusable_features(model):
    a = np.array([square(0, 0), None, square(50, 0), shapely.Polygon()], dtype=object)
    b = [square(0.2, 0.1), square(50, 0.3), None]
    result = match(a, b, UTM, sigma=[0.5, 0.5, 0.5, 0.5], model=model)
    assert result.group_a.dtype == np.int64 and result.partner_a.dtype == np.int64 and result.p_a.dtype == np.float64
    assert result.class_a.shape == (4,) and result.class_b.shape == (3,)
    assert list(result.class_a) == ["1:1", "unmatched", "1:1", "unmatched"]
    assert list(result.change_a) == ["unchanged", None, "unchanged", None]
    assert result.change_b[2] is None and result.group_b[2] == -1 and result.class_b[2] == "unmatched"
    assert (result.n_unusable_a, result.n_unusable_b) == (2, 1)
    assert list(result.partner_a) == [0, -1, 1, -1] and list(result.partner_b) == [0, 2, -1]
    with pytest.raises(ValueError):
        match(a, b, UTM, sigma=-1.0, model=model)


def _layers(seed=4, n_blocks=25, sigma=0.5):
    edits = generate_edits(seed, n_blocks=n_blocks, sigma=sigma)
    return (edits, prepare_layer(layer_to_lonlat(edits.input, edits.crs)),
            prepare_layer(layer_to_lonlat(edits.reference, edits.crs)))


def test_edits_have_consistent_truth_and_are_recovered(model):
    edits, layer_a, layer_b = _layers()
    assert shapely.is_valid(edits.input).all() and shapely.is_valid(edits.reference).all()
    assert set(edits.change_a) >= {"unchanged", "split", "new"} and "removed" in set(edits.change_b)
    again = generate_edits(4, n_blocks=25, sigma=0.5)
    assert all(shapely.equals_exact(again.input, edits.input, 0.0))
    result = match_layers(model, layer_a, layer_b, np.full(len(edits.input), 0.5))
    assert np.mean(result.class_a == edits.class_a) > 0.95 and np.mean(result.change_b == edits.change_b) > 0.95


def test_streamed_chunks_equal_one_chunk(model):
    edits, layer_a, layer_b = _layers(seed=5)
    sigma = np.full(len(edits.input), 0.5)
    one = match_layers(model, layer_a, layer_b, sigma, max_vertices=10**9, workers=1)
    chunks = []
    many = match_layers(model, layer_a, layer_b, sigma, max_vertices=200, workers=2,
                        progress=lambda fraction, text=None: chunks.append(fraction))
    assert len(chunks) > 5  # it really streamed
    for name in ("group_a", "group_b", "partner_a", "partner_b", "class_a", "class_b", "change_a", "change_b"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    for name in ("p_a", "p_b", "exact_iou_a", "shape_offset_a", "translation_p_a"):
        np.testing.assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-6, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(many.groups["p"], one.groups["p"], rtol=1e-6)
    assert one.n_pairs == many.n_pairs


def test_cancelled_returns_none(model):
    edits, layer_a, layer_b = _layers(seed=6, n_blocks=10)
    sigma = np.full(len(edits.input), 0.5)
    assert match_layers(model, layer_a, layer_b, sigma, cancelled=lambda: True) is None
    calls = []

    def after_first_chunk():
        calls.append(1)
        return len(calls) > 1

    assert match_layers(model, layer_a, layer_b, sigma, max_vertices=200,
                        cancelled=after_first_chunk) is None


def test_same_layer_never_matches_itself(model):
    geoms = np.array([square(0, 0), square(0.3, 0), square(100, 0)], dtype=object)
    layer = prepare_layer(layer_to_lonlat(geoms, UTM))
    ids = np.arange(3)
    result = match_layers(model, layer, layer, np.full(3, 0.5), ids_a=ids, ids_b=ids)
    assert list(result.partner_a) == [1, 0, -1] and result.class_a[2] == "unmatched"


def _random_edges(rng, n_a, n_b):
    flat = rng.choice(n_a * n_b, int(rng.integers(1, n_a * n_b + 1)), replace=False)
    n = len(flat)
    p = rng.random(n)
    return CandidateEdges(flat // n_b, flat % n_b, p, rng.random(n), rng.random(n))


def test_without_scipy_the_numpy_fallbacks_decide_the_same(monkeypatch):
    import sys

    rng = np.random.default_rng(21)
    cases = [(int(rng.integers(1, 7)), int(rng.integers(1, 7))) for _ in range(200)]
    cases = [(n_a, n_b, _random_edges(rng, n_a, n_b)) for n_a, n_b in cases]
    with_scipy = [decide(n_a, n_b, edges) for n_a, n_b, edges in cases]
    for name in ("scipy", "scipy.optimize", "scipy.sparse", "scipy.sparse.csgraph"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    for (n_a, n_b, edges), expected in zip(cases, with_scipy):
        got = decide(n_a, n_b, edges)
        assert np.array_equal(got.group_a, expected.group_a) and np.array_equal(got.group_b, expected.group_b)
        np.testing.assert_allclose(got.groups["p"], expected.groups["p"])
        total = np.nansum(edges.iou_mean[np.isin(edges.index_a * 100 + edges.index_b,
                                                  np.flatnonzero(got.partner_a >= 0) * 100
                                                  + got.partner_a[got.partner_a >= 0])])
        best = np.nansum(edges.iou_mean[np.isin(edges.index_a * 100 + edges.index_b,
                                                 np.flatnonzero(expected.partner_a >= 0) * 100
                                                 + expected.partner_a[expected.partner_a >= 0])])
        assert total == pytest.approx(best, abs=1e-9)


def test_numpy_hungarian_against_enumeration():
    from overlap_relevance.model.matching import _hungarian_numpy

    rng = np.random.default_rng(5)
    for _ in range(300):
        k, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        weight = np.where(rng.random((k, m)) < 0.3, 0.0, rng.random((k, m)))
        rows, cols = _hungarian_numpy(weight)
        assert len(rows) == min(k, m) and len(set(cols.tolist())) == len(cols) and len(set(rows.tolist())) == len(rows)
        table = {(a, b): weight[a, b] for a in range(k) for b in range(m)}
        assert weight[rows, cols].sum() == pytest.approx(_best_by_enumeration(k, m, table), abs=1e-9)
