"""The one-to-one assignment of one large connected component: the sparse NumPy solver
(model/assignment.py) against the dense NumPy Hungarian method, SciPy's dense linear_sum_assignment and
SciPy's sparse LAPJVsp (min_weight_full_bipartite_matching), on building-like graphs.

A graph: n features of each layer on a jittered grid (one building per cell), the second layer the first
one moved by noise; an edge joins every pair closer than a radius (sparse: about 4.6 edges per feature;
denser: about 15), of weight falling from 1 to p_edge = 0.7 with the distance, as the pair model's q
does. Every graph is one connected component (reported). Each solver runs in its own process: the wall
time of the solve and the process's peak RSS, next to its RSS before the solve (the graph alone).

Usage: ``bench_assignment.py`` (writes test/benchmarks/RESULTS_ASSIGNMENT.md and results_assignment.json);
``--quick`` for small sizes into build/bench/. A dense solver whose matrices would not fit
``--dense-limit-gb`` is reported as skipped.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

SOLVERS = ("sparse_numpy", "sparse_numba", "scipy_sparse", "dense_numpy", "scipy_dense")
DENSITY = {"sparse": 1.2, "denser": 2.2}  # edge radius in grid spacings
GRAPHS = ("sparse/q", "denser/q", "sparse/contested", "denser/contested")
P_EDGE = 0.7


def building_graph(n, density="sparse", seed=0, weights="q"):
    """(rows, cols, weight, n) of a building-like bipartite graph with n (a square) features on each side.

    Features of layer A sit on a √n x √n grid of unit spacing, jittered by 0.15; layer B is A moved by
    0.25 per axis (SD). An edge joins A_i and B_j when they lie within DENSITY[density] of each other;
    its weight falls from 1 at distance 0 to P_EDGE at the radius (weights="q"), or is drawn uniformly
    from [P_EDGE, 1] whatever the distance (weights="contested": neighbours compete, the hard case)."""
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n)))
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2).astype(float)
    a = grid + rng.normal(0, 0.15, grid.shape)
    b = a + rng.normal(0, 0.25, a.shape)
    radius = DENSITY[density]
    reach = int(np.ceil(radius + 2))  # grid cells a partner can be away
    cell = np.round(grid).astype(np.int64)
    index = cell[:, 0] * side + cell[:, 1]
    rows, cols = [], []
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            x, y = cell[:, 0] + dx, cell[:, 1] + dy
            inside = (x >= 0) & (x < side) & (y >= 0) & (y < side)
            i = np.flatnonzero(inside)
            j = x[inside] * side + y[inside]
            near = np.hypot(*(a[i] - b[j]).T) < radius
            rows.append(index[i[near]])
            cols.append(j[near])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    distance = np.hypot(*(a[rows] - b[cols]).T)
    weight = 1.0 - (1.0 - P_EDGE) * (distance / radius) ** 2
    if weights == "contested":
        weight = P_EDGE + (1.0 - P_EDGE) * rng.random(len(rows))
    return rows, cols, weight, side * side


def _largest_component(n, rows, cols):
    from overlap_relevance.model.matching import components

    label_a, label_b = components(n, n, rows, cols)
    labels = np.r_[label_a, label_b]
    return int(np.bincount(labels[labels >= 0]).max())


def _status_kib(field):
    """VmRSS (now) or VmHWM (peak) of this process in KiB. VmHWM, unlike ru_maxrss, starts afresh at exec:
    it does not carry the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _solve(solver, n, rows, cols, weight):
    """Positions of the chosen edges."""
    if solver in ("sparse_numpy", "sparse_numba"):
        from overlap_relevance.model.assignment import max_weight_matching

        return max_weight_matching(n, n, rows, cols, weight, engine=solver.split("_")[1])
    if solver == "scipy_sparse":
        from overlap_relevance.model.matching import scipy_sparse_assignment

        return scipy_sparse_assignment(n, n, rows, cols, weight)
    # dense, as assign_one_to_one builds its matrices for a small component
    matrix = np.zeros((n, n))
    edge_at = np.full((n, n), -1, dtype=np.int64)
    np.maximum.at(matrix, (rows, cols), weight + 1e-12)
    edge_at[rows, cols] = np.arange(len(rows))
    if solver == "dense_numpy":
        from overlap_relevance.model.matching import _hungarian_numpy

        r, c = _hungarian_numpy(matrix)
    else:
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(matrix, maximize=True)
    picked = edge_at[r, c]
    return picked[picked >= 0]


def run_one(solver, n, graph, seed):
    """One solve in this process: a dict of seconds, RSS before and peak RSS (MiB), edges, total weight."""
    density, weights = graph.split("/")
    rows, cols, weight, n = building_graph(n, density, seed, weights)
    # imports (and numba's compilation) outside the timing
    _solve(solver, 2, np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([0.8, 0.9, 0.7]))
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    picked = _solve(solver, n, rows, cols, weight)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    return {"solver": solver, "n": n, "graph": graph, "edges": int(len(rows)), "seconds": seconds,
            "rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024, "matched": int(len(picked)),
            "total": float(weight[picked].sum())}


def _available(solver):
    try:
        if solver == "sparse_numba":
            from overlap_relevance.model.assignment_numba import compiled_solver

            return compiled_solver() is not None
        if solver.startswith("scipy"):
            import scipy  # noqa: F401
        return True
    except ImportError:
        return False


def measure(solver, n, graph, seed, timeout):
    """run_one in a fresh process (its own peak RSS); None on a timeout."""
    command = [sys.executable, __file__, "--one", solver, str(n), graph, str(seed)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=4, metavar=("SOLVER", "N", "GRAPH", "SEED"), help="GRAPH: e.g. sparse/q")
    parser.add_argument("--quick", action="store_true", help="small sizes, into build/bench/")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--dense-limit-gb", type=float, default=4.0,
                        help="skip a dense solver whose matrices would take more (GB)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per solve before it counts as failed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.one:
        solver, n, graph, seed = args.one
        print(json.dumps(run_one(solver, int(n), graph, int(seed))))
        return 0
    sizes = [100, 400] if args.quick else args.sizes
    out = args.out or (REPO_ROOT / "build" / "bench" if args.quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    results, notes = [], []
    for n in sizes:
        for graph in GRAPHS:
            density = graph.split("/")[0]
            rows, cols, _, n_real = building_graph(n, density)
            if graph.endswith("/q"):
                largest = _largest_component(n_real, rows, cols)
                notes.append(f"n = {n_real:,}, {density}: {len(rows):,} edges ({len(rows) / n_real:.1f} per "
                             f"feature), largest component {largest:,} of {2 * n_real:,} features")
            for solver in SOLVERS:
                dense_gb = 2 * 8 * n_real * n_real / 1e9  # the weight matrix and the edge positions
                skip = None
                if not _available(solver):
                    skip = "not installed"
                elif solver in ("dense_numpy", "scipy_dense") and dense_gb > args.dense_limit_gb:
                    skip = f"dense matrices {dense_gb:.1f} GB > {args.dense_limit_gb} GB"
                if skip:
                    results.append({"solver": solver, "n": n_real, "graph": graph, "skipped": skip})
                    continue
                got = measure(solver, n, graph, 0, args.timeout)
                results.append(got or {"solver": solver, "n": n_real, "graph": graph,
                                       "skipped": f"not done in {args.timeout:.0f} s"})
                print(json.dumps(results[-1]), flush=True)
    write(out, results, notes)
    return 0


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def write(out, results, notes):
    (out / "results_assignment.json").write_text(json.dumps(results, indent=1) + "\n")
    totals = {}
    for r in results:
        if "total" in r:
            totals.setdefault((r["n"], r["graph"]), []).append(r["total"])
    lines = [
        "# One-to-one assignment of one large component: sparse NumPy vs dense vs SciPy",
        "",
        f"Written by `test/benchmarks/bench_assignment.py` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, SciPy {_version('scipy')}, numba {_version('numba')}).",
        "",
        "Each solve in its own process; seconds of the solve alone; RSS before = the process with the graph "
        "built, peak = its largest RSS (so peak - before is what the solver took). `total` is the matching's "
        "summed weight: equal within 1e-9 between solvers means all found an optimum.",
        "",
        *[f"- {note}" for note in notes],
        "",
        "| n per layer | graph | solver | seconds | RSS before (MiB) | peak RSS (MiB) | matched | total weight |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['n']:,} | {r['graph']} | {r['solver']} | skipped: {r['skipped']} | | | | |")
        else:
            lines.append(f"| {r['n']:,} | {r['graph']} | {r['solver']} | {r['seconds']:.3f} | "
                         f"{r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['matched']:,} | {r['total']:.9f} |")
    agree = all(max(v) - min(v) <= 1e-9 for v in totals.values())
    lines += ["", f"All solvers that ran found the same total weight per graph: {'yes' if agree else 'NO'}.", ""]
    (out / "RESULTS_ASSIGNMENT.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
