"""What a layer is, and where an output would go: no output overwrites an input or another output.

Layers are compared by what they are, never by how their source is spelt: the resolved file
(relative paths and symbolic links followed, a shapefile's parts taken as one file), the layer
in it (by name, whether given as ``|layername=``, ``|layerid=`` or left to the provider's
default), or the project layer itself.
"""

import os
from dataclasses import dataclass

from qgis.core import (
    QgsDataSourceUri,
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterVectorLayer,
    QgsProperty,
    QgsProviderRegistry,
)

#: A shapefile is several files; a write to any of them (a table sent to x.shp is written as x.dbf) touches all.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd", ".shp.xml")
#: Formats that hold several named layers: a new layer can be written into one without touching the others.
CONTAINER_SUFFIXES = (".gpkg", ".sqlite", ".db", ".spatialite")
#: How a new layer of an existing GeoPackage is named as a destination.
NEW_LAYER_HINT = ("in the dialog 'Save to GeoPackage…' with a new layer name; in qgis_process "
                  "ogr:dbname='FILE.gpkg' table=\"NEW_NAME\" (geom)")
_SUBLAYER_SEPARATOR = "!!::!!"  # QgsDataProvider::sublayerSeparator()
_INPUT_TYPES = (QgsProcessingParameterFeatureSource, QgsProcessingParameterVectorLayer,
                QgsProcessingParameterMapLayer, QgsProcessingParameterFile)


@dataclass(frozen=True)
class Place:
    """Where data lies: a file (resolved, ``file`` set), or a non-file source (``other`` set).

    layer : the layer's name inside the file; None for the whole file (or the provider's first layer
        when reading, resolved by :func:`layer_place` where it can be).
    """

    file: str = None
    layer: str = None
    other: tuple = None

    @property
    def in_container(self):
        return self.file is not None and self.file.lower().endswith(CONTAINER_SUFFIXES)


def resolved_file(path):
    """``path`` as the file it reaches: absolute, links followed, a shapefile's part as its .shp."""
    real = os.path.realpath(os.path.expanduser(path))
    lower = real.lower()
    for suffix in SHAPEFILE_PARTS:
        if lower.endswith(suffix):
            return real[: len(real) - len(suffix)] + ".shp"
    return real


def _text(value):
    """A QVariant NULL, None or '' as None; anything else as str."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    text = str(value)
    return text or None


def layer_place(layer):
    """The :class:`Place` of a map layer: its file and layer name, or (provider, source) otherwise."""
    provider = layer.providerType()
    if provider == "ogr":
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        path = _text(parts.get("path"))
        if path and os.path.exists(path):
            return Place(file=resolved_file(path), layer=_ogr_layer_name(layer, parts))
    elif provider in ("spatialite",):
        uri = QgsDataSourceUri(layer.source())
        if uri.database() and os.path.exists(uri.database()):
            return Place(file=resolved_file(uri.database()), layer=uri.table() or None)
    if provider in ("memory", "virtual") or not layer.source():
        return Place(other=("layer", layer.id()))  # lives only in this process: the layer is what it is
    return Place(other=(provider, _without_subset(provider, layer.source())))


def _ogr_layer_name(layer, parts):
    """The name of the OGR layer ``layer`` reads, whether named, numbered or the file's first."""
    name = _text(parts.get("layerName"))
    if name:
        return name
    provider = layer.dataProvider()
    sublayers = provider.subLayers() if provider is not None else []
    if sublayers:  # "index!!::!!name!!::!!count!!::!!type!!::!!geometry column": the layer opened
        fields = sublayers[0].split(_SUBLAYER_SEPARATOR)
        if len(fields) > 1 and fields[1]:
            return fields[1]
    layer_id = _text(parts.get("layerId"))
    return f"#{layer_id or 0}"


def _without_subset(provider, source):
    """A data source without its subset (filter), which selects features but not the table."""
    try:
        parts = dict(QgsProviderRegistry.instance().decodeUri(provider, source))
    except Exception:  # noqa: BLE001 - a provider without URI decoding: the source as it is
        return source
    parts.pop("subset", None)
    parts.pop("sql", None)
    return tuple(sorted((key, str(value)) for key, value in parts.items())) if parts else source


def _subset(layer):
    return (layer.subsetString() or "").strip()


def same_layer(layer_a, layer_b):
    """Whether two map layers read one table, so that a feature id names the same feature in both.

    A subset (filter) on either side keeps the ids, so it does not make the layers differ; an OGR
    SQL subset (``SELECT ...``) may number features anew, so there the subsets must be equal too.
    """
    if layer_a is None or layer_b is None:
        return False
    if layer_a.id() == layer_b.id():
        return True
    if layer_a.providerType() != layer_b.providerType():
        return False
    if layer_place(layer_a) != layer_place(layer_b):
        return False
    subsets = (_subset(layer_a), _subset(layer_b))
    if subsets[0] != subsets[1] and any(s.lower().startswith("select") for s in subsets):
        return False
    return True


def parameter_layer(algorithm, parameters, name, context):
    """The map layer a layer or feature source parameter names, however it is given (a path, a layer id or
    name, a layer, or a feature source definition with or without 'selected features only')."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingFeatureSourceDefinition):
        source = value.source
        value = source.staticValue() if isinstance(source, QgsProperty) else source
        if isinstance(value, QgsMapLayer):
            return value
        if not isinstance(value, str):
            return None
        parameters = {name: value}
    return algorithm.parameterAsLayer(parameters, name, context)


def _input_places(algorithm, parameters, context):
    """(label, Place) of every layer and file the algorithm reads."""
    places = []
    for definition in algorithm.parameterDefinitions():
        if definition.isDestination() or not isinstance(definition, _INPUT_TYPES):
            continue
        name = definition.name()
        label = f"the {definition.description().lower()} ({name})"
        if isinstance(definition, QgsProcessingParameterFile):
            path = algorithm.parameterAsFile(parameters, name, context)
            if not path and name == "MODEL":
                from ..model.network import BUNDLED_MODEL

                path, label = str(BUNDLED_MODEL), "the bundled model"
            if path:
                places.append((label, Place(file=resolved_file(path))))
            continue
        layer = parameter_layer(algorithm, parameters, name, context)
        if layer is not None:
            places.append((label, layer_place(layer)))
    return places


def destination_place(definition, value):
    """The :class:`Place` a destination parameter's value writes to; None when it writes no file
    (temporary or memory outputs, a database, an expression known only when the run evaluates it)."""
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink
    if isinstance(value, QgsProperty):
        # An expression-based destination is known only when the run evaluates it (its static value is empty).
        value = value.staticValue()
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    if text == QgsProcessing.TEMPORARY_OUTPUT or text.lower().startswith("memory:"):
        return None
    layer = None
    lower = text.lower()
    if lower.startswith(("ogr:", "spatialite:")):
        uri = QgsDataSourceUri(text.split(":", 1)[1])
        if uri.database():
            text, layer = uri.database(), uri.table() or None
        else:
            text = text.split(":", 1)[1]
    elif ":" in text.split("|")[0] and not os.path.isabs(text) and not _looks_like_windows_path(text):
        return None  # another provider's URI (postgres:, …): not a file
    if "|" in text:
        text, *options = text.split("|")
        for option in options:
            key, _, option_value = option.partition("=")
            if key.strip().lower() == "layername" and option_value.strip():
                layer = option_value.strip()
    text = text.strip().strip("'\"")
    if not text:
        return None
    if not os.path.splitext(os.path.basename(text))[1]:
        extension = getattr(definition, "defaultFileExtension", lambda: "")()
        text = f"{text}.{extension}" if extension else text
    return Place(file=resolved_file(text), layer=layer)


def _looks_like_windows_path(text):
    return len(text) > 2 and text[1] == ":" and text[2] in "\\/"


def _overlaps(written, read):
    """Whether writing ``written`` can destroy ``read``: the same file, unless both are distinct layers of
    a file that holds several (a GeoPackage keeps its other layers when a new one is written)."""
    if written.file is None or read.file is None or written.file != read.file:
        return False
    if written.in_container and written.layer is not None and read.layer is not None:
        return written.layer.lower() == read.layer.lower()
    return True


def check_destinations(algorithm, parameters, context):
    """(ok, message): no destination is, or holds, a layer or file the algorithm reads, and no two
    destinations write to one file (or one layer of a GeoPackage)."""
    inputs = _input_places(algorithm, parameters, context)
    outputs = []
    for definition in algorithm.destinationParameterDefinitions():
        value = parameters.get(definition.name(), definition.defaultValue())
        place = destination_place(definition, value)
        if place is not None:
            outputs.append((f"'{definition.description()}' ({definition.name()})", place))
    for label, place in outputs:
        for input_label, read in inputs:
            if _overlaps(place, read):
                where = place.file + (f"|layername={place.layer}" if place.layer else "")
                hint = f", or a new layer of that file ({NEW_LAYER_HINT})" if place.in_container else ""
                return False, (f"The output {label} would overwrite {input_label}, which is read from {where}. "
                               f"Choose another file for the output{hint}; inputs are never overwritten.")
    for i, (label, place) in enumerate(outputs):
        for other_label, other in outputs[i + 1:]:
            if _overlaps(place, other):
                return False, (f"The outputs {label} and {other_label} both write to {place.file}, so one would "
                               "overwrite the other. Give each output its own file"
                               + (f", or its own layer of that file ({NEW_LAYER_HINT})." if place.in_container else "."))
    return True, ""
