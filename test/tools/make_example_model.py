"""Build resources/models/match_and_extract.model3, the example graphical model.

    .venv/bin/python test/tools/make_example_model.py

"Match and extract" scores every input polygon against a reference layer
(``overlaprelevance:scorerelevance``), keeps the features whose best match is
probably the same object (``native:extractbyexpression`` on ``rel_p``), and matches
both layers feature by feature (``overlaprelevance:matchfeatures``). It starts
QGIS headless, loads the plugin's provider, checks the model with
``QgsProcessingModelAlgorithm.validate()`` and writes it only when nothing is wrong.
``build()`` is what the tests check the shipped file against.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QT_HASH_SEED"] = "0"  # the XML attributes in one order, so that a rebuild changes only what changed

from overlap_relevance.algorithms.compat import NUMBER_DOUBLE, SOURCE_POLYGON
from qgis.core import (
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelComment,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QPointF

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "resources" / "models" / "match_and_extract.model3"

NAME = "Match and extract"
GROUP = "Overlap relevance examples"
SCORE_ID = "score_relevance"
EXTRACT_ID = "extract_matches"
MATCH_ID = "match_features"
SIGMA = "positional_uncertainty"
MIN_PROBABILITY = "minimum_probability"
DEFAULT_SIGMA = 0.5
DEFAULT_MIN_PROBABILITY = 0.5
FIELD_PREFIX = "rel_"
# (name, description) of the model outputs; the destination parameters are named after the description
# (``scored_layer``), or ``child_id:name`` where QGIS reads every model the 3.22 way.
SCORED = ("scored", "Scored layer")
MATCHES = ("matches", "Likely matches")
MATCHED = ("matched", "Matched input")
GROUPS = ("groups", "Match groups")

# QGIS hands a model's steps the model inputs as given, without their defaults: a number left out of
# processing.run or qgis_process reaches a step as NULL. Both numbers therefore go in as expressions
# that fall back to the default (which also draws the input's link in the Model Designer).
SIGMA_EXPRESSION = f"coalesce(@{SIGMA}, {DEFAULT_SIGMA})"
FILTER_EXPRESSION = f"""'"{FIELD_PREFIX}p" >= ' || coalesce(@{MIN_PROBABILITY}, {DEFAULT_MIN_PROBABILITY})"""

# Centres of the components (QGIS draws each one 200 x 30 around its position, a comment 100 x 60):
# model inputs on the left, the two steps in the middle, the model outputs on the right.
X_INPUT, X_CHILD, X_OUTPUT = 150.0, 500.0, 850.0
Y_ROWS = (80.0, 180.0, 280.0, 380.0, 580.0, 680.0)
COMMENT_OFFSET = 95.0  # a child's comment above (scoring) or below (extraction) it

#: Help of the model inputs, top to bottom as they are laid out and shown.
INPUT_HELP = {
    "input": "The polygons to check, e.g. buildings from a mapping campaign. Every one of them is scored.",
    "reference": "The polygons to match against, e.g. cadastral buildings. Both layers may use any CRS.",
    SIGMA: ("Standard deviation of each vertex's position error, per axis, in metres; 0 compares the geometries "
            f"exactly as they are. Left out of a run, it is {DEFAULT_SIGMA}."),
    MIN_PROBABILITY: ("A feature is extracted when the probability that it overlaps its best reference match "
                      "with an IoU of at least 0.5 (the rel_p field) is this value or more. Left out of a run, "
                      f"it is {DEFAULT_MIN_PROBABILITY}."),
}
OUTPUT_HELP = {
    SCORED: "Every input feature, with its fields and geometry, plus the relevance fields rel_*.",
    MATCHES: "The scored features whose rel_p is at least the minimum probability.",
    MATCHED: ("Every input feature with its match group, class (1:1, 1:n, n:1, m:n, unmatched), one-to-one "
              "partner, the probability of that match and its change label (m_* fields)."),
    GROUPS: "One row per match group: its class, the keys on both sides and its probability.",
}

SHORT_DESCRIPTION = ("Scores every input polygon against a reference layer and extracts those that probably match "
                     "a reference polygon.")
DESCRIPTION = (
    "Runs <b>Score overlap relevance</b> (overlaprelevance:scorerelevance) on the input and reference polygon "
    "layers with the positional uncertainty σ, then <b>Extract by expression</b> (native:extractbyexpression) "
    "with <code>\"rel_p\" &gt;= minimum probability</code>.<br>"
    "The <i>Scored layer</i> is every input feature with the relevance fields rel_match (key of the best "
    "reference match, its feature id), rel_score (expected IoU), rel_p (probability that the IoU is at least "
    "0.5), rel_cov, rel_covref, rel_sd and rel_n. The <i>Likely matches</i> are the scored features whose "
    "rel_p is at least the minimum probability.<br>"
    "<b>Match features</b> (overlaprelevance:matchfeatures) then matches both layers with the same σ: the "
    "<i>Matched input</i> holds every input feature with its group, class, one-to-one partner, probability and "
    "change label (m_* fields), and <i>Match groups</i> lists the groups.<br>"
    "Open it in the Model Designer to change the fixed settings of the steps (search distance 0, IoU "
    "threshold 0.5, the bundled model, field prefix rel_, the matching thresholds) or to add key fields.")


def _comment(text, position):
    comment = QgsProcessingModelComment(text)
    comment.setPosition(position)
    return comment


def _static(value):
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def _input_parameters():
    return [
        QgsProcessingParameterFeatureSource("input", "Input polygon layer", [SOURCE_POLYGON]),
        QgsProcessingParameterFeatureSource("reference", "Reference polygon layer", [SOURCE_POLYGON]),
        QgsProcessingParameterNumber(SIGMA, "Positional uncertainty σ (metres)", NUMBER_DOUBLE, DEFAULT_SIGMA,
                                     minValue=0.0),
        QgsProcessingParameterNumber(MIN_PROBABILITY, "Minimum probability of a match (0–1)", NUMBER_DOUBLE,
                                     DEFAULT_MIN_PROBABILITY, minValue=0.0, maxValue=1.0),
    ]


def _model_output(child_id, output, y, child_output="OUTPUT"):
    name, description = output
    model_output = QgsProcessingModelOutput(name, description)
    model_output.setChildId(child_id)
    model_output.setChildOutputName(child_output)
    model_output.setPosition(QPointF(X_OUTPUT, y))
    return {name: model_output}


def _score_child():
    y = Y_ROWS[1]
    child = QgsProcessingModelChildAlgorithm("overlaprelevance:scorerelevance")
    child.setChildId(SCORE_ID)
    child.setDescription("Score overlap relevance")
    child.setPosition(QPointF(X_CHILD, y))
    child.setComment(_comment("Best reference match of every input polygon and its relevance (rel_* fields); "
                              "search distance 0, IoU threshold 0.5, bundled model.",
                              QPointF(X_CHILD, y - COMMENT_OFFSET)))
    model_input = QgsProcessingModelChildParameterSource.fromModelParameter
    sources = {
        "INPUT": [model_input("input")],
        "REFERENCE": [model_input("reference")],
        "REFERENCE_KEY": _static(None),  # optional: rel_match is the reference feature id
        "SEARCH_DISTANCE": _static(0.0),  # 0: the reference polygons that touch or overlap
        "POSITIONAL_UNCERTAINTY": [QgsProcessingModelChildParameterSource.fromExpression(SIGMA_EXPRESSION)],
        "POSITIONAL_UNCERTAINTY_FIELD": _static(None),  # optional: one σ for every feature
        "THRESHOLD": _static(0.5),
        "MODEL": _static(None),  # optional: the bundled model
        "FIELD_PREFIX": _static(FIELD_PREFIX),
    }
    for name, source in sources.items():
        child.addParameterSources(name, source)
    child.setModelOutputs(_model_output(SCORE_ID, SCORED, y))
    return child


def _extract_child():
    y = Y_ROWS[3]
    child = QgsProcessingModelChildAlgorithm("native:extractbyexpression")
    child.setChildId(EXTRACT_ID)
    child.setDescription("Keep likely matches")
    child.setPosition(QPointF(X_CHILD, y))
    child.setComment(_comment(f'Scored features with "{FIELD_PREFIX}p" >= the minimum probability.',
                              QPointF(X_CHILD, y + COMMENT_OFFSET)))
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput(SCORE_ID, "OUTPUT")])
    child.addParameterSources("EXPRESSION", [QgsProcessingModelChildParameterSource.fromExpression(
        FILTER_EXPRESSION)])
    child.setModelOutputs(_model_output(EXTRACT_ID, MATCHES, y))
    return child


def _match_child():
    y = Y_ROWS[4]
    child = QgsProcessingModelChildAlgorithm("overlaprelevance:matchfeatures")
    child.setChildId(MATCH_ID)
    child.setDescription("Match features")
    child.setPosition(QPointF(X_CHILD, y))
    child.setComment(_comment("Groups, one-to-one matches and change labels of both layers, with their "
                              "probabilities; the default thresholds.", QPointF(X_CHILD, y + COMMENT_OFFSET)))
    model_input = QgsProcessingModelChildParameterSource.fromModelParameter
    sources = {
        "INPUT": [model_input("input")],
        "INPUT_KEY": _static(None),
        "REFERENCE": [model_input("reference")],
        "REFERENCE_KEY": _static(None),
        "SEARCH_DISTANCE": _static(0.0),
        "POSITIONAL_UNCERTAINTY": [QgsProcessingModelChildParameterSource.fromExpression(SIGMA_EXPRESSION)],
        "POSITIONAL_UNCERTAINTY_FIELD": _static(None),
        "MODEL": _static(None),
    }
    from overlap_relevance.model.matching import MatchThresholds
    from dataclasses import fields

    for field in fields(MatchThresholds):  # every threshold set to its default, so the step is complete
        sources[f"T_{field.name.upper()}"] = _static(field.default)
    for name, source in sources.items():
        child.addParameterSources(name, source)
    outputs = _model_output(MATCH_ID, MATCHED, y)
    outputs.update(_model_output(MATCH_ID, GROUPS, Y_ROWS[5], "OUTPUT_GROUPS"))
    child.setModelOutputs(outputs)
    return child


def build():
    """The model, laid out, with its help; not yet validated (that needs the providers)."""
    model = QgsProcessingModelAlgorithm(NAME, GROUP)
    help_content = {"SHORT_DESCRIPTION": SHORT_DESCRIPTION, "ALG_DESC": DESCRIPTION,
                    "ALG_CREATOR": "overlap_relevance"}
    parameters = _input_parameters()
    assert [p.name() for p in parameters] == list(INPUT_HELP)
    for parameter, y in zip(parameters, Y_ROWS):
        name, help_text = parameter.name(), INPUT_HELP[parameter.name()]
        parameter.setHelp(help_text)
        component = QgsProcessingModelParameter(name)
        component.setDescription(parameter.description())
        component.setPosition(QPointF(X_INPUT, y))
        model.addModelParameter(parameter, component)
        help_content[name] = help_text
    model.addChildAlgorithm(_score_child())
    model.addChildAlgorithm(_extract_child())
    model.addChildAlgorithm(_match_child())
    for child_id, output in ((SCORE_ID, SCORED), (EXTRACT_ID, MATCHES), (MATCH_ID, MATCHED), (MATCH_ID, GROUPS)):
        # keyed by the destination parameter's name, which depends on the QGIS version (see SCORED)
        name, description = output
        help_content[description.lower().replace(" ", "_")] = OUTPUT_HELP[output]
        help_content[f"{child_id}:{name}"] = OUTPUT_HELP[output]
    model.setHelpContent(help_content)
    return model


def _start_qgis():
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))  # Processing's Python
    from processing.core.Processing import Processing

    Processing.initialize()
    from overlap_relevance.plugin.provider import OverlapRelevanceProvider

    provider = OverlapRelevanceProvider()  # kept alive by the caller, or its algorithms die with it
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def main():
    app, _provider = _start_qgis()
    model = build()
    ok, issues = model.validate()
    if not ok or issues:
        sys.exit("the model does not validate:\n" + "\n".join(issues))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(OUT)):
        sys.exit(f"could not write {OUT}")
    print(f"written {OUT}")
    app.exitQgis()


if __name__ == "__main__":
    main()
