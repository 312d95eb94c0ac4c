"""weakest_links (all groups bisected at once) against Kruskal's maximum spanning tree, group by group."""

import numpy as np

from overlap_relevance.model import matching


def _kruskal_weakest(n_a, index_a, index_b, probability, edge_group, n_groups):
    out = np.full(n_groups, np.nan)
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for g in range(n_groups):
        parent.clear()
        weakest = np.nan
        for e in sorted(np.flatnonzero(edge_group == g), key=lambda e: -probability[e]):
            ra, rb = find(int(index_a[e])), find(int(index_b[e]) + n_a)
            if ra != rb:
                parent[ra] = rb
                weakest = probability[e]  # the last edge the tree takes is its weakest
        out[g] = weakest
    return out


def test_weakest_links_equals_a_maximum_spanning_tree():
    rng = np.random.default_rng(7)
    for trial in range(200):
        n_a, n_b = (int(v) for v in rng.integers(1, 25, 2))
        m = int(rng.integers(1, 50))
        index_a, index_b = rng.integers(0, n_a, m), rng.integers(0, n_b, m)
        # ties (few distinct values) and continuous values
        p = rng.choice([0.2, 0.5, 0.7, 0.9, 1.0], m) if trial % 2 else rng.random(m)
        group_a, _ = matching.components(n_a, n_b, index_a, index_b)
        edge_group = group_a[index_a]
        n_groups = int(edge_group.max()) + 1
        got = matching.weakest_links(n_a, n_b, index_a, index_b, p, edge_group, n_groups)
        assert np.array_equal(got, _kruskal_weakest(n_a, index_a, index_b, p, edge_group, n_groups), equal_nan=True)
