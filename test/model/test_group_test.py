"""The group test of doubtful links and the cut test of links (model/group_test.py): misfits of unions after one
common shift, bridges, and what both do on validation edits at σ = 2 m (m:n groups the pair model alone splits
found, wrong links removed)."""

import numpy as np
import shapely

from overlap_relevance.model import group_test
from overlap_relevance.model.match_model import load_match_model
from overlap_relevance.model.matching import MatchThresholds, candidate_edges, decide


def _box(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1)


def _misfits(sets_a, sets_b):
    set_of_a = np.repeat(np.arange(len(sets_a)), [len(s) for s in sets_a])
    set_of_b = np.repeat(np.arange(len(sets_b)), [len(s) for s in sets_b])
    geoms_a = np.array([g for s in sets_a for g in s], dtype=object)
    geoms_b = np.array([g for s in sets_b for g in s], dtype=object)
    return group_test.set_misfits(set_of_a, geoms_a, set_of_b, geoms_b, len(sets_a))


def test_misfit_removes_the_common_shift():
    misfit, total, shift = _misfits([[_box(0, 0, 10, 8)], [_box(0, 0, 10, 8)], [_box(0, 0, 4, 4)]],
                                    [[_box(2, -1, 12, 7)], [_box(0, 0, 10, 6)], []])
    assert np.allclose(shift[0], [-2.0, 1.0])
    assert abs(misfit[0]) < 1e-9  # the same shape moved: no misfit once aligned
    # 10 x 8 against 10 x 6 aligned on their centroids: 20 m² outside the smaller one
    assert abs(misfit[1] - 20.0) < 1e-9 and abs(total[1] - 140.0) < 1e-9
    assert misfit[2] == 16.0 and np.allclose(shift[2], 0.0)  # nothing to compare: the whole area


def test_m_n_pieces_agree_as_one_group_and_neighbours_do_not():
    old = [_box(0, 0, 10, 10), _box(10, 0, 20, 10)]
    move = (1.5, -1.0)
    # m:n: the two old houses re-split at x = 13, the pieces moved together
    new = [shapely.affinity.translate(_box(0, 0, 13, 10), *move),
           shapely.affinity.translate(_box(13, 0, 20, 10), *move)]
    apart, _, _ = _misfits([[new[0]], [new[1]]], [[old[0]], [old[1]]])
    merged, total, _ = _misfits([new], [old])
    # apart, each pair aligned on its own: 130 m² against 100 m², and 70 against 100: 30 m² each
    assert merged[0] < 1e-6 and np.allclose(apart, 30.0) and total[0] == 400.0
    # neighbours moved apart independently: one common shift fits them worse than one each
    new = [shapely.affinity.translate(old[0], 2.0, 0.5), shapely.affinity.translate(old[1], -1.5, 1.0)]
    apart, _, _ = _misfits([[new[0]], [new[1]]], [[old[0]], [old[1]]])
    merged, _, _ = _misfits([new], [old])
    assert apart.sum() < 1e-6 < merged[0]


def _run(seed, sigma, n_blocks, with_groups):
    from overlap_relevance.model.evaluation.source_matching import class_rows, link, prepared
    from overlap_relevance.model.scoring import load_model

    match_model = load_match_model()
    thresholds = MatchThresholds(p_edge=match_model.config["p_edge"])
    data = prepared(seed, sigma, n_blocks)
    edges = candidate_edges(load_model(), *data[1:], thresholds=thresholds)
    link(data, edges, thresholds, match_model.config["groups"] if with_groups else None)
    result = decide(len(data[0].input), len(data[0].reference), edges, thresholds)
    return class_rows(result, data[0]), edges, result


def test_group_test_finds_m_n_groups_the_pair_model_splits():
    from overlap_relevance.model.datasets.source_edits import VALIDATION_SEED

    before, _, _ = _run(VALIDATION_SEED, 2.0, 120, False)
    after, edges, result = _run(VALIDATION_SEED, 2.0, 120, True)
    assert edges.linked.any() and np.all(edges.q[edges.linked] < MatchThresholds().p_edge)
    assert after["m:n groups found"][0] >= before["m:n groups found"][0] + 3
    assert after["all"][0] > before["all"][0]
    # a linked pair's probability is the group test's
    linked_groups = np.unique(result.group_a[edges.index_a[edges.linked]])
    assert np.all(linked_groups >= 0) and np.all(np.isfinite(result.groups["p"][linked_groups]))


def test_without_doubtful_pairs_nothing_is_linked():
    from overlap_relevance.model.matching import CandidateEdges

    edges = CandidateEdges(np.array([0, 1]), np.array([0, 1]), np.ones(2), np.ones(2), np.ones(2),
                           np.array([0.99, 0.005]))
    rows = group_test.candidate_merges(edges, np.array([0, -1]), np.array([0, -1]), np.zeros(2, dtype=bool),
                                       np.ones(2, dtype=bool), np.ones(2, dtype=bool), 0.7)
    assert len(rows) == 0  # one pair is a link already, the other below Q_LOW


def test_large_groups_and_pairs_outside_the_domain_are_not_tested():
    from overlap_relevance.model.matching import CandidateEdges

    # input 0 and reference 0 are in a group of 13 (input 0 with reference 0..11); pair (1, 12) is doubtful too
    index_a = np.array([0] * 12 + [0, 1])
    index_b = np.array(list(range(12)) + [12, 12])
    q = np.r_[np.full(12, 0.99), 0.3, 0.3]
    edges = CandidateEdges(index_a, index_b, q, q, q, q)
    group_a = np.array([0, -1])
    group_b = np.r_[np.zeros(12, dtype=np.int64), -1]
    args = (edges, group_a, group_b, np.zeros(14, dtype=bool), np.ones(2, dtype=bool), np.ones(13, dtype=bool), 0.7)
    assert list(group_test.candidate_merges(*args)) == [13]  # 13 + 1 members would exceed MAX_MEMBERS
    assert len(group_test.candidate_merges(*args, eligible=np.zeros(14, dtype=bool))) == 0


def _edges(index_a, index_b, q=None):
    from overlap_relevance.model.matching import CandidateEdges

    index_a, index_b = np.asarray(index_a), np.asarray(index_b)
    q = np.full(len(index_a), 0.99) if q is None else np.asarray(q, dtype=float)
    return CandidateEdges(index_a, index_b, q, q, q, q)


def test_bridge_links_are_the_links_whose_removal_splits_the_group():
    # group 1: a0-b0, a0-b1, a1-b1 (a path: every link is a bridge); group 2: a2-b2, a2-b3, a3-b2, a3-b3 (a cycle:
    # no bridge); group 3: a4-b4 (two members: below CUT_MIN_MEMBERS)
    edges = _edges([0, 0, 1, 2, 2, 3, 3, 4], [0, 1, 1, 2, 3, 2, 3, 4])
    rows, member_row, member_node, member_side = group_test.bridge_links(edges, np.ones(8, dtype=bool), 5, 5)
    assert list(rows) == [0, 1, 2]
    n_a = 5
    sides = {}
    for c, row in enumerate(rows):
        here = member_row == c
        sides[row] = {int(node): int(side) for node, side in zip(member_node[here], member_side[here])}
    # cutting a0-b0 leaves b0 alone (side 1, with the link's reference end); the rest stays with a0 (side 0)
    assert sides[0] == {0: 0, 1: 0, n_a + 0: 1, n_a + 1: 0}
    # cutting a0-b1 splits {a0, b0} from {a1, b1}
    assert sides[1] == {0: 0, 1: 1, n_a + 0: 0, n_a + 1: 1}
    # cutting a1-b1 leaves a1 alone (side 0, with the link's input end)
    assert sides[2] == {0: 1, 1: 0, n_a + 0: 1, n_a + 1: 1}
    # links outside ``keep`` are not the graph's; ``eligible`` restricts the candidates
    rows, *_ = group_test.bridge_links(edges, np.r_[np.ones(7, dtype=bool), False], 5, 5,
                                       eligible=np.r_[False, True, True, np.ones(5, dtype=bool)])
    assert list(rows) == [1, 2]
    # no link at all (every candidate below the threshold): nothing to cut, and no error
    rows, *members = group_test.bridge_links(edges, np.zeros(8, dtype=bool), 5, 5)
    assert len(rows) == 0 and all(len(m) == 0 for m in members)


def test_a_cut_link_leaves_the_graph_with_the_cut_tests_probability():
    from overlap_relevance.model.matching import decide, edge_probability

    edges = _edges([0, 0, 1], [0, 1, 1])
    edges.cut, edges.cut_p = np.array([True, False, False]), np.array([0.12, np.nan, np.nan])
    result = decide(2, 2, edges, MatchThresholds(p_edge=0.7))
    assert result.group_b[0] == -1 and result.class_b[0] == "unmatched"  # b0's only link was cut
    assert result.group_a[0] == result.group_a[1] == result.group_b[1] >= 0
    assert np.allclose(edge_probability(edges), [0.12, 0.99, 0.99])


def test_cut_test_removes_wrong_links_at_two_metres():
    from overlap_relevance.model.datasets.source_edits import VALIDATION_SEED
    from overlap_relevance.model.evaluation.source_matching import class_rows, link, prepared
    from overlap_relevance.model.matching import kept_edges
    from overlap_relevance.model.scoring import load_model

    match_model = load_match_model()
    assert "cuts" in match_model.config
    thresholds = MatchThresholds(p_edge=match_model.config["p_edge"])
    data = prepared(VALIDATION_SEED, 2.0, 160)
    edits = data[0]
    edges = candidate_edges(load_model(), *data[1:], thresholds=thresholds)
    n_a, n_b = len(edits.input), len(edits.reference)
    usable = np.ones(n_a, dtype=bool), np.ones(n_b, dtype=bool)
    truth = edits.group_a[edges.index_a] == edits.group_b[edges.index_b]
    link(data, edges, thresholds, match_model.config["groups"])
    kept_before = kept_edges(edges, thresholds, *usable)
    before = class_rows(decide(n_a, n_b, edges, thresholds), edits)
    link(data, edges, thresholds, match_model.config["groups"], match_model.config["cuts"])
    kept_after = kept_edges(edges, thresholds, *usable)
    after = class_rows(decide(n_a, n_b, edges, thresholds), edits)
    assert edges.cut.any() and not np.any(kept_after & edges.cut)
    # wrong links of the graph fall by more than half (13 to 2 when written), right ones by under 2 % (905 to 897)
    assert np.sum(kept_after & ~truth) <= 0.5 * np.sum(kept_before & ~truth)
    assert np.sum(kept_after & truth) >= 0.98 * np.sum(kept_before & truth)
    assert after["all"][0] > before["all"][0]
    # a cut link's probability is the cut test's, below its threshold at 2 m
    assert np.all(edges.cut_p[edges.cut] < 0.5) and np.all(np.isnan(edges.cut_p[~edges.cut]))
