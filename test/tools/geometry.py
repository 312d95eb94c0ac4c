"""Test geometries: squares near Berlin in ETRS89 / UTM 33N, and their copies in other CRSs."""

import numpy as np
import shapely
import shapely.affinity
from pyproj import Transformer

UTM = "EPSG:25833"
ORIGIN = (390_000.0, 5_820_000.0)


def square(x, y, size=20.0):
    """A square of ``size`` metres with its lower-left corner (x, y) metres from ORIGIN, in UTM."""
    return shapely.box(ORIGIN[0] + x, ORIGIN[1] + y, ORIGIN[0] + x + size, ORIGIN[1] + y + size)


def to_crs(geoms, crs, source=UTM):
    """The geometries (None allowed) moved from ``source`` to ``crs``, vertex by vertex."""
    transformer = Transformer.from_crs(source, crs, always_xy=True)
    return [None if g is None else shapely.transform(g, lambda xy: np.column_stack(transformer.transform(*xy.T)))
            for g in geoms]


def geos_overlap_at_shifts(a, b, d):
    """(n, k) |A ∩ (B + d)| by GEOS, one overlay per pair and shift: the oracle of the shift-overlap tests.

    a, b : (n,) polygons; d : (n, k, 2) shifts of B.
    """
    out = np.zeros(d.shape[:2])
    for j in range(d.shape[1]):
        moved = np.array([shapely.affinity.translate(g, *d[i, j]) for i, g in enumerate(b)], dtype=object)
        out[:, j] = shapely.area(shapely.intersection(a, moved))
    return out
