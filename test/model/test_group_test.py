"""The group test of doubtful links (model/group_test.py): misfits of unions after one common shift, and
that it finds m:n groups at σ = 2 m that the pair model alone splits (validation edits)."""

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
