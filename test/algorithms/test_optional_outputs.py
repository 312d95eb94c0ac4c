"""qgis_process and processing.run run with only the outputs a user names (issue 25, item 6).

Every algorithm's first destination is its result; any further destination is optional or has a default,
as QGIS's own algorithms have it (the non-matching output of Join attributes by location, reports written
to a temporary file).
"""

import json
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsVectorLayer

from tools.qgis_process import REPO_ROOT

from overlap_relevance.algorithms.compat import PARAMETER_OPTIONAL

SAMPLE = REPO_ROOT / "resources" / "sample"
LAYERS = {"INPUT": str(SAMPLE / "buildings_mapping.gpkg"), "REFERENCE": str(SAMPLE / "buildings_cadastre.gpkg")}
MATCH_OUTPUTS = ("OUTPUT", "OUTPUT_REFERENCE", "OUTPUT_GROUPS")


def _algorithms():
    return QgsApplication.processingRegistry().providerById("overlaprelevance").algorithms()


def test_every_destination_after_the_first_is_optional_or_has_a_default(provider):
    for algorithm in _algorithms():
        destinations = algorithm.destinationParameterDefinitions()
        for parameter in destinations[1:]:
            optional = bool(parameter.flags() & PARAMETER_OPTIONAL)
            assert optional or parameter.defaultValue() not in (None, ""), (algorithm.id(), parameter.name())
    evaluate = QgsApplication.processingRegistry().algorithmById("overlaprelevance:evaluatemodel")
    assert evaluate.parameterDefinition("OUTPUT").defaultValue() == "TEMPORARY_OUTPUT"


def _run(cli, algorithm, **parameters):
    result = cli("run", f"overlaprelevance:{algorithm}", "--json", "--",
                 *(f"{key}={value}" for key, value in {**LAYERS, **parameters}.items()), check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(result.stdout[result.stdout.index("{"):])["results"]


@pytest.mark.parametrize("named", [("OUTPUT",), ("OUTPUT_GROUPS",), ("OUTPUT_REFERENCE", "OUTPUT_GROUPS")])
def test_matchfeatures_through_qgis_process_writes_only_the_outputs_named(qgis_process_cli, tmp_path, named):
    suffix = {"OUTPUT": "gpkg", "OUTPUT_REFERENCE": "gpkg", "OUTPUT_GROUPS": "csv"}
    paths = {name: tmp_path / f"{name.lower()}.{suffix[name]}" for name in MATCH_OUTPUTS}
    results = _run(qgis_process_cli, "matchfeatures", **{name: paths[name] for name in named})
    for name in MATCH_OUTPUTS:
        assert paths[name].exists() == (name in named), name
        assert (name in results) == (name in named), results
    assert results["N_GROUPS"] > 0 and results["INPUT_FEATURES"] == 248 and results["REFERENCE_FEATURES"] == 252
    for name in named:
        layer = QgsVectorLayer(str(paths[name]), name, "ogr")
        assert layer.isValid() and layer.featureCount() == {"OUTPUT": 248, "OUTPUT_REFERENCE": 252,
                                                            "OUTPUT_GROUPS": results["N_GROUPS"]}[name]


def test_evaluatemodel_through_qgis_process_needs_no_report_path(qgis_process_cli):
    results = _run(qgis_process_cli, "evaluatemodel", MC_PAIRS=0)
    assert results["OUTPUT"].endswith(".html") and Path(results["OUTPUT"]).name == "OUTPUT.html"
    assert results["N_PAIRS"] > 0 and results["MAE_IOU"] is not None  # σ = 0: the exact overlaps are the truth


def test_processing_run_with_one_match_output_and_with_a_named_report(provider, tmp_path):
    import processing

    results = processing.run("overlaprelevance:matchfeatures", {**LAYERS, "OUTPUT_REFERENCE": "memory:"})
    assert set(MATCH_OUTPUTS) & set(results) == {"OUTPUT_REFERENCE"}
    assert results["OUTPUT_REFERENCE"].featureCount() == 252
    report = tmp_path / "report.html"
    results = processing.run("overlaprelevance:evaluatemodel", {**LAYERS, "MC_PAIRS": 0, "OUTPUT": str(report)})
    assert results["OUTPUT"] == str(report) and "<html" in report.read_text(encoding="utf-8").lower()
    results = processing.run("overlaprelevance:evaluatemodel", {**LAYERS, "MC_PAIRS": 0})
    assert Path(results["OUTPUT"]).is_file()  # the default: a temporary file, there while QGIS runs
