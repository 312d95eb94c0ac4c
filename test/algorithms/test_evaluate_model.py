"""overlaprelevance:evaluatemodel on the bundled sample data: an HTML report with plots, metrics in range."""

import re
import time

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject

from tools.qgis_process import REPO_ROOT

ALGORITHM = "overlaprelevance:evaluatemodel"
SAMPLE = REPO_ROOT / "resources" / "sample"
PARAMETERS = {"INPUT": str(SAMPLE / "buildings_mapping.gpkg"), "INPUT_KEY": "map_id",
              "REFERENCE": str(SAMPLE / "buildings_cadastre.gpkg"), "REFERENCE_KEY": "building_id"}
HEADLINE = ("MAE_IOU", "BEST_MATCH_AGREEMENT", "INTERVAL_COVERAGE", "CRPS", "N_PAIRS")


def _images(path):
    text = path.read_text(encoding="utf-8")
    return text, re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


def test_report_on_the_sample_at_sigma_zero(provider, tmp_path):
    import processing

    out = tmp_path / "report.html"
    started = time.perf_counter()
    result = processing.run(ALGORITHM, dict(PARAMETERS, POSITIONAL_UNCERTAINTY=0.0, OUTPUT=str(out)))
    print(f"evaluation report (σ = 0): {time.perf_counter() - started:.1f} s")
    assert result["OUTPUT"] == str(out)
    text, images = _images(out)
    # σ = 0: the model reads the exact overlap; the plots that would collapse to a spike are left out, and said so.
    assert len(images) == 2 and 'class="sigma0"' in text
    assert all(len(image) > 2000 for image in images)
    for title in ("Predicted vs true IoU", "Calibration", "Interval coverage by σ", "Error by geometry complexity"):
        assert title in text
    assert result["N_PAIRS"] > 200 and result["N_TRUTH_PAIRS"] == result["N_PAIRS"]  # σ = 0: every pair is exact
    assert 0 <= result["MAE_IOU"] < 0.02  # the model card's σ = 0 target
    assert result["BEST_MATCH_AGREEMENT"] >= 0.99
    assert 0.5 <= result["INTERVAL_COVERAGE"] <= 1.0
    assert 0 <= result["CRPS"] < 0.02


def test_monte_carlo_truth_and_per_feature_sigma(provider, tmp_path):
    """σ from a field: Monte-Carlo truth on a subset, coverage reported by σ bucket."""
    import processing
    import shapely
    from qgis.core import QgsVectorLayer

    from tools.layers import memory_layer

    source = QgsVectorLayer(PARAMETERS["INPUT"], "mapping", "ogr")
    geoms = [shapely.from_wkb(bytes(f.geometry().asWkb())) for f in source.getFeatures()]
    sigma = [float(s) for s in np.resize([0.0, 0.5, 2.0], len(geoms))]
    layer = memory_layer(geoms, source.crs().authid(), {"sigma": sigma}, name="mapping with σ")
    out = tmp_path / "report_sigma.html"
    result = processing.run(ALGORITHM, dict(PARAMETERS, INPUT=layer, INPUT_KEY=None,
                                            POSITIONAL_UNCERTAINTY_FIELD="sigma", MC_PAIRS=60, MC_SAMPLES=64,
                                            OUTPUT=str(out)))
    text, images = _images(out)
    assert len(images) >= 4
    assert "0.2 &lt; σ ≤ 1 m" in text or "0.2 < σ ≤ 1 m" in text  # a σ bucket row of the table
    assert result["N_PAIRS"] > result["N_TRUTH_PAIRS"] > 60  # σ = 0 pairs exact, plus the Monte-Carlo subset
    assert 0 <= result["MAE_IOU"] < 0.05
    assert 0.5 <= result["INTERVAL_COVERAGE"] <= 1.0
    assert result["BEST_MATCH_AGREEMENT"] >= 0.9
    assert 0 <= result["CRPS"] < 0.1


def test_cancel_writes_no_report(provider, tmp_path):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value >= 30 else None)
    out = tmp_path / "cancelled.html"
    results, ok = algorithm.run(dict(PARAMETERS, POSITIONAL_UNCERTAINTY=0.5, MC_PAIRS=500, OUTPUT=str(out)),
                                context, feedback)
    assert feedback.isCanceled()
    assert not results or "OUTPUT" not in results
    assert not out.exists()


@pytest.mark.timeout(300)
def test_through_qgis_process_the_numbers_are_outputs(qgis_process_cli, tmp_path):
    out = tmp_path / "cli_report.html"
    parameters = dict(PARAMETERS, POSITIONAL_UNCERTAINTY=0.5, MC_PAIRS=80, MC_SAMPLES=64, OUTPUT=out)
    result = qgis_process_cli.run_json(ALGORITHM, parameters)
    results = result["results"]
    for name in HEADLINE:
        assert name in results, results
        assert isinstance(results[name], (int, float)) and np.isfinite(results[name])
    assert results["N_PAIRS"] > 200
    assert 0 <= results["MAE_IOU"] < 0.05
    assert 0.5 <= results["INTERVAL_COVERAGE"] <= 1.0
    _, images = _images(out)
    assert len(images) >= 4


def test_the_results_viewer_names_the_report_after_what_it_evaluated(provider, tmp_path):
    """The dialog lists an HTML output under its description; the run renames its dialog's copy."""
    dialog_algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    assert dialog_algorithm.outputDefinition("OUTPUT").description() == "Evaluation report"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = tmp_path / "named"  # no extension: .html is added
    results, ok = dialog_algorithm.run(dict(PARAMETERS, POSITIONAL_UNCERTAINTY=0.0, OUTPUT=str(out)), context,
                                       QgsProcessingFeedback())
    assert ok and results["OUTPUT"] == str(out) + ".html"
    assert dialog_algorithm.outputDefinition("OUTPUT").description() == (
        "Evaluation of the bundled model on buildings_mapping × buildings_cadastre, σ = 0 m")
