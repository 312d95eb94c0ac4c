"""Build real QGIS layers from shapely geometries for tests."""

import shapely
from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsField, QgsGeometry, QgsVectorLayer

from overlap_relevance.algorithms.compat import field_type

_TYPES = {int: field_type("LongLong"), float: field_type("Double"), str: field_type("String")}


def memory_layer(geoms, crs="EPSG:4326", attributes=None, geometry_type="MultiPolygon", name="layer"):
    """A memory layer holding ``geoms`` (shapely or None) with optional attribute columns.

    attributes : dict name -> list of values (int, float or str), aligned with ``geoms``.
    """
    attributes = attributes or {}
    uri = geometry_type + (f"?crs={crs}" if crs else "")
    layer = QgsVectorLayer(uri, name, "memory")
    if not crs:
        layer.setCrs(QgsCoordinateReferenceSystem())
    provider = layer.dataProvider()
    provider.addAttributes([QgsField(key, _TYPES[type(values[0])]) for key, values in attributes.items()])
    layer.updateFields()
    features = []
    for i, geom in enumerate(geoms):
        feature = QgsFeature(layer.fields())
        if geom is not None:
            geometry = QgsGeometry()
            geometry.fromWkb(shapely.to_wkb(geom))  # WKB: WKT would round coordinates
            feature.setGeometry(geometry)
        feature.setAttributes([values[i] for values in attributes.values()])
        features.append(feature)
    provider.addFeatures(features)
    layer.updateExtents()
    return layer


def layer_rows(layer):
    """All features of ``layer`` as dicts of attribute values (NULL becomes None)."""
    names = layer.fields().names()
    return [dict(zip(names, map(as_python, feature.attributes()))) for feature in layer.getFeatures()]


def as_python(value):
    """QGIS NULL (a null QVariant on 3.22) as None, anything else unchanged."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    return value
