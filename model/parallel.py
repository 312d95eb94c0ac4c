"""Chunks of work: where to cut them (`chunk_bounds`), the index runs of batched expansions (`index_runs`), and
running them on a few threads, results in order.

shapely 2 (GEOS) and NumPy release the GIL in their array functions, so the
per-chunk work of scoring (projection, overlay, inference) runs on several
cores from threads, with no copies of the layers into other processes. Results
come back in the order of the chunks, at most ``workers + 1`` chunks ahead, so
memory stays bounded by a few chunks whatever the layer size.
"""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# More threads than this gains little: the Python parts between GEOS calls hold the GIL.
MAX_DEFAULT_WORKERS = 4


def default_workers():
    """Threads to use by default: the CPUs this process may run on, at most MAX_DEFAULT_WORKERS.

    The environment variable OVERLAP_RELEVANCE_THREADS overrides it (1 = no threads).
    """
    configured = os.environ.get("OVERLAP_RELEVANCE_THREADS", "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            pass
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_DEFAULT_WORKERS))


def ordered_map(function, items, workers=None, cancelled=None):
    """Yield ``function(item)`` for every item, in order, computing up to ``workers`` at once.

    items : an iterable, consumed lazily. cancelled : optional callable; once it returns
    True no further item is started and the generator stops (items already running
    finish first). An exception in ``function`` is raised here, in the caller's thread.
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1:
        for item in items:
            if cancelled is not None and cancelled():
                return
            yield function(item)
        return
    items = iter(items)
    pending = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="overlap_relevance") as pool:
        try:
            while True:
                while len(pending) <= workers:
                    if cancelled is not None and cancelled():
                        return
                    item = next(items, _DONE)
                    if item is _DONE:
                        break
                    pending.append(pool.submit(function, item))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_DONE = object()


def index_runs(starts, counts):
    """The runs starts[i], starts[i] + 1, …, starts[i] + counts[i] − 1 one after another, without a loop (the
    index arithmetic of every batched expansion: pairs of edges, members of groups, edges of samples)."""
    counts = np.asarray(counts)
    return np.repeat(np.asarray(starts) - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())


def chunk_bounds(vertex_counts, max_vertices):
    """Split positions 0..n into consecutive [start, stop) runs of about ``max_vertices``.

    Parameters
    ----------
    vertex_counts : (n,) int array, the cost of each item.
    max_vertices : int, the budget per run; an item larger than it gets a run of its own.
    """
    cumulative = np.cumsum(vertex_counts)
    bounds, start = [], 0
    while start < len(cumulative):  # one iteration per chunk, not per item
        spent_before = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, spent_before + max_vertices, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds
