"""Parameters that several algorithms share, declared and read in one place."""

from qgis.core import (
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)

from ..plugin.compat import FIELD_ANY, NUMBER_DOUBLE, SOURCE_POLYGON

INPUT = "INPUT"
INPUT_KEY = "INPUT_KEY"
REFERENCE = "REFERENCE"
REFERENCE_KEY = "REFERENCE_KEY"
SEARCH_DISTANCE = "SEARCH_DISTANCE"

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
    "<p>Invalid geometries are repaired (GEOS make_valid) and counted in the log; features without "
    "geometry are skipped.</p>"
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
