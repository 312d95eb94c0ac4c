"""Reading Processing feature sources into the arrays the core works on."""

from dataclasses import dataclass

import numpy as np
import shapely
from qgis.core import QgsFeatureRequest, QgsGeometry, QgsPolygon, QgsProcessingException, QgsWkbTypes

from .compat import (GEOMETRY_POLYGON, NO_GEOMETRY_CHECK, REQUEST_NO_GEOMETRY, SKIP_GEOMETRY_CHECKS,
                             WKB_TRIANGLE)
from .ogr_read import read_ogr_geometries

_CANCEL_CHECK_EVERY = 2000
_IDS_CHECKED = 1000  # feature ids compared between GDAL and QGIS when no attribute is read
_POLYGON_TYPE_IDS = (-1, 3, 6)  # shapely type ids: missing, Polygon, MultiPolygon
#: Surface types QGIS counts as polygon geometry that GEOS cannot read (a lone Triangle is read as a polygon).
_SURFACES_NOT_POLYGONS = ("tin", "tinz", "tinm", "tinzm", "polyhedralsurface", "polyhedralsurfacez",
                          "polyhedralsurfacem", "polyhedralsurfacezm")


@dataclass
class SourceArrays:
    """One layer as arrays.

    fids : (n,) int64 feature ids.
    keys : (n,) object array, the key field's values, or the feature ids.
    geoms : (n,) shapely geometries in the layer CRS, None where the feature had none
        or GEOS could not read it; the whole field is None once the layer is converted
        to lon/lat (:meth:`.layers.LayerPair.to_lonlat`).
    crs : a string pyproj understands (authority code or WKT).
    n_unreadable : geometries present in QGIS that GEOS could not read even after fixing.
    values : dict of (n,) float arrays, one per requested numeric field (NULL -> NaN).
    unreadable : (n,) bool, which features those are (their ``geoms`` entry is None).
    """

    fids: np.ndarray
    keys: np.ndarray
    geoms: np.ndarray
    crs: str
    n_unreadable: int
    values: dict
    unreadable: np.ndarray = None


def _no_crs_error(layer_label, why=""):
    return QgsProcessingException(
        f"The {layer_label} layer has no coordinate reference system{why}. "
        "Set one in its Layer Properties (Source tab), then run again."
    )


def _is_engineering(qgs_crs):
    """A local (engineering) CRS, e.g. GeoPackage's 'Undefined Cartesian SRS': it says nothing of where on
    Earth the layer lies."""
    wkt = qgs_crs.toWkt().lstrip().upper()
    return not qgs_crs.authid() and wkt.startswith(("LOCAL_CS", "ENGCRS", "ENGINEERINGCRS"))


def _is_undefined_geographic(qgs_crs):
    """GeoPackage's 'Undefined geographic SRS' (srs_id 0): read as lon/lat on WGS 84's ellipsoid."""
    return not qgs_crs.authid() and qgs_crs.description().strip().lower().startswith("undefined geographic")


def crs_for_core(qgs_crs, layer_label):
    """The pyproj form of a QGIS CRS; a layer without a valid CRS, or with an undefined local one, is refused."""
    if not qgs_crs.isValid():
        raise _no_crs_error(layer_label)
    if _is_engineering(qgs_crs):
        raise _no_crs_error(layer_label, f" (its CRS is '{qgs_crs.description()}', a local one that says nothing "
                                         "of where on Earth it lies)")
    authid = qgs_crs.authid()
    if authid.upper().startswith(("EPSG:", "ESRI:", "IGNF:")):
        return authid
    return qgs_crs.toWkt(getattr(qgs_crs, "WKT2_2019", 5)) or qgs_crs.toProj()


def check_polygon_source(source, layer_label):
    """Refuse a source whose geometry type is not polygonal, with a clear message."""
    if source is None:
        raise QgsProcessingException(f"The {layer_label} layer could not be loaded.")
    if QgsWkbTypes.geometryType(source.wkbType()) != GEOMETRY_POLYGON:
        raise QgsProcessingException(
            f"The {layer_label} layer must contain polygons; it has "
            f"{QgsWkbTypes.displayString(source.wkbType())} geometries."
        )
    flat = QgsWkbTypes.displayString(QgsWkbTypes.flatType(source.wkbType()))
    if flat.lower() in _SURFACES_NOT_POLYGONS:
        raise QgsProcessingException(
            f"The {layer_label} layer has {flat} geometries (surfaces made of triangles or faces), which QGIS counts "
            "as polygons but which cannot be compared or written back as such. Convert them to polygons first "
            "(e.g. dissolve each surface into one polygon), then run again."
        )


def _field_index(source, name, layer_label):
    index = source.fields().lookupField(name)
    if index < 0:
        raise QgsProcessingException(f"The {layer_label} layer has no field named '{name}'.")
    return index


def read_polygon_source(source, layer_label, key_field=None, feedback=None, value_fields=(), layer=None):
    """Read every feature of ``source`` (selection already applied by Processing).

    Curved geometries are segmentized and triangles read as polygons, since GEOS reads
    neither (see :func:`_for_geos`).
    ``value_fields`` are numeric fields read as float arrays. ``layer``: the source's whole OGR
    layer when :func:`.ogr_read.whole_ogr_layer` found one; its ids and geometries are then
    read by GDAL in batches, and only the key and value fields through QGIS. Returns None
    when the user cancels.
    """
    check_polygon_source(source, layer_label)
    crs = crs_for_core(source.sourceCrs(), layer_label)
    key_index = _field_index(source, key_field, layer_label) if key_field else -1
    value_index = [_field_index(source, name, layer_label) for name in value_fields]
    rows = _read_with_ogr(source, layer, layer_label, key_index, value_index, feedback) if layer is not None else None
    if rows is None:
        rows = _read_with_qgis(source, layer_label, key_index, value_index, feedback)
    if rows is False:
        return None
    fids, keys, values, geoms, unreadable = rows
    key_array = np.empty(len(fids), dtype=object)
    key_array[:] = [None if _is_null(k) else k for k in keys] if key_index >= 0 else fids.tolist()
    value_arrays = {name: np.array([_as_float(v) for v in column], dtype=float)
                    for name, column in zip(value_fields, values)}
    if _is_undefined_geographic(source.sourceCrs()):
        _check_lonlat_range(geoms, source.sourceCrs(), layer_label)
    return SourceArrays(fids, key_array, geoms, crs, int(np.count_nonzero(unreadable)), value_arrays, unreadable)


def _check_lonlat_range(geoms, qgs_crs, layer_label):
    """An undefined geographic CRS is taken as lon/lat, which coordinates beyond ±180°/±90° cannot be."""
    present = geoms[~shapely.is_missing(geoms)] if len(geoms) else geoms
    if not len(present):
        return
    bounds = shapely.bounds(present)
    bounds = np.abs(bounds[np.isfinite(bounds).all(axis=1)])
    if len(bounds) and (bounds[:, [0, 2]].max() > 180.0 + 1e-9 or bounds[:, [1, 3]].max() > 90.0 + 1e-9):
        raise _no_crs_error(layer_label, f" (its CRS is '{qgs_crs.description()}', and its coordinates are not "
                                         "longitudes and latitudes)")


def _request(key_index, value_index):
    request = QgsFeatureRequest()
    wanted = sorted({i for i in [key_index, *value_index] if i >= 0})
    if wanted:
        request.setSubsetOfAttributes(wanted)
    else:
        request.setNoAttributes()
    request.setInvalidGeometryCheck(NO_GEOMETRY_CHECK)
    return request


def _read_with_qgis(source, layer_label, key_index, value_index, feedback, only=None):
    """(fids, keys, values, geoms, unreadable mask) read feature by feature through QGIS; False when cancelled.

    only: the ids of the only features to read (returned in QGIS's order, not necessarily this one).
    """
    request = _request(key_index, value_index)
    if only is not None:
        request.setFilterFids([int(fid) for fid in only])
    total = max(source.featureCount(), 1)
    needs_conversion = {}  # geometry type -> whether GEOS needs it converted (see _for_geos)
    fids, keys, wkbs = [], [], []
    values = [[] for _ in value_index]
    for count, feature in enumerate(source.getFeatures(request, SKIP_GEOMETRY_CHECKS)):
        if count % _CANCEL_CHECK_EVERY == 0 and feedback is not None:
            if feedback.isCanceled():
                return False
            if count:
                feedback.setProgressText(f"Reading {layer_label} features: {count}/{total}")
        fids.append(feature.id())
        if key_index >= 0:
            keys.append(feature.attribute(key_index))
        for column, index in zip(values, value_index):
            column.append(feature.attribute(index))
        geometry = feature.geometry()
        if geometry.isNull():
            wkbs.append(None)
        else:
            wkb_type = geometry.wkbType()
            convert = needs_conversion.get(wkb_type)
            if convert is None:
                convert = needs_conversion[wkb_type] = _needs_conversion(wkb_type)
            wkbs.append(bytes((_for_geos(geometry) if convert else geometry).asWkb()))
    if feedback is not None and only is None:
        feedback.setProgressText(f"Read {len(fids)} {layer_label} features")
    wkb_array = np.empty(len(wkbs), dtype=object)
    wkb_array[:] = wkbs
    geoms, unreadable = _from_wkb(wkb_array)
    return np.asarray(fids, dtype=np.int64), keys, values, geoms, unreadable


def _read_with_ogr(source, layer, layer_label, key_index, value_index, feedback):
    """As :func:`_read_with_qgis`, geometries by GDAL (:mod:`.ogr_read`); None: read through QGIS instead."""
    rows = read_ogr_geometries(layer, feedback, layer_label)
    if rows is None or rows is False:
        return rows
    fids, wkbs = rows
    geoms, unreadable = _from_wkb(wkbs)
    # What GEOS could not read, or read as something other than a polygon (curves, collections), QGIS
    # reads again, feature by feature, as :func:`_read_with_qgis` would have: converted, or reported.
    odd = np.flatnonzero(unreadable | ~np.isin(shapely.get_type_id(geoms), _POLYGON_TYPE_IDS))
    if len(odd):
        again = _read_with_qgis(source, layer_label, -1, [], feedback, only=fids[odd])
        if again is False:
            return False
        found, order = again[0], np.argsort(again[0])  # QGIS returns a set of ids in its own order
        if len(found) != len(odd) or not np.array_equal(found[order], np.sort(fids[odd])):
            return None  # QGIS does not find them by GDAL's ids: QGIS reads the whole layer
        at = order[np.searchsorted(found[order], fids[odd])]
        geoms[odd], unreadable[odd] = again[3][at], again[4][at]
    # QGIS reads the key and value fields, and the ids to compare with GDAL's: every id, or, when no
    # field is wanted, the first _IDS_CHECKED, enough to tell that QGIS numbers features as GDAL does.
    request = _request(key_index, value_index)
    request.setFlags(request.flags() | REQUEST_NO_GEOMETRY)
    ids_only = key_index < 0 and not value_index
    if ids_only:
        request.setLimit(_IDS_CHECKED)
    attribute_fids, keys, values = [], [], [[] for _ in value_index]
    for count, feature in enumerate(source.getFeatures(request, SKIP_GEOMETRY_CHECKS)):
        if count % _CANCEL_CHECK_EVERY == 0 and feedback is not None and feedback.isCanceled():
            return False
        attribute_fids.append(feature.id())
        if key_index >= 0:
            keys.append(feature.attribute(key_index))
        for column, index in zip(values, value_index):
            column.append(feature.attribute(index))
    expected = fids[:_IDS_CHECKED] if ids_only else fids
    if not np.array_equal(np.asarray(attribute_fids, dtype=np.int64), expected):
        return None  # QGIS and GDAL disagree on ids or order: QGIS's reading is the one to trust
    return fids, keys, values, geoms, unreadable


def _from_wkb(wkbs):
    """(n,) WKB (None where absent) -> (geometries, (n,) bool: present but not read by GEOS)."""
    present = np.array([w is not None for w in wkbs], dtype=bool)
    geoms = np.full(len(wkbs), None, dtype=object)
    if present.any():
        with np.errstate(invalid="ignore"):  # NaN coordinates: flagged later (frame.layer_to_lonlat)
            try:
                geoms[present] = shapely.from_wkb(wkbs[present], on_invalid="fix")
            except Exception:  # noqa: BLE001 - one WKB GEOS refuses (a curve type it lacks): one at a time
                read = np.empty(int(present.sum()), dtype=object)
                read[:] = [_one_from_wkb(wkb) for wkb in wkbs[present]]
                geoms[present] = read
    return geoms, present & shapely.is_missing(geoms)


def _one_from_wkb(wkb):
    try:
        return shapely.from_wkb(wkb, on_invalid="fix")
    except Exception:  # noqa: BLE001 - unreadable: None, counted by the caller
        return None


def _needs_conversion(wkb_type):
    """Whether GEOS cannot read this geometry type as it is: curves and triangles (see :func:`_for_geos`)."""
    flat_type = QgsWkbTypes.flatType(wkb_type)
    return QgsWkbTypes.isCurvedType(flat_type) or flat_type == WKB_TRIANGLE


def _for_geos(geometry):
    """The geometry in a type GEOS reads: curves segmentized, a triangle as the polygon it is."""
    if QgsWkbTypes.isCurvedType(QgsWkbTypes.flatType(geometry.wkbType())):
        return QgsGeometry(geometry.constGet().segmentize())
    return QgsGeometry(QgsPolygon(geometry.constGet().exteriorRing().clone()))


def _as_float(value):
    if _is_null(value):
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _is_null(value):
    # QGIS returns NULL attributes as QVariant(NULL) or None depending on the version.
    return value is None or (hasattr(value, "isNull") and value.isNull())
