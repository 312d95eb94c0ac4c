"""GeoPackages holding SpatiaLite geometry blobs, as files written by older tools do (world_map.gpkg's Russia).

GDAL 3.6's Arrow stream returns NULL for such blobs; OGR's feature reading, QGIS and pyogrio read them.
Only sqlite3 and the standard library here: the QGIS tests and the Dask tests both use it.
"""

import sqlite3
import struct
from contextlib import closing

import numpy as np


def spatialite_blob(geometry, srid):
    """A shapely Polygon or MultiPolygon as a little-endian SpatiaLite blob (2-D).

    Layout: 0x00, byte order 0x01, SRID, bounding box (4 doubles), 0x7C, class (3 Polygon, 6 MultiPolygon),
    the body (a multipolygon's parts each after 0x69 and their class), 0xFE.
    """
    def polygon_body(polygon):
        rings = [polygon.exterior, *polygon.interiors]
        body = struct.pack("<i", len(rings))
        for ring in rings:
            xy = np.asarray(ring.coords)[:, :2]
            body += struct.pack("<i", len(xy)) + xy.astype("<f8").tobytes()
        return body

    if geometry.geom_type == "Polygon":
        kind, body = 3, polygon_body(geometry)
    elif geometry.geom_type == "MultiPolygon":
        kind = 6
        body = struct.pack("<i", len(geometry.geoms)) + b"".join(
            b"\x69" + struct.pack("<i", 3) + polygon_body(part) for part in geometry.geoms)
    else:
        raise ValueError(f"no SpatiaLite encoding here for {geometry.geom_type}")
    return (b"\x00\x01" + struct.pack("<i", srid) + struct.pack("<4d", *geometry.bounds) + b"\x7c"
            + struct.pack("<i", kind) + body + b"\xfe")


def rewrite_as_spatialite(path, table, geoms_by_fid, srid, column="geom"):
    """Replace the geometry blobs of the given features (fid -> shapely geometry) by SpatiaLite blobs.

    The GeoPackage must have no spatial index: its triggers call GDAL's SQL functions, which plain
    sqlite3 lacks (write it with SPATIAL_INDEX=NO). The geometries should be the ones stored.
    """
    with closing(sqlite3.connect(str(path))) as connection, connection:
        for fid, geometry in geoms_by_fid.items():
            connection.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE fid = ?',
                               (spatialite_blob(geometry, srid), int(fid)))


def blob_starts(path, table, column="geom"):
    """The first two bytes of every feature's blob, by fid: b"GP" for GeoPackage's, b"\\x00\\x01" SpatiaLite's."""
    with closing(sqlite3.connect(str(path))) as connection:
        return [row[0] for row in connection.execute(f'SELECT substr("{column}", 1, 2) FROM "{table}" ORDER BY fid')]
