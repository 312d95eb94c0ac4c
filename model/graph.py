"""Connected components of the match graph (NumPy, SciPy where installed): shared by :mod:`.matching` and
:mod:`.group_test`, which :mod:`.matching` imports."""

import numpy as np


def components(n_a, n_b, index_a, index_b):
    """Connected components of the bipartite graph: labels (n_a,), (n_b,) with -1 for isolated nodes,
    renumbered 0..g-1 in order of their smallest member (input first)."""
    n = n_a + n_b
    labels = connected_labels(n, index_a, index_b + n_a)
    linked = np.zeros(n, dtype=bool)
    linked[index_a] = True
    linked[index_b + n_a] = True
    labels = np.where(linked, labels, -1)
    kept = np.flatnonzero(linked)
    unique, first = np.unique(labels[kept], return_index=True)
    order = np.argsort(first, kind="stable")
    renumber = np.full(n, -1, dtype=np.int64)
    renumber[unique[order]] = np.arange(len(unique))
    out = np.where(linked, renumber[np.maximum(labels, 0)], -1)
    return out[:n_a], out[n_a:]


def connected_labels(n, u, v):
    """(n,) component label of every node of the undirected graph with edges (u, v): SciPy's
    connected_components where SciPy is installed, else label propagation with pointer jumping
    (NumPy; the plugin's runtime needs no SciPy)."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
    except ImportError:
        labels = np.arange(n, dtype=np.int64)
        while True:  # each pass halves the distances to the smallest label, at least
            low = np.minimum(labels[u], labels[v])
            before = labels.copy()
            np.minimum.at(labels, u, low)
            np.minimum.at(labels, v, low)
            labels = labels[labels]
            while not np.array_equal(labels, labels[labels]):
                labels = labels[labels]
            if np.array_equal(labels, before):
                return labels
    graph = coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)
