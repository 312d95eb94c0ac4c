"""scorerelevance in batch mode, inside a graphical model, and from qgis_process --json."""

import json
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProject,
    QgsVectorLayer,
)

from test_score_relevance import layers
from tools.layers import layer_rows
from tools.qgis_process import REPO_ROOT

MODEL3 = Path(__file__).resolve().parent / "data" / "match_and_extract.model3"
SAMPLE = REPO_ROOT / "resources" / "sample"


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


def _model():
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL3))
    return model


def test_graphical_model_through_processing_run(provider, tmp_path):
    import processing

    input_layer, reference_layer = layers()
    model = _model()
    output_name = [d.name() for d in model.destinationParameterDefinitions()][0]
    result = processing.run(model, {"input": input_layer, "reference": reference_layer,
                                    output_name: str(tmp_path / "matched.gpkg")})
    matched = QgsVectorLayer(result[output_name], "matched", "ogr")
    assert sorted(f["name"] for f in matched.getFeatures()) == ["same"]


def test_graphical_model_through_qgis_process(qgis_process_cli, tmp_path, provider):
    model = _model()
    output_name = [d.name() for d in model.destinationParameterDefinitions()][0]
    output = tmp_path / "matched.gpkg"
    result = qgis_process_cli.run_json(str(MODEL3), {
        "input": SAMPLE / "buildings_mapping.gpkg", "reference": SAMPLE / "buildings_cadastre.gpkg",
        output_name: output})
    matched = QgsVectorLayer(str(output), "matched", "ogr")
    assert matched.featureCount() > 150  # most mapped buildings have a likely match
    assert all(f["rel_p"] >= 0.5 for f in matched.getFeatures())
    assert result["results"]


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
