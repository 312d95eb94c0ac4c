"""Geometries computed in pair frames, returned to the user's CRS."""

import numpy as np
import shapely
from pyproj import Transformer
from qgis.core import QgsGeometry


def frame_points_to_crs(frames, x, y, pair_index, crs):
    """Frame metres of pairs ``pair_index`` -> (x, y) in ``crs`` (arrays of one shape)."""
    lon, lat = frames.to_lonlat(x, y, pair_index)
    if crs in ("EPSG:4326", "OGC:CRS84"):
        return np.asarray(lon), np.asarray(lat)
    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return transformer.transform(lon, lat)


def to_qgis(geometries):
    """2-D shapely geometries -> QgsGeometry objects (through WKB, which keeps every digit).

    The WKB dimension is explicit: inside QGIS, shapely runs on QGIS's own GEOS library, and
    before GEOS 3.12 the writer refuses shapely 2.1's default of 4 dimensions.
    """
    out = []
    for wkb in shapely.to_wkb(np.asarray(geometries, dtype=object), output_dimension=2):
        geometry = QgsGeometry()
        geometry.fromWkb(wkb)
        out.append(geometry)
    return out
