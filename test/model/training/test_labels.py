"""Several displacement labels per training pair: the generator's one, then ``labels`` more of the same law."""

import numpy as np

from overlap_relevance.model.training import train as T


def test_dataset_has_the_generators_label_then_independent_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CACHE", tmp_path)
    one = T.dataset(200, 5, progress=False, labels=0)
    many = T.dataset(200, 5, progress=False, labels=6)
    assert one["overlap"].shape == (200, 2) and many["overlap"].shape == (200, 7, 2)
    np.testing.assert_array_equal(many["overlap"][:, 0], one["overlap"])  # the generator's own label first
    np.testing.assert_array_equal(many["x"], one["x"])
    still = one["sigma"] == 0
    assert still.any() and (~still).any()
    # σ = 0: every label is the exact overlap; σ > 0: the draws differ where the overlap can change
    np.testing.assert_array_equal(many["overlap"][still], np.repeat(one["overlap"][still][:, None], 7, axis=1))
    moved = many["overlap"][~still]
    assert np.mean(np.ptp(moved[..., 0], axis=1) > 0) > 0.3
    assert T.cache_path(200, 5, 6).exists() and T.cache_path(200, 5, 0).exists()
    again = T.dataset(200, 5, progress=False, labels=6)  # from the cache, the same
    np.testing.assert_array_equal(again["overlap"], many["overlap"])
