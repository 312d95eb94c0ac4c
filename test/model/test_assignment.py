"""The sparse one-to-one assignment (overlap_relevance.model.assignment): optimal, linear memory, no SciPy."""

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from overlap_relevance.model import matching
from overlap_relevance.model.assignment import EDGE_BONUS, max_weight_matching
from overlap_relevance.model.assignment_numba import compiled_solver
from tools.compiled import numba_missing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_assignment  # noqa: E402
from bench_assignment import building_graph  # noqa: E402

SCIPY_MODULES = ("scipy", "scipy.optimize", "scipy.sparse", "scipy.sparse.csgraph")


def _best_by_enumeration(k, m, rows, cols, weight):
    """(largest total weight, most edges among those) over all matchings, by trying every one."""
    table = {}
    for r, c, w in zip(rows.tolist(), cols.tolist(), np.maximum(weight, 0).tolist()):
        table[(r, c)] = max(w, table.get((r, c), -1.0))

    def best(row, used):  # (total rounded for comparing equals, edges, total)
        if row == k:
            return (0.0, 0, 0.0)
        value = best(row + 1, used)  # the row stays unmatched
        for col in range(m):
            if col not in used and (row, col) in table:
                rest = best(row + 1, used | {col})
                total = rest[2] + table[(row, col)]
                value = max(value, (round(total, 9), rest[1] + 1, total))
        return value

    _, edges, total = best(0, frozenset())
    return total, edges


def _random_graph(rng, k, m, ties):
    flat = rng.choice(k * m, int(rng.integers(1, k * m + 1)), replace=False)
    rows, cols = flat // m, flat % m
    weight = rng.choice([0.0, 0.5, 0.7, 1.0], len(flat)) if ties else rng.random(len(flat))
    return rows, cols, weight


def _check_matching(k, m, rows, cols, picked):
    assert np.all(np.diff(picked) > 0) and np.all((picked >= 0) & (picked < len(rows)))
    assert len(np.unique(rows[picked])) == len(picked) == len(np.unique(cols[picked]))


def test_optimal_against_enumeration_on_small_graphs_with_ties_duplicates_and_empty_rows():
    rng = np.random.default_rng(3)
    for case in range(1500):
        k, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        rows, cols, weight = _random_graph(rng, k, m, ties=case % 2 == 0)
        if case % 5 == 0:  # a pair given twice: it counts once, with its larger weight
            again = rng.integers(0, len(rows), 2)
            rows, cols = np.r_[rows, rows[again]], np.r_[cols, cols[again]]
            weight = np.r_[weight, rng.random(2)]
        if case % 7 == 0:  # rows and columns without any edge, and a negative weight (read as 0)
            k, m = k + 2, m + 1
            weight[0] = -0.3
        picked = max_weight_matching(k, m, rows, cols, weight, engine="numpy")
        _check_matching(k, m, rows, cols, picked)
        total, count = _best_by_enumeration(k, m, rows, cols, weight)
        assert np.maximum(weight[picked], 0).sum() == pytest.approx(total, abs=1e-9)
        assert len(picked) == count  # among the heaviest, one with the most edges


def test_of_duplicate_pairs_the_heaviest_is_returned():
    rows, cols, weight = np.array([0, 0, 0, 1]), np.array([0, 0, 0, 1]), np.array([0.2, 0.9, 0.9, 0.5])
    assert list(max_weight_matching(2, 2, rows, cols, weight, engine="numpy")) == [1, 3]


def test_disconnected_parts_and_both_orientations():
    rng = np.random.default_rng(4)
    for _ in range(100):
        parts = []
        offset_r = offset_c = 0
        for _ in range(3):  # three separate graphs side by side, solved at once and one by one
            k, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            rows, cols, weight = _random_graph(rng, k, m, ties=False)
            parts.append((rows + offset_r, cols + offset_c, weight))
            offset_r, offset_c = offset_r + k, offset_c + m
        rows, cols, weight = (np.concatenate(x) for x in zip(*parts))
        together = weight[max_weight_matching(offset_r, offset_c, rows, cols, weight, engine="numpy")].sum()
        apart = sum(w[max_weight_matching(offset_r, offset_c, r, c, w, engine="numpy")].sum() for r, c, w in parts)
        assert together == pytest.approx(apart, abs=1e-12)
        # the transposed problem has the same optimum
        flipped = weight[max_weight_matching(offset_c, offset_r, cols, rows, weight, engine="numpy")].sum()
        assert flipped == pytest.approx(together, abs=1e-12)


def test_same_optimum_as_scipy_dense_and_same_matching_as_scipy_sparse():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(5)
    for case in range(300):
        k, m = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        density = rng.uniform(0.02, 0.3)
        flat = rng.choice(k * m, max(1, int(density * k * m)), replace=False)
        rows, cols = flat // m, flat % m
        weight = 0.7 + 0.3 * rng.random(len(flat)) if case % 2 else rng.choice([0.7, 0.85, 1.0], len(flat))
        picked = max_weight_matching(k, m, rows, cols, weight, engine="numpy")
        _check_matching(k, m, rows, cols, picked)
        matrix = np.zeros((k, m))  # a non-edge cell is worth 0: the same as leaving both unmatched
        matrix[rows, cols] = weight + EDGE_BONUS
        r, c = scipy_optimize.linear_sum_assignment(matrix, maximize=True)
        assert (weight[picked] + EDGE_BONUS).sum() == pytest.approx(matrix[r, c].sum(), abs=1e-9)
        reference = matching.scipy_sparse_assignment(k, m, rows, cols, weight)
        assert (weight[picked] + EDGE_BONUS).sum() == pytest.approx((weight[reference] + EDGE_BONUS).sum(), abs=1e-9)
        if case % 2:  # continuous weights: the optimum is unique, so the matchings are the same
            assert np.array_equal(picked, reference)


def test_numba_gives_the_same_matching_as_numpy():
    if numba_missing(compiled_solver()):
        pytest.skip("numba is not installed (never required)")
    rng = np.random.default_rng(6)
    for case in range(600):
        k, m = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        rows, cols, weight = _random_graph(rng, k, m, ties=case % 2 == 0)
        assert np.array_equal(max_weight_matching(k, m, rows, cols, weight, engine="numpy"),
                              max_weight_matching(k, m, rows, cols, weight, engine="numba"))
    rows, cols, weight, n = building_graph(2_500, "denser", seed=1, weights="contested")
    assert np.array_equal(max_weight_matching(n, n, rows, cols, weight, engine="numpy"),
                          max_weight_matching(n, n, rows, cols, weight, engine="numba"))


def test_auto_compiles_only_for_large_graphs(monkeypatch):
    """numba's import and compilation cost seconds once per process: "auto" takes NumPy below
    NUMBA_MIN_EDGES whether numba is installed or not (the same matching either way)."""
    from overlap_relevance.model import assignment, assignment_numba

    asked = []
    monkeypatch.setattr(assignment_numba, "compiled_solver", lambda: asked.append(1))  # as without numba
    rows, cols, weight = np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([0.8, 0.9, 0.7])
    small = max_weight_matching(2, 2, rows, cols, weight)
    assert not asked
    monkeypatch.setattr(assignment, "NUMBA_MIN_EDGES", 3)
    assert np.array_equal(max_weight_matching(2, 2, rows, cols, weight), small) and asked


def test_bad_input_is_refused_and_no_edges_is_no_match():
    assert len(max_weight_matching(3, 3, [], [], [])) == 0
    with pytest.raises(ValueError, match="outside"):
        max_weight_matching(2, 2, [0, 2], [0, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="one length"):
        max_weight_matching(2, 2, [0, 1], [0], [0.5, 0.5])
    with pytest.raises(ValueError, match="infinite"):
        max_weight_matching(2, 2, [0, 1], [0, 1], [np.inf, 0.5])
    # a NaN weight counts as 0: the edge is still better than no edge, but never than a weighted one
    assert list(max_weight_matching(2, 2, [0, 0, 1], [0, 1, 1], [np.nan, 0.5, 0.9], engine="numpy")) == [0, 2]
    with pytest.raises(ValueError, match="engine"):
        max_weight_matching(2, 2, [0], [0], [0.5], engine="fast")


def test_a_10000_feature_component_in_memory_linear_in_the_edges(monkeypatch):
    """10,000 features per layer in one component (46,000 edges): the dense matrices would take 1.6 GB;
    the sparse solver allocates a few MB, needs no SciPy, and assign_one_to_one sends the component there."""
    rows, cols, weight, n = building_graph(10_000, "sparse", seed=2)
    label_a, _ = matching.components(n, n, rows, cols)
    assert np.all(label_a == 0)  # one component
    for name in SCIPY_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # importing SciPy now fails
    tracemalloc.start()
    try:
        picked = max_weight_matching(n, n, rows, cols, weight, engine="numpy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak  # NumPy's arrays are traced; 1.6 GB dense
    _check_matching(n, n, rows, cols, picked)
    called = []
    monkeypatch.setattr(matching, "sparse_assignment", lambda *a: called.append(1) or max_weight_matching(*a))
    _, _, chosen = matching.assign_one_to_one(n, n, rows, cols, weight)
    assert called and np.array_equal(chosen, picked)
    monkeypatch.undo()
    try:
        import scipy  # noqa: F401
    except ImportError:
        return
    _, _, with_scipy = matching.assign_one_to_one(n, n, rows, cols, weight)
    assert np.array_equal(with_scipy, chosen)  # the same decision whether SciPy is installed or not
    reference = matching.scipy_sparse_assignment(n, n, rows, cols, weight)
    assert weight[picked].sum() == pytest.approx(weight[reference].sum(), abs=1e-7)


def test_the_benchmark_solvers_agree_on_a_small_component():
    """bench_assignment.py's harness (not timed here): every installed solver finds the same total."""
    totals = {}
    for solver in bench_assignment.SOLVERS:
        if bench_assignment._available(solver):
            result = bench_assignment.run_one(solver, 400, "denser/contested", seed=3)
            assert result["peak_rss_mib"] >= result["rss_before_mib"] > 0
            totals[solver] = result["total"]
    assert "sparse_numpy" in totals and "dense_numpy" in totals
    assert max(totals.values()) - min(totals.values()) < 1e-9, totals


@pytest.mark.slow
@pytest.mark.parametrize("density", ["sparse", "denser"])
def test_measured_10000_feature_components(density):
    """Seconds of the NumPy solver on 10,000 x 10,000 building-like components, q-like and contested
    weights (test/benchmarks/bench_assignment.py compares it with the other solvers)."""
    for weights in ("q", "contested"):
        rows, cols, w, n = building_graph(10_000, density, seed=0, weights=weights)
        started = time.perf_counter()
        picked = max_weight_matching(n, n, rows, cols, w, engine="numpy")
        seconds = time.perf_counter() - started
        print(f"{density} {weights}: {len(rows)} edges, {seconds:.2f} s, {len(picked)} matched")
        _check_matching(n, n, rows, cols, picked)
        assert seconds < 60
