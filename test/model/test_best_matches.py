"""Best matches gathered chunk by chunk, and when a feature's best match is final (for streamed writing)."""

from types import SimpleNamespace

import numpy as np
import pytest
import shapely

from overlap_relevance.model import load_model
from overlap_relevance.model.frame import layer_to_lonlat
from overlap_relevance.model.preparation import prepare_layer
from overlap_relevance.model.scoring import BestMatches, best_matches, score_candidate_pairs

COLUMNS = BestMatches.COLUMNS


def fake_chunk(index_a, index_b, iou, rng):
    summary = SimpleNamespace(iou_mean=iou, **{name: rng.uniform(size=len(iou)) for name in COLUMNS[1:]})
    return SimpleNamespace(index_a=index_a, index_b=index_b, summary=summary)


@pytest.mark.parametrize("seed", range(5))
def test_chunk_by_chunk_equals_all_pairs_at_once(seed):
    rng = np.random.default_rng(seed)
    n_a, n_pairs = 50, 400
    index_a = np.sort(rng.integers(0, n_a, n_pairs))
    index_b = rng.integers(0, 1000, n_pairs)
    iou = rng.choice([0.0, 0.25, 0.5, 1.0, np.nan], n_pairs)  # many ties, some NaN
    cuts = np.sort(rng.choice(np.arange(1, n_pairs), 12, replace=False))
    gathered = BestMatches(n_a)
    chunks = []
    for part in np.split(np.arange(n_pairs), cuts):
        chunk = fake_chunk(index_a[part], index_b[part], iou[part], rng)
        chunks.append(chunk)
        gathered.add(chunk)
    every = {name: np.concatenate([getattr(c.summary, name) for c in chunks]) for name in COLUMNS}
    best, count = best_matches(index_a, every["iou_mean"], n_a, index_b)
    assert gathered.count.tolist() == count.tolist()
    has = best >= 0
    assert gathered.index_b.tolist() == np.where(has, index_b[np.maximum(best, 0)], -1).tolist()
    expected = np.column_stack([np.where(has, every[name][np.maximum(best, 0)], 0.0) for name in COLUMNS])
    np.testing.assert_array_equal(gathered.values, expected)


@pytest.mark.parametrize("seed", range(3))
def test_ties_go_to_the_first_reference_feature_whatever_the_order_of_the_pairs(seed):
    """So that the Dask engine, which finds the pairs of a bucket in another order, picks the same match."""
    rng = np.random.default_rng(seed)
    n_a = 30
    index_a = rng.integers(0, n_a, 300)
    index_b = rng.integers(0, 50, 300)
    iou = rng.choice([0.0, 0.5, np.nan], 300)  # exact zeros tie often since pairs apart score exactly 0
    best, _ = best_matches(index_a, iou, n_a, index_b)
    shuffled = rng.permutation(300)
    again, _ = best_matches(index_a[shuffled], iou[shuffled], n_a, index_b[shuffled])
    has = best >= 0
    assert np.array_equal(index_b[best[has]], index_b[shuffled][again[has]])
    for a in np.flatnonzero(has):
        mine = (index_a == a)
        score = np.where(np.isnan(iou[mine]), -np.inf, iou[mine])
        top = score == score.max()
        assert index_b[best[a]] == index_b[mine][top].min()


def test_complete_before_is_never_contradicted_by_a_later_chunk():
    rng = np.random.default_rng(3)
    x0, y0 = 400_000.0, 5_800_000.0
    offsets = rng.uniform(0, 3000, (600, 2))
    a = shapely.box(x0 + offsets[:, 0], y0 + offsets[:, 1], x0 + offsets[:, 0] + 40, y0 + offsets[:, 1] + 40)
    b = shapely.box(x0 + offsets[:, 0] + 10, y0 + offsets[:, 1], x0 + offsets[:, 0] + 50, y0 + offsets[:, 1] + 40)
    big = shapely.Polygon(shapely.buffer(shapely.Point(x0 + 1500, y0 + 1500), 700, quad_segs=200).exterior)
    b = np.r_[b, big]  # a large reference feature with many partners
    layers = [prepare_layer(layer_to_lonlat(geoms, "EPSG:32633")).model for geoms in (a, b)]
    chunks = list(score_candidate_pairs(load_model(), *layers, np.full(len(a), 0.5), max_vertices=2_000))
    assert len(chunks) > 5
    for k, chunk in enumerate(chunks):
        assert chunk.complete_before > 0
        later = [c.index_a for c in chunks[k + 1:]]
        if later:
            assert np.concatenate(later).min() >= chunk.complete_before
    assert chunks[-1].complete_before == len(a)
