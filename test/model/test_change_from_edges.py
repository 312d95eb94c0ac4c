"""The 1:1 change test read from what candidate_edges measured (no second GEOS overlay per pair) equals the
change test run on the pairs again, on validation edits; pairs it cannot read come back NaN."""

import numpy as np
import pytest

from overlap_relevance.model.matching import candidate_edges, change_test, decide, change_numbers_from_edges


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_change_test_from_edges_equals_the_change_test(sigma):
    from overlap_relevance.model.datasets.source_edits import VALIDATION_SEED
    from overlap_relevance.model.evaluation.source_matching import prepared
    from overlap_relevance.model.scoring import load_model

    data = prepared(VALIDATION_SEED, sigma, 60)
    edits = data[0]
    edges = candidate_edges(load_model(), *data[1:])
    result = decide(len(edits.input), len(edits.reference), edges)
    one = np.flatnonzero((result.class_a == "1:1") & (result.partner_a >= 0))
    assert len(one) > 100
    again = change_test(data[1].source, data[2].source, data[3], one, result.partner_a[one])
    read = change_numbers_from_edges(edges, one, result.partner_a[one], len(edits.reference), data[3])
    assert np.all(np.isnan(read[0]))  # the raw exact IoU is not read (only asked for with exact_iou)
    for column, expected in zip(read[1:], again[1:]):
        assert np.allclose(column, expected, rtol=1e-9, atol=1e-9)
    # a pair that is no candidate, and a pair whose feature was simplified, are not read
    edges.aligned[4][:] = False
    assert np.all(np.isnan(change_numbers_from_edges(edges, one[:5], result.partner_a[one[:5]],
                                                     len(edits.reference), data[3])[1]))
    n_b = len(edits.reference) + 9
    missing = change_numbers_from_edges(edges, np.array([0]), np.array([n_b - 4]), n_b, data[3])
    assert np.isnan(missing[1][0])
