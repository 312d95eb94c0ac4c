"""Maximum-weight one-to-one assignment over the edges of a sparse bipartite graph, in memory linear in
the edges, with NumPy alone (QGIS need not have SciPy).

The problem: k features of one layer (rows), m of the other (columns), E candidate edges (row, column,
weight >= 0). Find the matching (no row or column used twice, only over edges, any feature may stay
unmatched) of largest total weight; among matchings of equal weight, one with more edges (every edge
carries a bonus :data:`EDGE_BONUS`, as the dense solver's matrix does with its smaller bonus).

Method: successive shortest augmenting paths with potentials (the rectangular Hungarian method of
Jonker-Volgenant / Crouse, 2016, on a sparse graph). Costs are -(weight + bonus); every row also has a
private "stay unmatched" column of cost 0, so a full assignment of the rows always exists and its
least cost is minus the heaviest matching. A row that ends on its private column can never be reached
again (only it links to that column), so it is dropped for good. Rows are taken one at a time; for each,
Dijkstra's search over reduced costs (nonnegative on every edge of the rows already placed) finds the
cheapest way to place it, moving earlier rows along the path; the potentials are then updated so that
the reduced costs stay nonnegative and vanish on the matching. After each row the matching is optimal
for the rows taken so far, so the last one is optimal. Before the searches, every row whose cheapest
column no cheaper row wants takes it (vectorised): that already satisfies the optimality conditions for
those rows and leaves only the contested rows to search.

Memory: the edges in CSR order plus a few arrays of k and m. Time: one search per contested row, each
scanning only the rows its path can reach: a building-like component of 10,000 features per layer takes
0.04-0.2 s in NumPy, 1-4 s where every neighbour competes with similar weights
(test/benchmarks/RESULTS_ASSIGNMENT.md). The search's loop is in Python, each scanned row's relaxation
one NumPy step over that row's edges; :mod:`.assignment_numba` compiles the same loop where numba
imports (the same arithmetic in the same order: the same matching).
"""

import heapq
from functools import partial

import numpy as np

#: Added to every edge's weight: among matchings of equal weight the solver prefers more edges.
EDGE_BONUS = 1e-9
#: engine="auto" compiles with numba only from this many edges on: numba's import and compilation take
#: ~2.6 s once per process, more than NumPy needs below it (0.1-4 s at 150,000 edges; 0.6-17 s NumPy
#: against 0.4-1.2 s compiled at 500,000 edges, test/benchmarks/RESULTS_ASSIGNMENT.md and the report).
NUMBA_MIN_EDGES = 300_000
_FREE = -1
_UNMATCHED = -2  # a row placed on its private "stay unmatched" column: final


def max_weight_matching(k, m, rows, cols, weight, engine="auto"):
    """(s,) positions, ascending, into the edge arrays of a maximum-weight one-to-one matching.

    k, m : numbers of rows and columns; rows, cols : (E,) the edges' ends (0 <= rows < k, 0 <= cols < m);
    weight : (E,) >= 0 (negative and NaN weights are read as 0, +inf is refused). A pair given twice
    counts once, with its larger weight (the position returned is that one's, the first of equals).
    engine : "numpy", "numba" (:mod:`.assignment_numba`, ImportError without numba) or "auto" (numba where
    it imports and the graph has at least :data:`NUMBA_MIN_EDGES` edges); all give the same matching.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    if not (rows.shape == cols.shape == weight.shape) or rows.ndim != 1:
        raise ValueError("rows, cols and weight must be 1-D arrays of one length")
    if np.isposinf(weight).any():
        raise ValueError("an edge weight is infinite")
    weight = np.where(weight > 0, weight, 0.0)  # negative and NaN weights count as 0
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    if rows.min() < 0 or rows.max() >= k or cols.min() < 0 or cols.max() >= m:
        raise ValueError("an edge names a row or column outside 0..k-1 / 0..m-1")
    solve = _engine(engine, len(rows))
    transposed = k > m  # one search per row at most: search from the smaller side
    if transposed:
        k, m, rows, cols = m, k, cols, rows
    # CSR by row, one entry per (row, column): the heaviest of duplicates, the first of equals
    order = np.lexsort((np.arange(len(rows)), -weight, cols, rows))
    keep = np.r_[True, (np.diff(rows[order]) != 0) | (np.diff(cols[order]) != 0)]
    edge = order[keep]
    col = cols[edge]
    cost = -(weight[edge] + EDGE_BONUS)
    ptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[edge], minlength=k), out=ptr[1:])
    col_of = solve(k, m, ptr, col, cost)
    placed = np.flatnonzero(col_of >= 0)
    key = rows[edge] * m + col  # ascending: the CSR order is (row, column)
    return np.sort(edge[np.searchsorted(key, placed * m + col_of[placed])])


def _engine(engine, n_edges):
    if engine == "numpy" or (engine == "auto" and n_edges < NUMBA_MIN_EDGES):
        return solve_numpy
    if engine in ("numba", "auto"):
        from .assignment_numba import compiled_solver

        search = compiled_solver()
        if search is not None:
            return partial(solve_compiled, search)
        if engine == "numba":
            raise ImportError("numba is not installed; use engine='numpy' (the same matching)")
        return solve_numpy
    raise ValueError(f"engine must be 'numpy', 'numba' or 'auto', not {engine!r}")


def greedy_start(k, m, ptr, col, cost):
    """Every row's cheapest column (the lowest column of equals), given to the cheapest row that wants it
    (the lowest row of equals): col_of (k,) (-1 none yet, -2 for a row without edges), row_of (m,), and
    the row potentials u (k,) that make the reduced costs of those rows nonnegative with column
    potentials 0 and zero on their matching."""
    degree = np.diff(ptr)
    row = np.repeat(np.arange(k), degree)
    order = np.lexsort((col, cost, row))  # rows in order, each row's edges by cost, then column
    has = np.flatnonzero(degree > 0)
    best = order[ptr[has]]
    want, price = col[best], cost[best]
    first = np.lexsort((has, price, want))
    winner = first[np.r_[True, np.diff(want[first]) != 0]]
    col_of = np.full(k, _FREE, dtype=np.int64)
    col_of[degree == 0] = _UNMATCHED
    row_of = np.full(m, _FREE, dtype=np.int64)
    u = np.zeros(k)
    col_of[has[winner]] = want[winner]
    row_of[want[winner]] = has[winner]
    u[has[winner]] = price[winner]
    return col_of, row_of, u


def solve_compiled(search, k, m, ptr, col, cost):
    """:func:`solve_numpy` with the search compiled (:func:`.assignment_numba.compiled_solver`): the same
    greedy start, the same arithmetic in the same order, so the same matching."""
    col_of, row_of, u = greedy_start(k, m, ptr, col, cost)
    roots = np.flatnonzero(col_of == _FREE).astype(np.int64)
    search(m, ptr, col.astype(np.int64), cost.astype(np.float64), col_of, row_of, u, roots, _FREE, _UNMATCHED)
    return col_of


def solve_numpy(k, m, ptr, col, cost):
    """col_of (k,): the column of each row in a least-cost assignment where every row takes a column of
    its CSR slice (ptr (k+1,), col, cost (E,) < 0) or its private column of cost 0 (-2 there)."""
    col_of, row_of, u = greedy_start(k, m, ptr, col, cost)
    v = np.zeros(m)
    dist = np.full(m, np.inf)  # tentative distance of a column in this search; -inf once it is final
    pred = np.zeros(m, dtype=np.int64)
    starts = ptr.tolist()
    for root in np.flatnonzero(col_of == _FREE).tolist():
        heap, touched, scanned, scanned_at = [], [], [], []
        i, base = root, 0.0  # base: the row's distance minus its potential (the root's starts at 0)
        exit_cost, exit_row = np.inf, -1  # the cheapest way found to leave a row unmatched
        while True:
            a, b = starts[i], starts[i + 1]
            js = col[a:b]
            reduced = base + cost[a:b] - v[js]
            better = reduced < dist[js]  # never a final column (-inf)
            jb, rb = js[better], reduced[better]
            dist[jb] = rb
            pred[jb] = i
            touched.append(jb)
            for item in zip(rb.tolist(), jb.tolist()):
                heapq.heappush(heap, item)
            if base < exit_cost:  # row i onto its private column (cost 0, potential 0)
                exit_cost, exit_row = base, i
            while heap and heap[0][0] > dist[heap[0][1]]:  # stale or final
                heapq.heappop(heap)
            if not heap or heap[0][0] > exit_cost or (heap[0][0] == exit_cost and row_of[heap[0][1]] != _FREE):
                sink, length = -1, exit_cost
                break
            length, j = heapq.heappop(heap)
            dist[j] = -np.inf
            if row_of[j] == _FREE:
                sink = j
                break
            scanned.append(j)
            scanned_at.append(length)
            i = row_of[j]
            base = length - u[i]
        # potentials: the rows and columns reached before the sink move by how much nearer they were
        if scanned:
            s = np.array(scanned, dtype=np.int64)
            gain = length - np.array(scanned_at)
            u[row_of[s]] += gain
            v[s] -= gain
        u[root] += length
        # augment along the path
        if sink < 0:
            j = col_of[exit_row]
            col_of[exit_row] = _UNMATCHED
            i = exit_row
        else:
            j, i = sink, -1
        while i != root:
            i = pred[j]
            row_of[j] = i
            col_of[i], j = j, col_of[i]
        dist[np.concatenate(touched)] = np.inf
    return col_of
