"""Quasi-random points (NumPy only): scrambled Sobol' points in two dimensions, batched over rows, and
scrambled Halton points in up to twelve.

The Sobol' points serve the sweep surrogate's fixed summary displacements (:mod:`.sweep`) and the
yardstick's randomised quasi-Monte Carlo samplers (:mod:`.evaluation.samplers`); the Halton points the
mixtures' quasi-random samples (:meth:`.mixture.GaussianMixture.quasi_samples`).
"""

import math
from typing import Union

import numpy as np

RngLike = Union[None, int, np.random.Generator]

#: Bits of the scrambled Sobol' coordinates (int64 arithmetic, so NumPy 1.x and 2.x agree).
SOBOL_BITS = 31


def _sobol_columns(m):
    """(2, m) int64 generator columns of Sobol' dimensions 1 and 2 (column j: digit j of the index)."""
    shift = SOBOL_BITS - 1 - np.arange(m)
    direction = [1]
    for _ in range(1, m):  # m ≤ 8 digits: dimension 2's recurrence m_i = 2 m_(i-1) XOR m_(i-1)
        direction.append(direction[-1] ^ (direction[-1] << 1))
    return np.stack([np.ones(m, np.int64) << shift, np.asarray(direction, np.int64) << shift])


def _parity(x):
    for shift in (16, 8, 4, 2, 1):
        x = x ^ (x >> shift)
    return x & 1


def sobol_points(n, k, rng, scramble=True):
    """(n, k, 2) points of the 2-D Sobol' sequence in (0, 1)², scrambled independently per row.

    Each row gets its own random lower-triangular binary matrix (unit diagonal) applied to the
    generator matrices and its own digital shift (Matoušek's linear matrix scrambling, as
    ``scipy.stats.qmc.Sobol``), so for k = 2^m every row is a (0, m, 2)-net and uniform on the
    square. ``scramble=False`` gives the plain sequence (every coordinate plus 2^-32, so none is 0).
    """
    m = max(1, int(np.ceil(np.log2(max(int(k), 1)))))
    columns = np.broadcast_to(_sobol_columns(m), (n, 2, m))
    top = np.int64(1) << SOBOL_BITS
    if scramble:
        position = SOBOL_BITS - 1 - np.arange(SOBOL_BITS)  # row r of the matrix acts on bit `position[r]`
        above = (top - 1) ^ ((np.int64(1) << (position + 1)) - 1)  # the more significant bits
        rows = (rng.integers(0, top, (n, 2, SOBOL_BITS)) & above) | (np.int64(1) << position)
        bits = _parity(rows[..., :, None] & columns[..., None, :])  # (n, 2, bits, m)
        columns = np.sum(bits << position[:, None], axis=2)
        shift = rng.integers(0, top, (n, 2))
    else:
        shift = np.zeros((n, 2), np.int64)
    index = np.arange(k) ^ (np.arange(k) >> 1)  # Gray-code order, as scipy's (the same set for k = 2^m)
    digits = (index[:, None] >> np.arange(m)) & 1  # (k, m)
    x = np.bitwise_xor.reduce(np.where(digits.astype(bool), columns[:, :, None, :], 0), axis=-1)
    return np.moveaxis((x ^ shift[..., None]) + 0.5, 1, 2) / float(top)


_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def scrambled_halton(n_points: int, n_dims: int, seed: RngLike = 0) -> np.ndarray:
    """Randomised Halton points ``(n_points, n_dims)`` in the open unit cube.

    Dimension ``j`` uses the radical inverse in the ``j``-th prime base with every
    digit position passed through its own random permutation of the digits
    (random digit scrambling). Digits beyond those needed to index ``n_points``
    are permuted zeros, i.e. a random offset within the finest cell. The same
    ``seed`` gives the same points. ``n_dims <= 12``.
    """
    if n_points < 1 or not 1 <= n_dims <= len(_PRIMES):
        raise ValueError(f"need n_points >= 1 and 1 <= n_dims <= {len(_PRIMES)}")
    rng = np.random.default_rng(seed)
    index = np.arange(n_points, dtype=np.int64)
    points = np.empty((n_points, n_dims))
    for dim, base in enumerate(_PRIMES[:n_dims]):
        value = np.zeros(n_points)
        scale = 1.0 / base
        remaining = index.copy()
        # Digits until float64 resolution (~2^-60) is exhausted.
        n_digits = int(math.ceil(60 * math.log(2) / math.log(base)))
        for _ in range(n_digits):
            permutation = rng.permutation(base)
            value += permutation[remaining % base] * scale
            remaining //= base
            scale /= base
        points[:, dim] = value
    return np.clip(points, 1e-300, 1.0 - 2.0 ** -53)
