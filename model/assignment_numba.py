"""The shortest-augmenting-path search of :mod:`.assignment`, compiled with numba where numba imports.

Never required (QGIS need not have numba): :func:`compiled_solver` returns None without it, and the NumPy
loop runs instead. The same start (:func:`.assignment.greedy_start`), the same order of rows, the same
arithmetic in the same order and the same tie rules (the heap orders by (distance, column)), so the two
give the same matching (checked in test/model/test_assignment.py where numba imports).
"""

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def compiled_solver():
    """The compiled search, search(m, ptr, col, cost, col_of, row_of, u, roots, free, unmatched), which
    :func:`.assignment.solve_compiled` runs after the same greedy start as :func:`.assignment.solve_numpy`;
    None without numba. (This module imports nothing of :mod:`.assignment`: the constants come as arguments.)"""
    try:
        import heapq

        import numba
    except ImportError:
        return None

    @numba.njit(cache=False, nogil=True)
    def search(m, ptr, col, cost, col_of, row_of, u, roots, free, unmatched):
        v = np.zeros(m)
        dist = np.full(m, np.inf)
        pred = np.zeros(m, dtype=np.int64)
        touched = np.empty(col.size + 1, dtype=np.int64)  # a column enters at most once per edge
        scanned = np.empty(m + 1, dtype=np.int64)
        scanned_at = np.empty(m + 1)
        for root in roots:
            heap = [(0.0, np.int64(0))]
            heap.pop()
            n_touched = 0
            n_scanned = 0
            i = root
            base = 0.0
            exit_cost = np.inf
            exit_row = -1
            sink = -1
            length = 0.0
            while True:
                for e in range(ptr[i], ptr[i + 1]):
                    j = col[e]
                    reduced = base + cost[e] - v[j]
                    if reduced < dist[j]:
                        dist[j] = reduced
                        pred[j] = i
                        touched[n_touched] = j
                        n_touched += 1
                        heapq.heappush(heap, (reduced, j))
                if base < exit_cost:
                    exit_cost = base
                    exit_row = i
                while len(heap) > 0 and heap[0][0] > dist[heap[0][1]]:
                    heapq.heappop(heap)
                if len(heap) == 0 or heap[0][0] > exit_cost or (
                        heap[0][0] == exit_cost and row_of[heap[0][1]] != free):
                    sink = -1
                    length = exit_cost
                    break
                length, j = heapq.heappop(heap)
                dist[j] = -np.inf
                if row_of[j] == free:
                    sink = j
                    break
                scanned[n_scanned] = j
                scanned_at[n_scanned] = length
                n_scanned += 1
                i = row_of[j]
                base = length - u[i]
            for s in range(n_scanned):
                j = scanned[s]
                gain = length - scanned_at[s]
                u[row_of[j]] += gain
                v[j] -= gain
            u[root] += length
            if sink < 0:
                j = col_of[exit_row]
                col_of[exit_row] = unmatched
                i = exit_row
            else:
                j = sink
                i = -1
            while i != root:
                i = pred[j]
                row_of[j] = i
                previous = col_of[i]
                col_of[i] = j
                j = previous
            for t in range(n_touched):
                dist[touched[t]] = np.inf

    return search
