"""scorerelevance in batch mode, in the example graphical model, and from qgis_process --json."""

import json
from pathlib import Path

import pytest
from overlap_relevance.algorithms.compat import NUMBER_DOUBLE, SOURCE_POLYGON
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from test_score_relevance import layers
from tools.layers import layer_rows
from tools.make_example_model import EXTRACT_ID, SCORE_ID, build
from tools.qgis_process import REPO_ROOT

MODEL3 = REPO_ROOT / "resources" / "models" / "match_and_extract.model3"
SAMPLE = REPO_ROOT / "resources" / "sample"
SAMPLE_INPUTS = {"input": SAMPLE / "buildings_mapping.gpkg", "reference": SAMPLE / "buildings_cadastre.gpkg"}
SAMPLE_FEATURES = 248  # in buildings_mapping.gpkg


def test_batch_mode_runs_fresh_instances_with_one_context(provider):
    """The batch panel runs a new instance per row, all in one context, as this does."""
    template = QgsApplication.processingRegistry().createAlgorithmById("overlaprelevance:scorerelevance")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    results = []
    for sigma in (0.0, 2.0, 0.0):
        input_layer, reference_layer = layers()
        algorithm = template.create()
        outputs, ok = algorithm.run({"INPUT": input_layer, "REFERENCE": reference_layer,
                                     "POSITIONAL_UNCERTAINTY": sigma, "OUTPUT": "memory:"},
                                    context, QgsProcessingFeedback())
        assert ok
        layer = context.takeResultLayer(outputs["OUTPUT"])
        results.append({r["name"]: r["rel_score"] for r in layer_rows(layer)})
    assert results[0] == results[2]  # rows do not leak into each other
    assert results[1]["same"] < results[0]["same"]


# The example model, resources/models/match_and_extract.model3 (built by test/tools/make_example_model.py).

def _model():
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL3))
    return model


def _output_names(model):
    """{child output description: model destination parameter name}.

    The names depend on the QGIS version (3.22 reads every model as 'child_id:output', later
    versions derive them from the description), so callers go through the description.
    """
    return {d.description(): d.name() for d in model.destinationParameterDefinitions()}


def _outputs(model):
    names = _output_names(model)
    assert sorted(names) == ["Likely matches", "Match groups", "Matched input", "Scored layer"]
    return names["Scored layer"], names["Likely matches"]


def _match_outputs(model, folder):
    """{destination name: path} for the matching step's two model outputs."""
    names = _output_names(model)
    return {names["Matched input"]: str(folder / "matched.gpkg"), names["Match groups"]: str(folder / "groups.gpkg")}


def _check_match_outputs(paths):
    matched, groups = (layer_rows(QgsVectorLayer(str(path), "m", "ogr")) for path in paths)
    assert len(matched) == SAMPLE_FEATURES and {row["m_class"] for row in matched} >= {"1:1", "unmatched"}
    assert len(groups) > 200 and all(row["m_class"] in ("1:1", "1:n", "n:1", "m:n") for row in groups)


def test_example_model_validates(provider):
    model = _model()
    ok, issues = model.validate()
    assert ok and issues == []
    assert (model.name(), model.group()) == ("Match and extract", "Overlap relevance examples")
    assert "extracts" in model.shortDescription()
    help_content = model.helpContent()
    assert help_content["ALG_DESC"]
    for name in ("input", "reference", "positional_uncertainty", "minimum_probability"):
        assert help_content[name], name


def _plain(value):
    """``value`` (a model's toVariant) with NULL and empty strings alike: QGIS 3.22 reads an empty one as NULL."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if value is None or not isinstance(value, (str, int, float)) and not value:
        return ""
    return value


def test_example_model_file_is_what_the_builder_builds(provider):
    """The shipped file is current: rerun the builder after changing it."""
    assert _plain(_model().toVariant()) == _plain(build().toVariant())


def test_example_model_inputs(provider):
    model = _model()
    polygons = QgsProcessingParameterFeatureSource("x", "x", [SOURCE_POLYGON]).dataTypes()
    double = QgsProcessingParameterNumber("x", "x", NUMBER_DOUBLE).dataType()
    for name in ("input", "reference"):
        parameter = model.parameterDefinition(name)
        assert parameter.type() == "source" and parameter.dataTypes() == polygons
        assert "polygon layer" in parameter.description()
        assert not parameter.checkValueIsAcceptable(None)  # mandatory
    sigma = model.parameterDefinition("positional_uncertainty")
    assert sigma.type() == "number" and sigma.dataType() == double
    assert (sigma.defaultValue(), sigma.minimum()) == (0.5, 0.0)
    assert "metres" in sigma.description()
    minimum = model.parameterDefinition("minimum_probability")
    assert minimum.type() == "number" and minimum.dataType() == double
    assert (minimum.defaultValue(), minimum.minimum(), minimum.maximum()) == (0.5, 0.0, 1.0)
    for name in ("input", "reference", "positional_uncertainty", "minimum_probability"):
        assert model.parameterComponent(name).description() == model.parameterDefinition(name).description()
        assert model.parameterDefinition(name).help()


def _source(child, name):
    (source,) = child.parameterSources()[name]
    return source


def _static(child, name):
    source = _source(child, name)
    assert source.source() == QgsProcessingModelChildParameterSource.fromStaticValue(0).source(), name
    return source.staticValue()


def _expression(child, name):
    source = _source(child, name)
    assert source.source() == QgsProcessingModelChildParameterSource.fromExpression("0").source(), name
    return source.expression()


def test_every_scorerelevance_parameter_is_set(provider):
    """What the modeler marks red when a child's mandatory parameter has no value."""
    model = _model()
    child = model.childAlgorithm(SCORE_ID)
    algorithm = QgsApplication.processingRegistry().algorithmById("overlaprelevance:scorerelevance")
    assert child.algorithmId() == algorithm.id()
    sources = child.parameterSources()
    wanted = [d.name() for d in algorithm.parameterDefinitions() if not d.isDestination()]
    assert sorted(sources) == sorted(wanted)
    assert all(sources[name] for name in wanted)
    for name in ("INPUT", "REFERENCE"):
        assert [s.parameterName() for s in sources[name]] == [name.lower()]
    assert _expression(child, "POSITIONAL_UNCERTAINTY") == "coalesce(@positional_uncertainty, 0.5)"
    assert _static(child, "SEARCH_DISTANCE") == 0
    assert _static(child, "THRESHOLD") == 0.5
    assert _static(child, "FIELD_PREFIX") == "rel_"
    for name in ("REFERENCE_KEY", "POSITIONAL_UNCERTAINTY_FIELD", "MODEL"):  # optional, left empty
        assert algorithm.parameterDefinition(name).checkValueIsAcceptable(None), name
        assert _static(child, name) is None
    assert model.validateChildAlgorithm(SCORE_ID) == (True, [])
    extract = model.childAlgorithm(EXTRACT_ID)
    assert extract.algorithmId() == "native:extractbyexpression"
    assert _expression(extract, "EXPRESSION") == """'"rel_p" >= ' || coalesce(@minimum_probability, 0.5)"""
    assert [s.outputChildId() for s in extract.parameterSources()["INPUT"]] == [SCORE_ID]
    assert model.validateChildAlgorithm(EXTRACT_ID) == (True, [])


def _box(component):
    position, size = component.position(), component.size()
    return QgsRectangle(position.x() - size.width() / 2, position.y() - size.height() / 2,
                        position.x() + size.width() / 2, position.y() + size.height() / 2)


def test_example_model_layout(provider):
    """Inputs left, steps in the middle, outputs right; nothing at (0, 0) and nothing on top of anything."""
    model = _model()
    inputs = list(model.parameterComponents().values())
    children = list(model.childAlgorithms().values())
    outputs = [output for child in children for output in child.modelOutputs().values()]
    comments = [child.comment() for child in children]
    assert (len(inputs), len(children), len(outputs)) == (4, 3, 4)
    assert all(child.description() for child in children)
    assert all(comment.description() for comment in comments)
    components = inputs + children + outputs + comments
    positions = [(c.position().x(), c.position().y()) for c in components]
    assert len(set(positions)) == len(positions)
    assert all(x > 0 and y > 0 for x, y in positions)
    boxes = [_box(c) for c in components]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1:]:
            assert not box.intersects(other), (box.toString(), other.toString())
    assert max(c.position().x() for c in inputs) < min(c.position().x() for c in children)
    assert max(c.position().x() for c in children) < min(c.position().x() for c in outputs)
    ordered = sorted(inputs, key=lambda c: c.position().y())
    assert [c.parameterName() for c in ordered] == ["input", "reference", "positional_uncertainty",
                                                    "minimum_probability"]


def _scorerelevance_rel_p(sigma):
    """{map_id: rel_p} of scorerelevance run directly on the sample at ``sigma``."""
    import processing

    layer = processing.run("overlaprelevance:scorerelevance", {
        "INPUT": str(SAMPLE_INPUTS["input"]), "REFERENCE": str(SAMPLE_INPUTS["reference"]),
        "POSITIONAL_UNCERTAINTY": sigma, "OUTPUT": "memory:"})["OUTPUT"]
    return {row["map_id"]: row["rel_p"] for row in layer_rows(layer)}


def _check_sample_outputs(scored_path, matches_path, sigma, minimum):
    """The scored layer is scorerelevance's at ``sigma``; the matches are its rows with rel_p >= ``minimum``."""
    scored = layer_rows(QgsVectorLayer(str(scored_path), "scored", "ogr"))
    matches = layer_rows(QgsVectorLayer(str(matches_path), "matches", "ogr"))
    assert len(scored) == SAMPLE_FEATURES
    expected = _scorerelevance_rel_p(sigma)
    assert {row["map_id"]: row["rel_p"] for row in scored} == pytest.approx(expected)
    assert all(row["rel_p"] >= minimum for row in matches)
    assert sorted(row["map_id"] for row in matches) == sorted(k for k, p in expected.items() if p >= minimum)
    assert 150 < len(matches) < len(scored)  # most mapped buildings have a likely match, not all


@pytest.mark.parametrize("values", [{"positional_uncertainty": 0.5, "minimum_probability": 0.95},
                                    {"positional_uncertainty": 0.0, "minimum_probability": 0.5},
                                    {}], ids=["sigma-0.5-p-0.95", "sigma-0-p-0.5", "defaults"])
def test_example_model_through_processing_run(provider, tmp_path, values):
    import processing

    model = _model()
    scored_name, matches_name = _outputs(model)
    match_outputs = _match_outputs(model, tmp_path)
    result = processing.run(model, {
        **{name: str(path) for name, path in SAMPLE_INPUTS.items()}, **values,
        scored_name: str(tmp_path / "scored.gpkg"), matches_name: str(tmp_path / "matches.gpkg"), **match_outputs})
    _check_sample_outputs(result[scored_name], result[matches_name], values.get("positional_uncertainty", 0.5),
                          values.get("minimum_probability", 0.5))
    _check_match_outputs([result[name] for name in match_outputs])


def test_example_model_through_qgis_process(qgis_process_cli, tmp_path, provider):
    scored_name, matches_name = _outputs(_model())
    match_outputs = _match_outputs(_model(), tmp_path)
    scored, matches = tmp_path / "scored.gpkg", tmp_path / "matches.gpkg"
    result = qgis_process_cli.run_json(str(MODEL3), {  # the numbers left out: σ 0.5 m, minimum probability 0.5
        **SAMPLE_INPUTS, scored_name: scored, matches_name: matches, **match_outputs})
    assert {scored_name, matches_name, *match_outputs} <= set(result["results"])
    _check_sample_outputs(scored, matches, 0.5, 0.5)
    _check_match_outputs(list(match_outputs.values()))
    result = qgis_process_cli.run_json(str(MODEL3), {
        **SAMPLE_INPUTS, "positional_uncertainty": 0, "minimum_probability": 0.9, scored_name: scored,
        matches_name: matches, **match_outputs})
    _check_sample_outputs(scored, matches, 0.0, 0.9)


def test_qgis_process_json_for_scorerelevance(qgis_process_cli, tmp_path):
    output = tmp_path / "scored.gpkg"
    result = qgis_process_cli.run_json("overlaprelevance:scorerelevance", {
        "INPUT": SAMPLE / "buildings_mapping.gpkg", "REFERENCE": SAMPLE / "buildings_cadastre.gpkg",
        "REFERENCE_KEY": "building_id", "POSITIONAL_UNCERTAINTY": 0.5, "OUTPUT": output})
    assert Path(result["results"]["OUTPUT"]).resolve() == output.resolve() or str(output) in json.dumps(result)
    assert result["algorithm_details"]["id"] == "overlaprelevance:scorerelevance"
    scored = QgsVectorLayer(str(output), "scored", "ogr")
    rows = layer_rows(scored)
    assert len(rows) == 248
    truth = [r for r in rows if r["true_match"]]
    agreement = sum(r["rel_match"] == r["true_match"] for r in truth) / len(truth)
    assert agreement > 0.9, agreement
    assert all(0.0 <= r["rel_score"] <= 1.0 and 0.0 <= r["rel_p"] <= 1.0 for r in rows)
