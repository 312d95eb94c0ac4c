"""A corpus of hostile layers: broken, unusual, huge, misplaced and awkward data (issue 8).

Every :class:`Case` builds one *case layer* (memory layer, or a GeoPackage/GeoJSON file
written byte by byte where QGIS's own writers would clean the data up) and a clean
*partner* layer lying on the same features, so that each case can be run as INPUT against
its partner and as REFERENCE with its partner as input, and candidate pairs really form.

A case says what it must give (:meth:`Case.expected_error`): nothing (success with
finite outputs) or a regular expression the QgsProcessingException's message must match.
"""

import json
import math
import re
import sqlite3
from contextlib import closing
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from pyproj import Transformer
from qgis.core import QgsCoordinateReferenceSystem, QgsVectorLayer, QgsWkbTypes

from .layers import memory_layer

ALGORITHMS = ("scorerelevance", "matchfeatures", "relevancepairs", "overlaplocation", "exactoverlap")
ROLES = ("input", "reference")
BERLIN = (13.40, 52.52)


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------
def metres_box(lon, lat, width, height=None, dx=0.0, dy=0.0):
    """A lon/lat rectangle ``width`` x ``height`` metres, its lower-left corner (dx, dy) metres from (lon, lat)."""
    height = width if height is None else height
    to_lonlat = Transformer.from_crs(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84", "EPSG:4326",
                                     always_xy=True)
    xs = np.array([dx, dx + width, dx + width, dx, dx])
    ys = np.array([dy, dy, dy + height, dy + height, dy])
    return shapely.Polygon(np.column_stack(to_lonlat.transform(xs, ys)))


def circle(lon, lat, radius_m, n_vertices):
    """A lon/lat polygon of ``n_vertices`` distinct vertices on a circle of ``radius_m`` metres."""
    to_lonlat = Transformer.from_crs(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84", "EPSG:4326",
                                     always_xy=True)
    angle = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    return shapely.Polygon(np.column_stack(to_lonlat.transform(radius_m * np.cos(angle), radius_m * np.sin(angle))))


def wkb_polygon(rings, dims="", multi=False):
    """ISO WKB of a polygon (or a one-part multipolygon) from raw rings, closed or not.

    rings : list of rings, each a list of coordinate tuples with 2, 3 or 4 values.
    dims : "", "Z", "M" or "ZM".
    """
    offset = {"": 0, "Z": 1000, "M": 2000, "ZM": 3000}[dims]
    body = struct.pack("<I", len(rings))
    for ring in rings:
        body += struct.pack("<I", len(ring))
        for point in ring:
            body += struct.pack(f"<{len(point)}d", *point)
    polygon = struct.pack("<BI", 1, 3 + offset) + body
    if multi:
        return struct.pack("<BII", 1, 6 + offset, 1) + polygon
    return polygon


def _gpkg_blob(wkb, srs_id):
    """A GeoPackage geometry blob (no envelope) holding ``wkb``; None stays None (SQL NULL)."""
    if wkb is None:
        return None
    empty = len(wkb) == 9 and wkb[5:9] == b"\0\0\0\0"  # a polygon or multipolygon of no parts
    return b"GP" + struct.pack("<BBi", 0, 0b00000001 | (0b00010000 if empty else 0), srs_id) + wkb


def write_gpkg(path, geometry_type, wkbs, epsg=4326, attributes=None):
    """A one-table GeoPackage (table ``data``) written with SQL, so every geometry byte stays as given.

    geometry_type : the GeoPackage geometry type name (POLYGON, MULTIPOLYGON, CURVEPOLYGON...).
    epsg : the table's CRS; 0 and -1 are GeoPackage's undefined geographic and undefined cartesian CRSs.
    Z/M flags are read from the type name suffix (POLYGONZ, POLYGONM, POLYGONZM).
    """
    attributes = attributes or {}
    base = re.sub("(ZM|Z|M)$", "", geometry_type)
    suffix = geometry_type[len(base):]
    srs_id = epsg
    path = Path(path)
    path.unlink(missing_ok=True)
    # closing() closes the handle; the inner `with db` commits (sqlite3's own context manager only commits).
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA application_id = 1196444487")  # 'GPKG'
        db.execute("PRAGMA user_version = 10200")
        db.execute("CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, "
                   "organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, "
                   "definition TEXT NOT NULL, description TEXT)")
        db.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", [
            ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
            ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
        ])
        if epsg > 0:
            from pyproj import CRS

            db.execute("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
                       (f"EPSG:{epsg}", epsg, "EPSG", epsg, CRS.from_epsg(epsg).to_wkt("WKT1_GDAL"), None))
        db.execute("CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, "
                   "identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT "
                   "(strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, "
                   "max_y DOUBLE, srs_id INTEGER)")
        db.execute("CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, "
                   "geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, "
                   "m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name))")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                   "VALUES ('data', 'features', 'data', ?)", (srs_id,))
        db.execute("INSERT INTO gpkg_geometry_columns VALUES ('data', 'geom', ?, ?, ?, ?)",
                   (base, srs_id, int("Z" in suffix), int("M" in suffix)))
        sql_types = {float: "REAL", int: "INTEGER", str: "TEXT"}
        columns = "".join(f', "{name}" {sql_types[type(v[0])]}' for name, v in attributes.items())
        db.execute(f'CREATE TABLE data (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom BLOB{columns})')
        names = "".join(f', "{name}"' for name in attributes)
        marks = ", ?" * len(attributes)
        rows = [(_gpkg_blob(wkb, srs_id), *[values[i] for values in attributes.values()])
                for i, wkb in enumerate(wkbs)]
        db.executemany(f"INSERT INTO data (geom{names}) VALUES (?{marks})", rows)
    return path


def layer_to_gpkg(layer, path):
    """A GeoPackage holding ``layer``'s geometries byte for byte (its WKB) and its int/float/str fields.

    For running memory-layer cases through qgis_process; the layer's CRS must have an EPSG code.
    """
    features = list(layer.getFeatures())
    attributes = {name: [f[name] for f in features] for name in layer.fields().names()}
    attributes = {name: values for name, values in attributes.items()
                  if values and all(isinstance(v, (int, float, str)) for v in values)}
    wkbs = [None if f.geometry().isNull() else bytes(f.geometry().asWkb()) for f in features]
    epsg = layer.crs().postgisSrid()
    assert layer.crs().authid() == f"EPSG:{epsg}", layer.crs().authid()
    return write_gpkg(path, QgsWkbTypes.displayString(layer.wkbType()).upper(), wkbs, epsg, attributes)


def gpkg_layer(path, name="case"):
    layer = QgsVectorLayer(f"{path}|layername=data", name, "ogr")
    assert layer.isValid(), path
    return layer


# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------
@dataclass
class Case:
    """One hostile layer and what the algorithms must make of it.

    make : folder -> QgsVectorLayer, the case layer.
    partner : () -> QgsVectorLayer, a clean layer on the same features (default: squares round Berlin).
    errors : {(role or None, algorithm or None): regex}; the first entry matching (role, algorithm),
        None matching anything, names the error that case must give; no entry means success.
    key : a field of the case layer to use as its key field (INPUT_KEY / REFERENCE_KEY), if any.
    """

    name: str
    make: Callable
    partner: Callable = None
    errors: dict = field(default_factory=dict)
    key: str = None

    def __post_init__(self):
        if self.partner is None:
            self.partner = berlin_partner

    def expected_error(self, role, algorithm):
        for (want_role, want_algorithm), pattern in self.errors.items():
            if want_role in (None, role) and want_algorithm in (None, algorithm):
                return pattern
        return None

    def __repr__(self):
        return self.name


def partner_layer(geoms, crs="EPSG:4326"):
    return memory_layer(geoms, crs, {"pid": list(range(len(geoms)))}, name="partner")


def berlin_partner():
    return partner_layer([metres_box(*BERLIN, 30.0, dx=-10, dy=-10), metres_box(*BERLIN, 20.0, dx=5, dy=5),
                          metres_box(*BERLIN, 500.0, dx=-250, dy=-250)])


def _lonlat(x, y):
    """Berlin-relative metres -> lon/lat (a quick local approximation for hand-drawn shapes)."""
    lon = BERLIN[0] + x / (111_320.0 * math.cos(math.radians(BERLIN[1])))
    lat = BERLIN[1] + y / 110_574.0
    return lon, lat


def _local_polygon(*rings):
    return shapely.Polygon([_lonlat(*p) for p in rings[0]], [[_lonlat(*p) for p in r] for r in rings[1:]])


_SQUARE_30 = [(0, 0), (30, 0), (30, 30), (0, 30), (0, 0)]


def _bow_tie(folder):
    geoms = [
        _local_polygon([(0, 0), (20, 20), (20, 0), (0, 20), (0, 0)]),  # bow-tie
        _local_polygon([(0, 0), (30, 0), (30, 30), (10, 30), (10, -10), (0, -10), (0, 0)]),  # self-overlapping
        # two squares touching at a corner, drawn as one ring
        _local_polygon([(0, 0), (10, 0), (10, 10), (20, 10), (20, 20), (10, 20), (10, 10), (0, 10), (0, 0)]),
        _local_polygon(_SQUARE_30, [(10, 10), (40, 10), (40, 20), (10, 20), (10, 10)]),  # hole crossing its shell
    ]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2, 3]}, name="case")


def _spikes(folder):
    geoms = [
        _local_polygon([(0, 0), (20, 0), (20, 10), (60, 10), (20, 10), (20, 20), (0, 20), (0, 0)]),  # spike out
        _local_polygon([(0, 0), (20, 0), (20, 10), (5, 10), (20, 10), (20, 20), (0, 20), (0, 0)]),  # spike in
        _local_polygon([(0, 0), (10, 0), (20, 0), (0, 0)]),  # collapsed: no area at all
        _local_polygon([(0, 0), (20, 0), (20, 20), (20, 20), (20, 20), (0, 20), (0, 0)]),  # repeated vertices
    ]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2, 3]}, name="case")


_SQUARE = [_lonlat(0, 0), _lonlat(20, 0), _lonlat(20, 20), _lonlat(0, 20)]


def _unclosed_gpkg(folder):
    wkbs = [
        wkb_polygon([_SQUARE]),  # a square whose ring never returns to its start
        wkb_polygon([_SQUARE[:3]]),  # an unclosed triangle: three points
        wkb_polygon([_SQUARE[:2]]),  # two points: no ring at all
        wkb_polygon([_SQUARE + [_SQUARE[0]], [_lonlat(5, 5), _lonlat(10, 5), _lonlat(10, 10)]]),  # unclosed hole
        wkb_polygon([_SQUARE], multi=True),
    ]
    return gpkg_layer(write_gpkg(folder / "unclosed.gpkg", "MULTIPOLYGON", wkbs, attributes={"cid": [0, 1, 2, 3, 4]}))


def _unclosed_geojson(folder):
    rings = [[list(p) for p in _SQUARE], [list(p) for p in _SQUARE[:3]]]
    features = [{"type": "Feature", "properties": {"cid": i}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
                for i, ring in enumerate(rings)]
    path = folder / "unclosed.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    layer = QgsVectorLayer(str(path), "case", "ogr")
    assert layer.isValid()
    return layer


def _empty(folder):
    geoms = [shapely.from_wkt("POLYGON EMPTY"), shapely.from_wkt("MULTIPOLYGON EMPTY"), metres_box(*BERLIN, 20.0)]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _empty_gpkg(folder):
    wkbs = [struct.pack("<BII", 1, 3, 0), struct.pack("<BII", 1, 6, 0), shapely.to_wkb(metres_box(*BERLIN, 20.0))]
    return gpkg_layer(write_gpkg(folder / "empty.gpkg", "MULTIPOLYGON", wkbs, attributes={"cid": [0, 1, 2]}))


def _null(folder):
    return memory_layer([None, metres_box(*BERLIN, 20.0), None], "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _all_null(folder):
    return memory_layer([None, None], "EPSG:4326", {"cid": [0, 1]}, name="case")


def _nonfinite(folder):
    ring = [_lonlat(0, 0), _lonlat(20, 0), (math.nan, math.nan), _lonlat(0, 20), _lonlat(0, 0)]
    wkbs = [wkb_polygon([ring]), wkb_polygon([[_lonlat(0, 0), (math.inf, 52.5), _lonlat(0, 20), _lonlat(0, 0)]]),
            shapely.to_wkb(metres_box(*BERLIN, 20.0))]
    return gpkg_layer(write_gpkg(folder / "nonfinite.gpkg", "POLYGON", wkbs, attributes={"cid": [0, 1, 2]}))


def _dimensions(dims):
    def make(folder):
        extra = {"": (), "Z": (35.0,), "M": (7.0,), "ZM": (35.0, 7.0)}[dims]
        square = [p + extra for p in _SQUARE + [_SQUARE[0]]]
        hole = [_lonlat(5, 5), _lonlat(5, 10), _lonlat(10, 10), _lonlat(10, 5), _lonlat(5, 5)]
        wkbs = [wkb_polygon([square], dims), wkb_polygon([square, [p + extra for p in hole]], dims), None]
        return gpkg_layer(write_gpkg(folder / f"polygon{dims}.gpkg", "POLYGON" + dims, wkbs,
                                     attributes={"cid": [0, 1, 2]}))
    return make


def _curved(folder):
    # CURVEPOLYGON(CIRCULARSTRING(...)): a circle of radius ~10 m, and a compound ring (half straight, half arc).
    a, b, c = _lonlat(0, 0), _lonlat(20, 0), _lonlat(10, 10)
    circular = struct.pack("<BI", 1, 8) + struct.pack("<I", 3) + struct.pack("<6d", *a, *b, *a)
    arc = struct.pack("<BI", 1, 8) + struct.pack("<I", 3) + struct.pack("<6d", *b, *c, *a)
    line = struct.pack("<BI", 1, 2) + struct.pack("<I", 2) + struct.pack("<4d", *a, *b)
    compound = struct.pack("<BII", 1, 9, 2) + line + arc
    straight = struct.pack("<BI", 1, 2) + struct.pack("<I", 5) + b"".join(struct.pack("<2d", *p)
                                                                      for p in _SQUARE + [_SQUARE[0]])
    wkbs = [struct.pack("<BII", 1, 10, 1) + ring for ring in (circular, compound, straight)]
    return gpkg_layer(write_gpkg(folder / "curved.gpkg", "CURVEPOLYGON", wkbs, attributes={"cid": [0, 1, 2]}))


def _many_parts(folder):
    xy = np.stack(np.meshgrid(np.arange(100), np.arange(100)), axis=-1).reshape(-1, 2) * 3.0
    parts = [_local_polygon([(x, y), (x + 2, y), (x + 2, y + 2), (x, y + 2), (x, y)]) for x, y in xy]
    return memory_layer([shapely.MultiPolygon(parts), shapely.MultiPolygon(parts[:50])], "EPSG:4326",
                        {"cid": [0, 1]}, name="case")


def _holes(folder):
    outer = [(-50, -50), (250, -50), (250, 250), (-50, 250), (-50, -50)]
    holes = [[(x, y), (x, y + 20), (x + 20, y + 20), (x + 20, y), (x, y)] for x in range(0, 200, 40)
             for y in range(0, 200, 40)]
    geoms = [
        _local_polygon(outer, *holes),
        _local_polygon(_SQUARE_30, [(0, 10), (10, 10), (10, 20), (0, 20), (0, 10)]),  # hole touching the shell
        _local_polygon(_SQUARE_30, [(40, 40), (50, 40), (50, 50), (40, 50), (40, 40)]),  # hole outside the shell
        _local_polygon(_SQUARE_30, [(-5, -5), (35, -5), (35, 35), (-5, 35), (-5, -5)]),  # hole around the shell
    ]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2, 3]}, name="case")


def _ring(n_vertices):
    return lambda folder: memory_layer([circle(*BERLIN, 40.0, n_vertices)], "EPSG:4326", {"cid": [0]}, name="case")


def _tiny(folder):
    x0, y0 = 390_000.0, 5_820_000.0
    geoms = [shapely.box(x0, y0, x0 + 1e-3, y0 + 1e-3), shapely.box(x0 + 5e-4, y0, x0 + 1.5e-3, y0 + 1e-3),
             shapely.box(x0, y0, x0 + 1e-7, y0 + 1e-7)]
    return memory_layer(geoms, "EPSG:25833", {"cid": [0, 1, 2]}, name="case")


def _tiny_partner():
    x0, y0 = 390_000.0, 5_820_000.0
    return partner_layer([shapely.box(x0, y0, x0 + 1e-3, y0 + 1e-3)], "EPSG:25833")


def _densified(polygon, step_degrees=1.0):
    return shapely.segmentize(polygon, step_degrees)


CONTINENTS = [
    _densified(shapely.Polygon([(-10, 36), (40, 36), (60, 45), (40, 71), (-10, 60), (-10, 36)])),  # Europe-ish
    _densified(shapely.box(-80, -55, -35, 12)),  # South America-sized
    _densified(shapely.box(25, 5, 180, 75)),  # Asia-sized, up to the antimeridian
]


def _continents(folder):
    return memory_layer(CONTINENTS, "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _continent_partner():
    return partner_layer([_densified(shapely.box(0, 40, 30, 55)), _densified(shapely.box(-70, -30, -50, 0)),
                          metres_box(*BERLIN, 100.0)])


def _world_edges(folder):
    geoms = [shapely.box(170, 80, 180, 90), shapely.box(-180, -90, -170, -80), shapely.box(179, -1, 180, 1),
             _densified(shapely.box(-180, -90, 180, 90)), shapely.box(-180, 89, 180, 90)]
    return memory_layer(geoms, "EPSG:4326", {"cid": list(range(len(geoms)))}, name="case")


def _world_edges_partner():
    return partner_layer([shapely.box(175, 85, 180, 90), shapely.box(-180, -1, -179, 1), shapely.box(-10, -10, 10, 10)])


def _antimeridian(folder):
    geoms = [
        shapely.Polygon([(179.9, -0.1), (-179.9, -0.1), (-179.9, 0.1), (179.9, 0.1)]),  # naive crossing ring
        shapely.MultiPolygon([shapely.box(179.5, -17, 180, -16), shapely.box(-180, -17, -179.5, -16)]),  # split
        shapely.Polygon([(179.99999, 10), (180.00001, 10), (180.00001, 10.00001), (179.99999, 10.00001)]),  # 180+
    ]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _antimeridian_partner():
    return partner_layer([shapely.box(179.95, -0.05, 180, 0.05), shapely.box(-180, -16.8, -179.8, -16.2),
                          shapely.box(-180, 10, -179.99999, 10.00001)])


def _polar(folder):
    ring = [(lon, 80.0) for lon in np.linspace(-180, 180, 73)]
    cap = shapely.Polygon(ring + [(180, 90), (-180, 90)])
    south = shapely.Polygon([(lon, -70.0) for lon in np.linspace(180, -180, 73)] + [(-180, -90), (180, -90)])
    near_pole = shapely.Polygon([(0, 89.99), (90, 89.99), (180, 89.99), (-90, 89.99)])  # a square round the pole
    return memory_layer([cap, south, near_pole], "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _polar_partner():
    # Edges are straight in the local frame: a polar cap needs vertices along its parallel.
    return partner_layer([_densified(shapely.box(-180, 85, 180, 90)), shapely.box(0, -80, 10, -75),
                          metres_box(0, 89.999, 100.0)])


def _polar_stereographic(folder):
    # EPSG:3413 (NSIDC Sea Ice Polar Stereographic North): a 200 km square centred on the pole.
    return memory_layer([shapely.box(-100_000, -100_000, 100_000, 100_000)], "EPSG:3413", {"cid": [0]}, name="case")


def _out_of_range_lonlat(folder):
    geoms = [shapely.box(13.4, 89.9, 13.5, 95.0), shapely.box(200.0, 52.0, 201.0, 53.0),
             shapely.box(1000.0, 52.0, 1001.0, 53.0), shapely.box(13.4, -95, 13.5, -91), metres_box(*BERLIN, 20.0)]
    return memory_layer(geoms, "EPSG:4326", {"cid": list(range(len(geoms)))}, name="case")


def _out_of_range_utm(folder):
    geoms = [shapely.box(1e9, 5.8e6, 1e9 + 20, 5.8e6 + 20), shapely.box(-1e9, -1e9, 1e9, 1e9),
             shapely.box(390_000, 5_820_000, 390_020, 5_820_020)]
    return memory_layer(geoms, "EPSG:32633", {"cid": [0, 1, 2]}, name="case")


def _utm_partner():
    return partner_layer([shapely.box(390_000, 5_820_000, 390_030, 5_820_030)], "EPSG:32633")


def _no_crs(folder):
    return memory_layer([metres_box(*BERLIN, 20.0)], None, {"cid": [0]}, name="case")


def _undefined_crs_gpkg(srs_id):
    def make(folder):
        return gpkg_layer(write_gpkg(folder / f"undefined{srs_id}.gpkg", "POLYGON",
                                     [shapely.to_wkb(metres_box(*BERLIN, 20.0))], epsg=srs_id, attributes={"cid": [0]}))
    return make


def _no_prj_shapefile(folder):
    """A shapefile without its .prj, the commonest layer without a CRS."""
    from osgeo import ogr

    path = folder / "noprj.shp"
    driver = ogr.GetDriverByName("ESRI Shapefile")
    if path.exists():
        driver.DeleteDataSource(str(path))
    dataset = driver.CreateDataSource(str(path))
    table = dataset.CreateLayer("noprj", None, ogr.wkbPolygon)
    table.CreateField(ogr.FieldDefn("cid", ogr.OFTInteger))
    feature = ogr.Feature(table.GetLayerDefn())
    feature.SetField("cid", 0)
    feature.SetGeometry(ogr.CreateGeometryFromWkb(shapely.to_wkb(metres_box(*BERLIN, 20.0))))
    table.CreateFeature(feature)
    dataset = None
    layer = QgsVectorLayer(str(path), "case", "ogr")
    assert layer.isValid() and not layer.crs().isValid()
    return layer


def _other_crs(crs):
    def make(folder):
        transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        geoms = [shapely.transform(metres_box(*BERLIN, 20.0, dx=d), lambda xy: np.column_stack(
            transformer.transform(*xy.T))) for d in (0.0, 10.0)]
        return memory_layer(geoms, crs, {"cid": [0, 1]}, name="case")
    return make


def _custom_crs(folder):
    proj = "+proj=ortho +lat_0=52 +lon_0=13 +ellps=WGS84 +units=m +no_defs"
    transformer = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
    geom = shapely.transform(metres_box(*BERLIN, 20.0), lambda xy: np.column_stack(transformer.transform(*xy.T)))
    layer = memory_layer([geom], None, {"cid": [0]}, name="case")
    layer.setCrs(QgsCoordinateReferenceSystem.fromProj(proj))
    assert layer.crs().isValid() and not layer.crs().authid().startswith("EPSG")
    return layer


def _duplicates(folder):
    square = metres_box(*BERLIN, 20.0)
    return memory_layer([square] * 4 + [metres_box(*BERLIN, 20.0, dx=10)] * 2, "EPSG:4326",
                        {"dup_key": ["a", "a", "a", "b", "c", "c"]}, name="case")


def _non_ascii(folder):
    geoms = [metres_box(*BERLIN, 20.0), metres_box(*BERLIN, 20.0, dx=15)]
    return memory_layer(geoms, "EPSG:4326", {"höhe": [35.5, 40.0], "名前": ["ベルリン", "Zoë"]}, name="case")


def _rel_fields(folder):
    geoms = [metres_box(*BERLIN, 20.0), metres_box(*BERLIN, 20.0, dx=15)]
    return memory_layer(geoms, "EPSG:4326", {"rel_score": [0.5, 0.25], "rel_match": ["x", "y"], "rank": [1, 2],
                                             "in_key": ["k1", "k2"]}, name="case")


def _triangles_gpkg(folder):
    corners = _SQUARE[:3] + [_SQUARE[0]]
    triangle = struct.pack("<BII", 1, 17, 1) + struct.pack("<I", 4) + b"".join(struct.pack("<2d", *p) for p in corners)
    return gpkg_layer(write_gpkg(folder / "triangles.gpkg", "TRIANGLE", [triangle, triangle],
                                 attributes={"cid": [0, 1]}))


def _mislabelled_gpkg(folder):
    """A POLYGON table whose blobs hold a point, a line and a collection: the header lies."""
    wkbs = [shapely.to_wkb(shapely.Point(*BERLIN)), shapely.to_wkb(shapely.LineString(_SQUARE)),
            shapely.to_wkb(shapely.GeometryCollection([metres_box(*BERLIN, 20.0), shapely.Point(*BERLIN)])),
            shapely.to_wkb(metres_box(*BERLIN, 20.0))]
    return gpkg_layer(write_gpkg(folder / "mislabelled.gpkg", "POLYGON", wkbs, attributes={"cid": [0, 1, 2, 3]}))


def _corrupt_blobs_gpkg(folder):
    square = shapely.to_wkb(metres_box(*BERLIN, 20.0))
    wkbs = [square[:30], b"\x01\x03\x00\x00\x00\xff\xff\xff\x7f", b"\x07garbage", square]
    return gpkg_layer(write_gpkg(folder / "corrupt.gpkg", "POLYGON", wkbs, attributes={"cid": [0, 1, 2, 3]}))


def _pacific_360(folder):
    """Longitudes in the 0..360 convention of Pacific-centred data, and one far beyond."""
    geoms = [shapely.box(199.9, -17.1, 200.1, -16.9), shapely.box(179.9, 10, 180.1, 10.1),
             shapely.box(1e300, 52, 1e300, 53)]
    return memory_layer(geoms, "EPSG:4326", {"cid": [0, 1, 2]}, name="case")


def _pacific_partner():
    return partner_layer([shapely.box(-160.05, -17.05, -159.95, -16.95), shapely.box(-180, 10, -179.95, 10.1)])


def _typed_keys(folder):
    """Key candidates of every awkward type: date, date-time, boolean, binary, string list, NULL."""
    from qgis.core import QgsFeature, QgsField, QgsGeometry
    from qgis.PyQt.QtCore import QByteArray, QDate, QDateTime

    from overlap_relevance.algorithms.compat import field_type as t

    layer = QgsVectorLayer("MultiPolygon?crs=EPSG:4326", "case", "memory")
    layer.dataProvider().addAttributes([
        QgsField("day", t("Date")), QgsField("moment", t("DateTime")), QgsField("flag", t("Bool")),
        QgsField("blob", t("ByteArray")), QgsField("tags", t("StringList"), subType=t("String")),
        QgsField("maybe", t("String"))])
    layer.updateFields()
    features = []
    for i in range(3):
        feature = QgsFeature(layer.fields())
        geometry = QgsGeometry()
        geometry.fromWkb(shapely.to_wkb(metres_box(*BERLIN, 20.0, dx=5 * i)))
        feature.setGeometry(geometry)
        feature.setAttributes([QDate(2024, 2, 29 - i), QDateTime(QDate(2024, 1, 1 + i)), bool(i % 2),
                               QByteArray(bytes([0, 255, i])), ["a", "b"] if i else ["c", "d"], None if i else "x"])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def _zero_features(folder):
    return memory_layer([], "EPSG:4326", {}, name="case")


NO_CRS = "has no coordinate reference system"

CASES = [
    Case("bow_tie", _bow_tie),
    Case("spikes", _spikes),
    Case("unclosed_ring_gpkg", _unclosed_gpkg),
    Case("unclosed_ring_geojson", _unclosed_geojson),
    Case("empty_geometries", _empty),
    Case("empty_geometries_gpkg", _empty_gpkg),
    Case("null_geometries", _null),
    Case("only_null_geometries", _all_null),
    Case("nonfinite_coordinates", _nonfinite),
    Case("polygon_z", _dimensions("Z")),
    Case("polygon_m", _dimensions("M")),
    Case("polygon_zm", _dimensions("ZM")),
    Case("curve_polygon", _curved),
    Case("many_parts", _many_parts),
    Case("holes", _holes),
    Case("ring_4000", _ring(4000)),
    Case("ring_100000", _ring(100_000)),
    Case("tiny", _tiny, _tiny_partner),
    Case("continents", _continents, _continent_partner),
    Case("world_edges", _world_edges, _world_edges_partner),
    Case("antimeridian", _antimeridian, _antimeridian_partner),
    Case("polar", _polar, _polar_partner),
    Case("polar_stereographic", _polar_stereographic, _polar_partner),
    Case("out_of_range_lonlat", _out_of_range_lonlat),
    Case("out_of_range_utm", _out_of_range_utm, _utm_partner),
    Case("no_crs", _no_crs, errors={(None, None): NO_CRS}),
    Case("no_crs_shapefile", _no_prj_shapefile, errors={(None, None): NO_CRS}),
    # GeoPackage's srs_id 0 is by definition geographic on WGS 84's ellipsoid (GDAL reads it so): lon/lat.
    Case("undefined_geographic_crs_gpkg", _undefined_crs_gpkg(0)),
    Case("undefined_cartesian_crs_gpkg", _undefined_crs_gpkg(-1),
         errors={(None, None): "The {role} layer.*Undefined Cartesian SRS"}),
    Case("crs_3035", _other_crs("EPSG:3035")),
    Case("crs_custom_proj", _custom_crs),
    Case("duplicates", _duplicates, key="dup_key"),
    Case("non_ascii_fields", _non_ascii, key="名前"),
    Case("rel_fields", _rel_fields, errors={("input", "scorerelevance"): "already has a field named 'rel_"},
         key="rel_match"),
    Case("zero_features", _zero_features),
    Case("triangles_gpkg", _triangles_gpkg),
    Case("mislabelled_types_gpkg", _mislabelled_gpkg, errors={(None, None): "The {role} layer cannot be used: "
                                                                            "2 of 4 geometries are not polygons"}),
    Case("corrupt_blobs_gpkg", _corrupt_blobs_gpkg),
    Case("pacific_360", _pacific_360, _pacific_partner),
    *[Case(f"key_{name}", _typed_keys, key=name) for name in ("day", "moment", "flag", "blob", "tags", "maybe")],
]
