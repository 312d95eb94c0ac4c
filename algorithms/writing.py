"""Writing outputs with every step checked: a refused feature, a failed flush or an output file that does not
hold what was written (a full disk, a format's limit) stops the run with an error naming the output."""

import os

from qgis.core import QgsField, QgsFields, QgsProcessingException

from .compat import FAST_INSERT, kind_type


def output_fields(fields, prefix="", key_field=None, first=None):
    """QgsFields: those of ``first`` (a QgsFields; none by default), then each of ``fields``
    (:mod:`..model.fields`) named ``prefix`` + its name; a "key" field copies ``key_field``'s type."""
    out = QgsFields(first) if first is not None else QgsFields()
    for field in fields:
        if field.kind == "key":
            qgs_field = QgsField(key_field)
            qgs_field.setName(prefix + field.name)
        else:
            qgs_field = QgsField(prefix + field.name, kind_type(field.kind))
        out.append(qgs_field)
    return out


def new_sink(algorithm, parameters, name, context, fields, geometry_type, crs=None):
    """(sink, destination id) of the feature sink output ``name``; QgsProcessingException when QGIS gives none."""
    args = (fields, geometry_type) if crs is None else (fields, geometry_type, crs)
    sink, dest_id = algorithm.parameterAsSink(parameters, name, context, *args)
    if sink is None:
        raise QgsProcessingException(algorithm.invalidSinkError(parameters, name))
    return sink, dest_id


def add_features(algorithm, sink, features, parameters, name):
    """Add ``features`` (a list) to ``sink``; a refusal raises QgsProcessingException naming output ``name``."""
    if features and not sink.addFeatures(features, FAST_INSERT):
        raise QgsProcessingException(algorithm.writeFeatureError(sink, parameters, name))


def flush_sink(algorithm, sink, parameters, name):
    """Write what ``sink`` still buffers; a failure raises QgsProcessingException naming output ``name``.

    The caller then drops its last reference to the sink, which closes the file, and calls
    :func:`check_written`.
    """
    if not sink.flushBuffer():
        raise QgsProcessingException(algorithm.writeFeatureError(sink, parameters, name))


def _label(algorithm, name):
    definition = algorithm.parameterDefinition(name)
    return f"'{definition.description()}' ({name})" if definition is not None else name


def _file_and_layer(dest_id):
    """(file, layer name or None) of a destination written to a file; (None, None) for anything else."""
    if not isinstance(dest_id, str):
        return None, None
    path, _, options = dest_id.partition("|")
    layer = None
    for option in options.split("|") if options else ():
        key, _, value = option.partition("=")
        if key.strip().lower() == "layername":
            layer = value.strip() or None
    if not os.path.isfile(path) and path.lower().endswith(".shp") and os.path.isfile(path[:-4] + ".dbf"):
        path = path[:-4] + ".dbf"  # a table sent to a shapefile is written as a lone .dbf
    return (path, layer) if os.path.isfile(path) else (None, None)


def check_written(algorithm, parameters, name, dest_id, n_features):
    """After the sink of output ``name`` is closed: its file opens and holds ``n_features`` features.

    Outputs that are not files (memory layers, databases) are left to their provider's own reports.
    """
    path, layer_name = _file_and_layer(dest_id)
    if path is None:
        return
    from osgeo import gdal

    label = _label(algorithm, name)
    count = None
    try:
        dataset = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_READONLY)
        if dataset is not None:
            layer = dataset.GetLayerByName(layer_name) if layer_name else None
            if layer is None and not layer_name:
                stem = os.path.splitext(os.path.basename(path))[0]
                layer = dataset.GetLayerByName(stem) or (dataset.GetLayer(0) if dataset.GetLayerCount() == 1 else None)
            if layer is not None:
                count = layer.GetFeatureCount(1)
            layer = None
        dataset = None
    except RuntimeError:  # GDAL in exception mode
        count = None
    if count is None:
        raise QgsProcessingException(
            f"The output {label} could not be written completely: GDAL cannot read {dest_id} back. Is the disk "
            "full, or the file in use? Free some space or choose another destination, then run again.")
    if count != n_features:
        raise QgsProcessingException(
            f"The output {label} could not be written completely: {dest_id} holds {count} of the {n_features} "
            "features written. Is the disk full? Free some space or choose another destination, then run again.")
