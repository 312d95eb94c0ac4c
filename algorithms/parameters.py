"""Parameters that several algorithms share, declared and read in one place."""

import math
import os

import numpy as np
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)

from ..plugin.compat import FIELD_ANY, FIELD_NUMERIC, NUMBER_DOUBLE, SOURCE_POLYGON

INPUT = "INPUT"
INPUT_KEY = "INPUT_KEY"
REFERENCE = "REFERENCE"
REFERENCE_KEY = "REFERENCE_KEY"
SEARCH_DISTANCE = "SEARCH_DISTANCE"
POSITIONAL_UNCERTAINTY = "POSITIONAL_UNCERTAINTY"
POSITIONAL_UNCERTAINTY_FIELD = "POSITIONAL_UNCERTAINTY_FIELD"
THRESHOLD = "THRESHOLD"
MODEL = "MODEL"

LAYER_PAIR_HELP = (
    "<h3>Input layers</h3>"
    "<p><b>Input layer</b> and <b>Reference layer</b> are polygon layers in any coordinate reference "
    "systems; they may differ and you never need to reproject. Each candidate pair is projected into its "
    "own local metric frame (a Lambert azimuthal equal-area projection centred on the pair), so areas and "
    "distances are true metres wherever the data lies, across the antimeridian included. The reference "
    "may be the same layer as the input; a feature is then never paired with itself. "
    "'Selected features only' is honoured.</p>"
    "<p><b>Key fields</b> identify features in the output; by default the feature id is used.</p>"
    "<p><b>Search distance</b> (metres): a pair is a candidate when the gap between the two features' "
    "bounding boxes, measured in the pair's local frame, is at most this distance; 0 means touching "
    "bounding boxes.</p>"
    "<p>Invalid geometries are repaired (GEOS make_valid) and counted in the log; curved geometries are "
    "segmentized and Z/M values ignored. Features without a usable geometry are skipped and counted in the log: "
    "no geometry, an empty one, coordinates that are not finite or lie off the globe (latitude beyond ±90°; "
    "longitudes in 0..360 are fine), or a feature reaching more than 90° from its centre (a whole-world box), "
    "which no local frame can measure.</p>"
)


def add_layer_pair_parameters(algorithm, with_input_key=True):
    """Declare INPUT, INPUT_KEY, REFERENCE, REFERENCE_KEY and SEARCH_DISTANCE on ``algorithm``."""
    algorithm.addParameter(QgsProcessingParameterFeatureSource(INPUT, "Input layer", [SOURCE_POLYGON]))
    if with_input_key:
        algorithm.addParameter(
            QgsProcessingParameterField(INPUT_KEY, "Input key field (default: feature id)", None, INPUT,
                                        FIELD_ANY, optional=True)
        )
    algorithm.addParameter(QgsProcessingParameterFeatureSource(REFERENCE, "Reference layer", [SOURCE_POLYGON]))
    algorithm.addParameter(
        QgsProcessingParameterField(REFERENCE_KEY, "Reference key field (default: feature id)", None, REFERENCE,
                                    FIELD_ANY, optional=True)
    )
    distance = QgsProcessingParameterNumber(SEARCH_DISTANCE, "Search distance (metres)", NUMBER_DOUBLE, 0.0,
                                            minValue=0.0)
    algorithm.addParameter(distance)


MODEL_HELP = (
    "<h3>Model and positional uncertainty</h3>"
    "<p>The overlap of each candidate pair is predicted by a trained mixture density network: a "
    "Gaussian mixture over the two coverage fractions (the share of the input feature covered by the "
    "reference feature, and the reverse). <b>Positional uncertainty</b> σ (metres) is the standard "
    "deviation, per axis, of a rigid displacement of the reference feature relative to the input feature: "
    "the prediction is the distribution of the overlap after such a random displacement. σ = 0 takes the "
    "positions as exact. A numeric <b>positional uncertainty field</b> on the input layer overrides the "
    "value per feature (empty values fall back to the parameter). The search distance is widened to at "
    "least 3σ so that features a displacement could bring into contact are candidates.</p>"
    "<p><b>Model file</b>: leave empty for the bundled model, or pick a model file (.npz) written by "
    "'Train relevance model'. Model files are checked on load: no code is ever run from them, and a file "
    "whose weights do not match their recorded SHA-256 is refused.</p>"
)


def add_model_parameters(algorithm, with_threshold=True):
    """Declare POSITIONAL_UNCERTAINTY, POSITIONAL_UNCERTAINTY_FIELD, THRESHOLD and MODEL."""
    algorithm.addParameter(QgsProcessingParameterNumber(
        POSITIONAL_UNCERTAINTY, "Positional uncertainty σ (metres, per axis)", NUMBER_DOUBLE, 0.0, minValue=0.0))
    algorithm.addParameter(QgsProcessingParameterField(
        POSITIONAL_UNCERTAINTY_FIELD, "Positional uncertainty field on the input layer (metres, optional)", None,
        INPUT, FIELD_NUMERIC, optional=True))
    if with_threshold:
        algorithm.addParameter(QgsProcessingParameterNumber(
            THRESHOLD, "IoU threshold for the probability field", NUMBER_DOUBLE, 0.5, minValue=0.0, maxValue=1.0))
    algorithm.addParameter(QgsProcessingParameterFile(
        MODEL, "Model file (empty: the bundled model)", extension="npz", optional=True))


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
    """True when INPUT and REFERENCE name the same layer (selection aside)."""
    input_layer = algorithm.parameterAsVectorLayer(parameters, INPUT, context)
    reference_layer = algorithm.parameterAsVectorLayer(parameters, REFERENCE, context)
    if input_layer is None or reference_layer is None:
        return False
    return input_layer.id() == reference_layer.id() or (
        input_layer.source() == reference_layer.source() and input_layer.providerType() == reference_layer.providerType()
    )


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
