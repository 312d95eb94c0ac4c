"""The boundary sweep's missing second-order term at a convex vertex of B lying inside A (issue 29), measured.

The sweep (model/sweep.py) moves each edge of B along its own normal by τ = d·n. Near a vertex of B whose
neighbourhood lies in A, the truth and the sweep then differ by a term of second order in d. The wedge
of B at the vertex is cut by lines perpendicular to its two edges at distance R (so the far ends are
exact), translated by d with GEOS, and the change in area is compared with the sweep's (τ_j + τ_k) R.

Result (2,000 random vertices and shifts): the difference is [2τ_jτ_k − (τ_j² + τ_k²) cos φ] / (2 sin φ)
with φ the angle between the two edges' outward normals (π minus the interior angle; with the interior
angle the sign of the cosine term flips), to GEOS's rounding; τ_jτ_k / sin φ holds only at right angles.

    .venv/bin/python research/sweep_corner_term.py
"""

import numpy as np
import shapely
from shapely.affinity import rotate, translate


def corner_errors(trials=2000, reach=50.0, seed=0):
    """Largest relative error of each candidate formula against GEOS over random convex vertices and shifts."""
    rng = np.random.default_rng(seed)
    worst = {"issue (φ between the normals)": 0.0, "τ_jτ_k / sin φ": 0.0}
    far = 1e4
    for _ in range(trials):
        interior = rng.uniform(0.2, np.pi - 0.2)
        e_j, e_k = np.array([1.0, 0.0]), np.array([np.cos(interior), np.sin(interior)])
        n_j, n_k = np.array([0.0, -1.0]), np.array([-np.sin(interior), np.cos(interior)])
        wedge = shapely.Polygon([(0, 0), far * e_j, far * (e_j + e_k), far * e_k])
        cut_j = shapely.box(-far, -far, reach, far)
        around = cut_j.intersection(rotate(cut_j, np.degrees(interior), origin=(0, 0)))  # A, all around the vertex
        d = rng.normal(0, 1, 2)
        truth = translate(wedge, *d).intersection(around).area - wedge.intersection(around).area
        tau_j, tau_k = d @ n_j, d @ n_k
        corner = truth - (tau_j + tau_k) * reach
        phi = np.pi - interior
        forms = {"issue (φ between the normals)": (2 * tau_j * tau_k - (tau_j**2 + tau_k**2) * np.cos(phi))
                 / (2 * np.sin(phi)), "τ_jτ_k / sin φ": tau_j * tau_k / np.sin(phi)}
        for name, value in forms.items():
            worst[name] = max(worst[name], abs(corner - value) / max(abs(corner), 1e-3))
    return worst


if __name__ == "__main__":
    for name, error in corner_errors().items():
        print(f"{name}: largest relative error {error:.2e}")
