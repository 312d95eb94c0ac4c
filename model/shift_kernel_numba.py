"""The exact shift-overlap kernel of :mod:`.shift_overlap`, compiled with numba where numba imports.

Never required (QGIS need not have numba): :func:`compiled_kernel` returns None without it, and the NumPy
kernel runs instead. Same arithmetic in the same order as the NumPy kernel, chunk by chunk, so the two
give the same numbers (checked bit for bit in test/model/test_shift_overlap.py where numba imports).
"""

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def compiled_kernel():
    """The compiled kernel of the area, and of the first moments where asked, or None where numba cannot be
    imported. Without moments it skips their terms; the area is the same either way (the same operations)."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=False, nogil=True)
    def kernel(pair, ia, ib, chunk_starts, x0a, x1a, y0a, slope_a, sign_a, x0b, x1b, y0b, slope_b, sign_b, d,
               total, moments, moment_x, moment_y):
        k = d.shape[1]
        tiny = np.finfo(np.float64).tiny
        partial = np.zeros(k)
        partial_x = np.zeros(k)
        partial_y = np.zeros(k)
        for chunk in range(chunk_starts.size - 1):
            start, stop = chunk_starts[chunk], chunk_starts[chunk + 1]
            c = start
            while c < stop:  # one run of edge pairs of one pair within the chunk
                p = pair[c]
                partial[:] = 0.0
                partial_x[:] = 0.0
                partial_y[:] = 0.0
                while c < stop and pair[c] == p:
                    ea, eb = ia[c], ib[c]
                    width_a = x1a[ea] - x0a[ea]
                    width_b = x1b[eb] - x0b[eb]
                    m_b = slope_b[eb]
                    m_a = slope_a[ea]
                    rate = m_b - m_a
                    gap = y0b[eb] - y0a[ea]
                    start_gap = x0a[ea] - x0b[eb]
                    signs = -(sign_a[ea] * sign_b[eb])
                    for j in range(k):
                        delta = start_gap - d[p, j, 0]
                        u_low = max(-delta, 0.0)
                        length = min(width_a, width_b - delta) - u_low
                        base = (gap + d[p, j, 1]) + m_b * delta
                        h_low = base + rate * u_low
                        run = max(length, 0.0)
                        h_high = h_low + rate * run
                        # As shift_overlap's NumPy kernel (_positive_part_terms), operation for operation.
                        alpha = max(h_low, 0.0)
                        beta = max(h_high, 0.0)
                        positive = alpha + beta
                        scale = max(abs(h_low) + abs(h_high), tiny)
                        term = run * positive * positive / (2.0 * scale)
                        partial[j] = partial[j] + term * signs
                        if moments:
                            stretch = run * (positive / scale)
                            q = u_low + (0.0 if h_low > 0.0 else run - stretch)
                            r = q * term + (2.0 * beta + alpha) * stretch * stretch / 6.0
                            mx = x0a[ea] * term + r
                            my = (y0a[ea] * term + m_a * r
                                  + stretch * (alpha * alpha + alpha * beta + beta * beta) / 6.0)
                            partial_x[j] = partial_x[j] + mx * signs
                            partial_y[j] = partial_y[j] + my * signs
                    c += 1
                for j in range(k):
                    total[p, j] = total[p, j] + partial[j]
                    if moments:
                        moment_x[p, j] = moment_x[p, j] + partial_x[j]
                        moment_y[p, j] = moment_y[p, j] + partial_y[j]

    return kernel


def run(kernel, pair, ia, ib, bounds, edges_a, edges_b, slope_a, slope_b, d, total, moment_x=None, moment_y=None):
    """Call the compiled kernel (:func:`compiled_kernel`) on the edge pairs (sorted by pair), chunked as
    ``bounds`` [(start, stop)]: the area into ``total``, and the first moments too where ``moment_x`` and
    ``moment_y`` arrays are given."""
    starts = np.array([start for start, _ in bounds] + [bounds[-1][1] if bounds else 0], dtype=np.int64)
    moments = moment_x is not None
    if not moments:
        moment_x = moment_y = np.zeros((0, 0))
    kernel(pair, ia, ib, starts, edges_a["x0"], edges_a["x1"], edges_a["y0"], slope_a, edges_a["sign"],
           edges_b["x0"], edges_b["x1"], edges_b["y0"], slope_b, edges_b["sign"], np.ascontiguousarray(d), total,
           moments, moment_x, moment_y)
