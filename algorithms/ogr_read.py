"""Feature ids and geometries of a plain OGR layer, read by GDAL in Arrow batches.

QGIS hands Python one ``QgsFeature`` at a time, and taking its id, geometry and WKB costs
several microseconds per feature: more than a second for two layers of 100,000 buildings.
When a source is a whole OGR layer as it is on disk (a file path from ``qgis_process``, a
batch row or a model input; a project layer without selection, filter, subset or unsaved
edits), GDAL's Arrow stream returns the same feature ids and the same WKB in column batches,
about ten times faster. Anything else, and any doubt, goes through QGIS
(:func:`.sources.read_polygon_source` falls back when this module returns None).

GDAL 3.6's Arrow stream returns NULL for geometries it cannot decode in bulk, e.g. SpatiaLite blobs
in a GeoPackage (Russia and Ukraine in QGIS's own world_map.gpkg), which OGR's feature reading, and so
QGIS, read; every feature the stream returns without a geometry is read again by FID through OGR's
feature reading (:func:`_reread_missing`), so that a NULL here is a NULL in QGIS too.

QGIS's OGR provider uses OGR's FIDs as feature ids, which is what makes the two readings
interchangeable; :func:`.sources.read_polygon_source` checks it (every id where key or value
fields are read through QGIS as well, else the first thousand), and the writing pass of the
algorithms matches features by id.
"""

import numpy as np
from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProviderRegistry, QgsWkbTypes

from .compat import WKB_MULTIPOLYGON, WKB_POLYGON

_URI_KEYS = {"path", "layerName", "layerId", "vsiPrefix", "vsiSuffix"}  # anything else: read through QGIS


def whole_ogr_layer(algorithm, parameters, name, context, source):
    """The QgsVectorLayer behind parameter ``name`` when ``source`` is all of it, unfiltered, on OGR; else None.

    None for a selection, a feature limit or filter on the parameter, a subset string, a layer in
    edit mode, another provider, or a layer type GEOS cannot read from WKB as it is (curves).
    """
    value = parameters.get(name)
    if isinstance(value, QgsProcessingFeatureSourceDefinition):
        if value.selectedFeaturesOnly or getattr(value, "featureLimit", -1) >= 0 or getattr(
                value, "filterExpression", ""):
            return None
        parameters = {**parameters, name: value.source}  # QGIS 3.22 does not unwrap a definition here
    layer = algorithm.parameterAsVectorLayer(parameters, name, context)
    if layer is None or layer.providerType() != "ogr" or layer.subsetString() or layer.isEditable():
        return None
    if QgsWkbTypes.flatType(layer.wkbType()) not in (WKB_POLYGON, WKB_MULTIPOLYGON):
        return None
    count = layer.featureCount()
    if count < 0 or source.featureCount() != count:
        return None
    return layer


def read_ogr_geometries(layer, feedback=None, label="input"):
    """(fids (n,) int64, wkbs (n,) object array of bytes or None) of every feature, or None to fall back.

    Reads the file QGIS reads (decoded from the layer's source) with GDAL's Arrow stream,
    geometry and FID only. Returns None when GDAL lacks the Arrow stream, the source holds
    options this reader does not apply, or anything fails; the caller then reads through
    QGIS. Returns False when the user cancels.
    """
    try:
        from osgeo import gdal
    except ImportError:  # pragma: no cover - QGIS always ships GDAL's bindings
        return None
    parts = dict(QgsProviderRegistry.instance().decodeUri("ogr", layer.source()))
    if any(key not in _URI_KEYS and _given(value) for key, value in parts.items()):
        return None
    path = f"{_text(parts.get('vsiPrefix'))}{_text(parts.get('path'))}{_text(parts.get('vsiSuffix'))}"
    if not path:
        return None
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        dataset = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_READONLY)
        if dataset is None:
            return None
        layer_name = _text(parts.get("layerName"))
        layer_id = parts.get("layerId")
        ogr_layer = (dataset.GetLayerByName(layer_name) if layer_name
                     else dataset.GetLayer(int(layer_id) if _given(layer_id) else 0))
        if (ogr_layer is None or not hasattr(ogr_layer, "GetArrowStreamAsNumPy")
                or ogr_layer.GetLayerDefn().GetGeomFieldCount() != 1):
            return None
        definition = ogr_layer.GetLayerDefn()
        ogr_layer.SetIgnoredFields([definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())])
        fid_column = ogr_layer.GetFIDColumn() or "OGC_FID"
        geometry_column = ogr_layer.GetGeometryColumn() or "wkb_geometry"
        fids, wkbs = [], []
        stream = ogr_layer.GetArrowStreamAsNumPy(options=["INCLUDE_FID=YES", "USE_MASKED_ARRAYS=NO"])
        n_read, total = 0, layer.featureCount()
        for batch in stream:
            if feedback is not None and feedback.isCanceled():
                return False
            fids.append(np.asarray(batch[fid_column], dtype=np.int64))
            wkbs.append(np.asarray(batch[geometry_column], dtype=object))
            n_read += len(fids[-1])
            if feedback is not None:  # the count after the batch: what has been read, not what had been
                feedback.setProgressText(f"Reading {label} features: {n_read}/{total}")
        del stream
        if not fids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
        fids, wkbs = np.concatenate(fids), np.concatenate(wkbs)
        if len(fids) != layer.featureCount() or len(np.unique(fids)) != len(fids):
            return None
        if not _reread_missing(ogr_layer, fids, wkbs, feedback):
            return False
        del ogr_layer, dataset
    except Exception:  # noqa: BLE001 - any GDAL trouble: QGIS reads the layer instead
        return None
    finally:
        gdal.PopErrorHandler()
    return fids, wkbs


def _reread_missing(ogr_layer, fids, wkbs, feedback):
    """Fill, in place, the NULL entries of ``wkbs`` that OGR's feature reading gives a geometry for.

    The Arrow stream leaves NULL what it cannot decode in bulk (GDAL 3.6: SpatiaLite blobs in a
    GeoPackage); OGR's own reading of the same feature, the one QGIS uses, decodes it. A feature
    that is NULL there as well stays NULL. Returns False when the user cancels.
    """
    for count, index in enumerate(np.flatnonzero([wkb is None for wkb in wkbs])):
        if count % 1000 == 0 and feedback is not None and feedback.isCanceled():
            return False
        feature = ogr_layer.GetFeature(int(fids[index]))
        geometry = feature.GetGeometryRef() if feature is not None else None  # owned by ``feature``
        if geometry is not None:
            wkbs[index] = bytes(geometry.ExportToIsoWkb())
    return True


def _given(value):
    """A decoded URI value that says something (QGIS gives NULL QVariants, None or '' for absent ones)."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return False
    return value not in ("", [], {})


def _text(value):
    return value if isinstance(value, str) and _given(value) else ""
