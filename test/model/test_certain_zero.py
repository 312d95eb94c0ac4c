"""No noise floor: a pair that cannot overlap under its σ gets an overlap of exactly 0 (issue 16)."""

import numpy as np
import shapely

from overlap_relevance.model.encoding import CERTAIN_GAP_SIGMAS, pair_descriptors
from overlap_relevance.model.scoring import load_model, summarise_overlap

SQUARE = shapely.box(0, 0, 10, 10)


def _pairs(gaps):
    return (np.array([SQUARE] * len(gaps), dtype=object),
            np.array([shapely.box(10 + g, 0, 20 + g, 10) for g in gaps], dtype=object))


def test_beyond_six_sigma_the_overlap_is_exactly_zero():
    sigma = 0.5
    a, b = _pairs([3.01, 5.0, 50.0])  # gaps beyond 6σ = 3 m
    overlap, _ = load_model().predict_frames(a, b, sigma)
    summary = summarise_overlap(overlap, threshold=0.1)
    for values in (summary.iou_mean, summary.iou_sd, summary.cover_a_mean, summary.cover_b_mean, summary.p_iou):
        assert np.all(values == 0.0)


def test_within_six_sigma_the_network_decides():
    sigma = 1.0
    a, b = _pairs([0.5, 2.0])
    _, context = pair_descriptors(a, b, sigma)
    assert not context["cannot_overlap"].any()
    overlap, _ = load_model().predict_frames(a, b, sigma)
    assert np.all(summarise_overlap(overlap).iou_mean > 0)  # a displacement of 0.5 or 2 σ is plausible


def test_at_sigma_zero_disjoint_and_touching_pairs_are_zero_and_overlapping_ones_are_not():
    a, b = _pairs([0.0, 1.0, -5.0])  # touching, apart, half overlapping
    _, context = pair_descriptors(a, b, 0.0)
    assert list(context["cannot_overlap"]) == [True, True, False]
    summary = summarise_overlap(load_model().predict_frames(a, b, 0.0)[0])
    assert summary.iou_mean[0] == 0.0 and summary.iou_mean[1] == 0.0
    assert abs(summary.iou_mean[2] - 1 / 3) < 0.02


def test_the_rule_follows_the_gap_per_pair():
    sigma = np.array([0.1, 1.0])
    a, b = _pairs([1.0, 1.0])  # 10σ and 1σ
    _, context = pair_descriptors(a, b, sigma)
    assert list(context["cannot_overlap"]) == [True, False]
    assert CERTAIN_GAP_SIGMAS == 6.0  # exp(-18) ≈ 1.5e-8: the model card quotes this


def test_at_sigma_zero_a_rounding_sliver_of_a_shared_border_is_touching():
    a = np.array([SQUARE, SQUARE], dtype=object)
    b = np.array([shapely.box(10 - 1e-9, 0, 20, 10), shapely.box(9.9, 0, 20, 10)], dtype=object)  # 1e-8 m², 1 m²
    _, context = pair_descriptors(a, b, 0.0)
    assert list(context["cannot_overlap"]) == [True, False]
    _, context = pair_descriptors(a, b, 0.5)  # under displacement the sliver is a real contact: the network decides
    assert not context["cannot_overlap"].any()
