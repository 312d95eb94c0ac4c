"""What a desktop user meets around a run: result layers named for what they hold, both sides of a match
visible, and a warning when input and reference are one layer (the dialog's default)."""

from qgis.core import QgsProject

from tools.feedback import RecordingFeedback
from tools.qgis_process import REPO_ROOT

SAMPLE = REPO_ROOT / "resources" / "sample"
MAPPING = str(SAMPLE / "buildings_mapping.gpkg")
CADASTRE = str(SAMPLE / "buildings_cadastre.gpkg")


def _loaded(algorithm, parameters):
    """Run as the toolbox does (outputs loaded into the project); the names of the layers it added."""
    import processing

    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults(algorithm, parameters)
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    names = sorted(layer.name() for layer in added)
    QgsProject.instance().removeMapLayers([layer.id() for layer in added])
    return names, added


def test_temporary_results_are_named_for_what_they_hold(plugin):
    names, _ = _loaded("overlaprelevance:scorerelevance",
                       {"INPUT": MAPPING, "REFERENCE": CADASTRE, "OUTPUT": "TEMPORARY_OUTPUT"})
    assert names == ["buildings_mapping with relevance to buildings_cadastre"]
    names, _ = _loaded("overlaprelevance:matchfeatures",
                       {"INPUT": MAPPING, "REFERENCE": CADASTRE, "OUTPUT": "TEMPORARY_OUTPUT",
                        "OUTPUT_REFERENCE": "TEMPORARY_OUTPUT", "OUTPUT_GROUPS": "TEMPORARY_OUTPUT"})
    assert names == ["Match groups of buildings_mapping and buildings_cadastre",
                     "buildings_cadastre matched to buildings_mapping",
                     "buildings_mapping matched to buildings_cadastre"]


def test_the_matched_reference_is_loaded_above_the_matched_input(plugin):
    """Its outlines over the input's fills: both layers visible (the layer tree draws its top layer last)."""
    import processing

    root = QgsProject.instance().layerTreeRoot()
    before = {node.layer().id() for node in root.findLayers()}
    processing.runAndLoadResults("overlaprelevance:matchfeatures",
                                 {"INPUT": MAPPING, "REFERENCE": CADASTRE, "OUTPUT": "TEMPORARY_OUTPUT",
                                  "OUTPUT_REFERENCE": "TEMPORARY_OUTPUT", "OUTPUT_GROUPS": "TEMPORARY_OUTPUT"})
    order = [node.layer() for node in root.findLayers() if node.layer().id() not in before]
    names = [layer.name() for layer in order]
    QgsProject.instance().removeMapLayers([layer.id() for layer in order])
    assert names.index("buildings_cadastre matched to buildings_mapping") < names.index(
        "buildings_mapping matched to buildings_cadastre"), names


def test_one_layer_as_input_and_reference_is_warned_about_before_the_run(plugin):
    import processing

    log = RecordingFeedback()
    processing.run("overlaprelevance:exactoverlap", {"INPUT": MAPPING, "REFERENCE": MAPPING,
                                                     "OUTPUT": "TEMPORARY_OUTPUT"}, feedback=log)
    assert len(log.warnings) == 1 and "same layer, 'buildings_mapping'" in log.warnings[0], log.warnings
    assert "choose the reference layer" in log.warnings[0]
    log = RecordingFeedback()
    processing.run("overlaprelevance:exactoverlap", {"INPUT": MAPPING, "REFERENCE": CADASTRE,
                                                     "OUTPUT": "TEMPORARY_OUTPUT"}, feedback=log)
    assert not [w for w in log.warnings if "same layer" in w]
