"""Enums that moved between QGIS 3.22 and QGIS 4.

QGIS 3.30+ scoped the Processing enums under ``Qgis`` and QGIS 4 (Qt 6) drops the old
unscoped names, so each constant tries the scoped name first and falls back to the
3.22 spelling. Algorithms import these instead of spelling either form themselves.
"""

from qgis.core import (
    Qgis,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsProcessing,
    QgsProcessingFeatureSource,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)


def _scoped(scoped_path, legacy):
    """Return ``Qgis.<scoped_path>`` when this QGIS has it, else ``legacy``."""
    value = Qgis
    try:
        for part in scoped_path.split("."):
            value = getattr(value, part)
    except AttributeError:
        return legacy
    return value


SOURCE_POLYGON = _scoped("ProcessingSourceType.VectorPolygon", getattr(QgsProcessing, "TypeVectorPolygon", None))
SOURCE_TABLE = _scoped("ProcessingSourceType.Vector", getattr(QgsProcessing, "TypeVector", None))
SOURCE_ANY_GEOMETRY = _scoped("ProcessingSourceType.VectorAnyGeometry", getattr(QgsProcessing, "TypeVectorAnyGeometry", None))
NUMBER_DOUBLE = _scoped("ProcessingNumberParameterType.Double", getattr(QgsProcessingParameterNumber, "Double", None))
NUMBER_INTEGER = _scoped("ProcessingNumberParameterType.Integer", getattr(QgsProcessingParameterNumber, "Integer", None))
FIELD_ANY = _scoped("ProcessingFieldParameterDataType.Any", getattr(QgsProcessingParameterField, "Any", None))
FIELD_NUMERIC = _scoped("ProcessingFieldParameterDataType.Numeric", getattr(QgsProcessingParameterField, "Numeric", None))
GEOMETRY_POLYGON = _scoped("GeometryType.Polygon", getattr(QgsWkbTypes, "PolygonGeometry", None))
WKB_NO_GEOMETRY = _scoped("WkbType.NoGeometry", getattr(QgsWkbTypes, "NoGeometry", None))
WKB_LINESTRING = _scoped("WkbType.LineString", getattr(QgsWkbTypes, "LineString", None))
WKB_POLYGON = _scoped("WkbType.Polygon", getattr(QgsWkbTypes, "Polygon", None))
WKB_MULTIPOLYGON = _scoped("WkbType.MultiPolygon", getattr(QgsWkbTypes, "MultiPolygon", None))
WKB_TRIANGLE = _scoped("WkbType.Triangle", getattr(QgsWkbTypes, "Triangle", None))
SKIP_GEOMETRY_CHECKS = _scoped(
    "ProcessingFeatureSourceFlag.SkipGeometryValidityChecks",
    getattr(QgsProcessingFeatureSource, "FlagSkipGeometryValidityChecks", None),
)
REQUEST_NO_GEOMETRY = _scoped("FeatureRequestFlag.NoGeometry", getattr(QgsFeatureRequest, "NoGeometry", None))
NO_GEOMETRY_CHECK = _scoped("InvalidGeometryCheck.NoCheck", getattr(QgsFeatureRequest, "GeometryNoCheck", None))
PARAMETER_ADVANCED = _scoped("ProcessingParameterFlag.Advanced",
                             getattr(QgsProcessingParameterDefinition, "FlagAdvanced", None))
PARAMETER_OPTIONAL = _scoped("ProcessingParameterFlag.Optional",
                             getattr(QgsProcessingParameterDefinition, "FlagOptional", None))
FAST_INSERT = getattr(getattr(QgsFeatureSink, "Flag", QgsFeatureSink), "FastInsert", None)
if FAST_INSERT is None:  # pragma: no cover - every supported QGIS has one of the two
    FAST_INSERT = QgsFeatureSink.FastInsert


#: QVariant.Type names whose QMetaType.Type name differs.
_META_TYPE_NAMES = {"String": "QString", "Date": "QDate", "DateTime": "QDateTime", "ByteArray": "QByteArray",
                    "StringList": "QStringList"}


#: The QVariant.Type name of each neutral kind of ``model/fields.py`` (a "key" field copies a layer's key field).
_KIND_TYPE_NAMES = {"double": "Double", "int": "Int", "string": "String"}


def kind_type(kind):
    """The type argument QgsField wants for a neutral kind of ``model/fields.py``: 'double', 'int', 'string'."""
    return field_type(_KIND_TYPE_NAMES[kind])


def field_type(name):
    """The type argument QgsField wants for ``name`` (a QVariant.Type name: 'Double', 'Int', 'LongLong',
    'String', 'Date', 'DateTime', 'Bool', 'ByteArray', 'StringList').

    QGIS 3.38+ takes ``QMetaType.Type``; earlier versions take ``QVariant.Type``,
    which Qt 6 no longer has.
    """
    if Qgis.QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        return getattr(QMetaType.Type, _META_TYPE_NAMES.get(name, name))
    from qgis.PyQt.QtCore import QVariant

    return getattr(QVariant, name)
