"""Parameters that several algorithms share, declared and read in one place."""

import math
import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProperty,
)

from .compat import FIELD_ANY, FIELD_NUMERIC, NUMBER_DOUBLE, PARAMETER_ADVANCED, SOURCE_POLYGON
from .lazy import lazy_import

np = lazy_import("numpy")

INPUT = "INPUT"
INPUT_KEY = "INPUT_KEY"
REFERENCE = "REFERENCE"
REFERENCE_KEY = "REFERENCE_KEY"
SEARCH_DISTANCE = "SEARCH_DISTANCE"
POSITIONAL_UNCERTAINTY = "POSITIONAL_UNCERTAINTY"
POSITIONAL_UNCERTAINTY_FIELD = "POSITIONAL_UNCERTAINTY_FIELD"
THRESHOLD = "THRESHOLD"
MODEL = "MODEL"

#: A model file is whatever the user named it; its content is checked on load (and in checkParameterValues).
MODEL_FILE_FILTER = "Model files (*.npz);;All files (*)"

#: Each shared parameter's help, written once: QGIS shows it as the parameter's tooltip, and the help page
#: (:mod:`.help`) lists it for the algorithms that have the parameter.
PARAMETER_HELP = {
    INPUT: "The polygon layer whose features are scored. Any CRS: each candidate pair is measured in its own "
           "local metric frame, so there is no need to reproject. 'Selected features only' is honoured.",
    INPUT_KEY: "Identifies input features in the output. Empty: the feature id.",
    REFERENCE: "The polygon layer the input is compared with, in any CRS. It may be the input layer itself; a "
               "feature is then never paired with itself.",
    REFERENCE_KEY: "Identifies reference features in the output (the match field). Empty: the feature id.",
    SEARCH_DISTANCE: "A pair is a candidate when the gap between the two features' bounding boxes, measured in "
                     "metres in the pair's local frame, is at most this distance. 0: touching bounding boxes. "
                     "It is widened to at least 3σ.",
    POSITIONAL_UNCERTAINTY: "σ, the standard deviation per axis, in metres, of a random displacement of the "
                            "reference feature relative to the input feature. The prediction is the distribution "
                            "of the overlap after such a displacement. 0: positions are taken as exact.",
    POSITIONAL_UNCERTAINTY_FIELD: "A numeric field of the input layer that gives σ per feature, in metres; "
                                  "empty values fall back to the positional uncertainty parameter.",
    THRESHOLD: "The IoU that counts as a match for the probability field: the probability that the IoU is at "
               "least this value.",
    MODEL: "Empty: the model bundled with the plugin. Or a model file written by 'Train relevance model', "
           "whatever its name. Files are checked before the run: no code is ever run from them, and a file "
           "whose weights do not match their recorded SHA-256 is refused.",
}


def declare(algorithm, parameter, help_text=None, advanced=False, decimals=None):
    """Add ``parameter`` to ``algorithm`` with its help (tooltip), advanced flag and shown decimals."""
    help_text = help_text if help_text is not None else PARAMETER_HELP.get(parameter.name())
    if help_text:
        parameter.setHelp(help_text)
    if advanced:
        parameter.setFlags(parameter.flags() | PARAMETER_ADVANCED)
    if decimals is not None:
        metadata = dict(parameter.metadata())
        metadata["widget_wrapper"] = {**dict(metadata.get("widget_wrapper") or {}), "decimals": decimals}
        parameter.setMetadata(metadata)
    algorithm.addParameter(parameter)
    return parameter


#: The results of every algorithm that reads both layers: how many features took part, how many were
#: skipped (each named in a warning, :func:`.layers.skipped_warning`); set by :meth:`.layers.LayerPair.feature_counts`.
INPUT_FEATURES, INPUT_SKIPPED = "INPUT_FEATURES", "INPUT_SKIPPED"
REFERENCE_FEATURES, REFERENCE_SKIPPED = "REFERENCE_FEATURES", "REFERENCE_SKIPPED"
FEATURE_COUNT_OUTPUTS = (
    (INPUT_FEATURES, "Input features that took part"),
    (INPUT_SKIPPED, "Input features skipped (no usable geometry)"),
    (REFERENCE_FEATURES, "Reference features that took part"),
    (REFERENCE_SKIPPED, "Reference features skipped (no usable geometry)"),
)


def add_layer_pair_parameters(algorithm, with_input_key=True):
    """Declare INPUT, INPUT_KEY, REFERENCE, REFERENCE_KEY and SEARCH_DISTANCE on ``algorithm``, and the
    outputs of :data:`FEATURE_COUNT_OUTPUTS`."""
    from qgis.core import QgsProcessingOutputNumber

    declare(algorithm, QgsProcessingParameterFeatureSource(INPUT, "Input layer", [SOURCE_POLYGON]))
    if with_input_key:
        declare(algorithm, QgsProcessingParameterField(
            INPUT_KEY, "Input key field (default: feature id)", None, INPUT, FIELD_ANY, optional=True))
    declare(algorithm, QgsProcessingParameterFeatureSource(REFERENCE, "Reference layer", [SOURCE_POLYGON]))
    declare(algorithm, QgsProcessingParameterField(
        REFERENCE_KEY, "Reference key field (default: feature id)", None, REFERENCE, FIELD_ANY, optional=True))
    declare(algorithm, QgsProcessingParameterNumber(
        SEARCH_DISTANCE, "Search distance (metres)", NUMBER_DOUBLE, 0.0, minValue=0.0), decimals=2)
    for name, description in FEATURE_COUNT_OUTPUTS:
        algorithm.addOutput(QgsProcessingOutputNumber(name, description))


def add_sigma_parameters(algorithm, default=0.0):
    """Declare POSITIONAL_UNCERTAINTY and POSITIONAL_UNCERTAINTY_FIELD."""
    declare(algorithm, QgsProcessingParameterNumber(
        POSITIONAL_UNCERTAINTY, "Positional uncertainty σ (metres, per axis)", NUMBER_DOUBLE, default, minValue=0.0),
        decimals=2)
    declare(algorithm, QgsProcessingParameterField(
        POSITIONAL_UNCERTAINTY_FIELD, "Positional uncertainty field on the input layer (metres)", None, INPUT,
        FIELD_NUMERIC, optional=True))


def add_model_parameters(algorithm, with_threshold=True, model_advanced=True):
    """Declare POSITIONAL_UNCERTAINTY, POSITIONAL_UNCERTAINTY_FIELD, THRESHOLD (advanced) and MODEL."""
    add_sigma_parameters(algorithm)
    if with_threshold:
        declare(algorithm, QgsProcessingParameterNumber(
            THRESHOLD, "IoU threshold for the probability field", NUMBER_DOUBLE, 0.5, minValue=0.0, maxValue=1.0),
            advanced=True, decimals=2)
    add_model_file_parameter(algorithm, "Model file (empty: the bundled model)", advanced=model_advanced)


def add_model_file_parameter(algorithm, label, advanced=False, help_text=None):
    return declare(algorithm, QgsProcessingParameterFile(MODEL, label, fileFilter=MODEL_FILE_FILTER, optional=True),
                   help_text=help_text, advanced=advanced)


def check_model_file(algorithm, parameters, context):
    """(ok, message) for MODEL: empty, or a file that loads as a model (checked before anything is read)."""
    from ..model.network import ModelFileError
    from ..model.scoring import load_model

    if algorithm.parameterDefinition(MODEL) is None:
        return True, ""
    path = algorithm.parameterAsFile(parameters, MODEL, context)
    if not path:
        return True, ""
    try:
        load_model(path)
    except ModelFileError as error:
        return False, f"Model file: {error}"
    except Exception as error:  # noqa: BLE001 - a bug in the checks must not abort qgis_process here
        return False, f"Model file: {path} cannot be used ({type(error).__name__}: {error})."
    return True, ""


def check_sigma_field(algorithm, parameters, context):
    """(ok, message): the positional uncertainty field, when given, exists on the input and is numeric."""
    if algorithm.parameterDefinition(POSITIONAL_UNCERTAINTY_FIELD) is None:
        return True, ""
    name = algorithm.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
    if not name:
        return True, ""
    source = algorithm.parameterAsSource(parameters, INPUT, context)
    if source is None:
        return True, ""  # Processing reports the missing layer itself
    index = source.fields().lookupField(name)
    if index < 0:
        return False, f"The input layer has no field named '{name}' (positional uncertainty field)."
    field = source.fields().at(index)
    if not field.isNumeric():
        return False, (f"The positional uncertainty field '{name}' is of type {field.typeName()}; it must be "
                       "numeric (σ in metres).")
    return True, ""


def load_model_parameter(algorithm, parameters, context):
    """The model named by MODEL (or the bundled one); a bad file is a clear QgsProcessingException."""
    from ..model.network import ModelFileError
    from ..model.scoring import load_model

    path = algorithm.parameterAsFile(parameters, MODEL, context) or None
    try:
        return load_model(path)
    except ModelFileError as error:
        raise QgsProcessingException(str(error)) from None


def finite_double(algorithm, parameters, name, context):
    """A number parameter's value; NaN, which passes Processing's range check, is refused by name."""
    value = algorithm.parameterAsDouble(parameters, name, context)
    if not math.isfinite(value):
        definition = algorithm.parameterDefinition(name)
        label = definition.description() if definition is not None else name
        raise QgsProcessingException(f"'{label}' ({name}) must be a finite number; got {value}.")
    return value


def positional_uncertainty(algorithm, parameters, context, input_arrays, feedback):
    """σ per input feature (n,), metres: the field's value where set, else the parameter."""
    default = finite_double(algorithm, parameters, POSITIONAL_UNCERTAINTY, context)
    field = algorithm.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
    sigma = np.full(len(input_arrays.fids), default, dtype=float)
    if field:
        values = input_arrays.values[field]
        bad = np.isfinite(values) & (values < 0)
        if bad.any():
            feedback.pushWarning(f"{int(bad.sum())} negative value(s) in '{field}' were replaced by {default} m.")
        usable = np.isfinite(values) & ~bad
        sigma[usable] = values[usable]
    return sigma


def read_key_field(algorithm, parameters, name, context):
    """The chosen key field name, or None for 'use the feature id'."""
    value = algorithm.parameterAsString(parameters, name, context)
    return value or None


def sources_are_same_layer(algorithm, parameters, context):
    """True when INPUT and REFERENCE read the same table (selection and filters aside), however each is spelt:
    see :func:`.destinations.same_layer`."""
    from .destinations import parameter_layer, same_layer

    return same_layer(parameter_layer(algorithm, parameters, INPUT, context),
                      parameter_layer(algorithm, parameters, REFERENCE, context))


def table_destination(context, dest_id):
    """Where a geometryless sink really went: a table sent to a .shp is written by OGR as a lone .dbf.

    QGIS still reports (and, in the GUI, tries to load) the .shp, which does not exist; point the
    result and the layer to load on completion at the .dbf instead.
    """
    if not isinstance(dest_id, str) or not dest_id.lower().endswith(".shp") or os.path.exists(dest_id):
        return dest_id
    dbf = dest_id[:-4] + ".dbf"
    if not os.path.exists(dbf):
        return dest_id
    layers = dict(context.layersToLoadOnCompletion())
    details = layers.pop(dest_id, None)
    if details is not None:
        layers[dbf] = details
        context.setLayersToLoadOnCompletion(layers)
    return dbf


def is_dbase_destination(algorithm, parameters, name, context):
    """Whether the sink parameter ``name`` writes a shapefile or a lone .dbf, whose field names (dBase) have
    at most 10 characters. GeoPackage, memory layers and the other formats have no such limit.

    Reads the parameter's value as given: ``parameterAsOutputLayer`` would also schedule the
    destination for loading on completion, which a check must not do.
    """
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink
    if isinstance(value, QgsProperty):
        value = value.staticValue()  # an expression-based destination is known only when the run evaluates it
    text = str(value or "").strip()
    if text.lower().startswith("ogr:"):
        text = text[4:]
    text = text.split("|")[0].strip().strip("'\"").lower()
    return text.endswith((".shp", ".dbf"))


def with_suffix(path, suffix):
    """``path`` with ``suffix`` appended when it has no extension, as QGIS does for its own outputs."""
    if not path or os.path.splitext(os.path.basename(path))[1]:
        return path
    return path + suffix
