"""The algorithms' dialogs as QGIS builds them (processing.createAlgorithmDialog), offscreen.

Every dialog opens on the sample layers with a widget for each parameter; scorerelevance runs
through its dialog, exactly as the Run button runs it (a task, then QGIS's own result
handling), and the layer it loads is styled.
"""

import time

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProject, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication

from tools.qgis_process import REPO_ROOT

PROVIDER_ID = "overlaprelevance"
SAMPLE = REPO_ROOT / "resources" / "sample"


@pytest.fixture
def sample_layers():
    """The two sample layers in the project, as a user has them before opening a dialog."""
    project = QgsProject.instance()
    mapped = QgsVectorLayer(str(SAMPLE / "buildings_mapping.gpkg"), "buildings_mapping", "ogr")
    cadastre = QgsVectorLayer(str(SAMPLE / "buildings_cadastre.gpkg"), "buildings_cadastre", "ogr")
    assert mapped.isValid() and cadastre.isValid()
    before = set(project.mapLayers())
    project.addMapLayers([mapped, cadastre])
    yield mapped, cadastre
    project.removeMapLayers([layer_id for layer_id in project.mapLayers() if layer_id not in before])


@pytest.fixture
def gui(plugin, qgis_iface):
    """pytest-qgis's iface, with the real browser model and layer tree view conftest gives it."""
    return qgis_iface


def _algorithm_ids():
    from overlap_relevance.algorithms import ALGORITHMS

    return [f"{PROVIDER_ID}:{cls().name()}" for cls in ALGORITHMS]


def _dialog(algorithm_id, parameters):
    import processing

    dialog = processing.createAlgorithmDialog(algorithm_id, parameters)
    assert dialog is not None, algorithm_id
    return dialog


def _wait(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the dialog's run did not finish")
        QCoreApplication.processEvents()
        time.sleep(0.01)


@pytest.mark.parametrize("algorithm_id", _algorithm_ids())
def test_every_dialog_opens_on_the_sample_layers(provider, gui, sample_layers, algorithm_id):
    mapped, cadastre = sample_layers
    dialog = _dialog(algorithm_id, {"INPUT": mapped, "REFERENCE": cadastre})
    try:
        panel = dialog.mainWidget()
        algorithm = dialog.algorithm()
        inputs = [p for p in algorithm.parameterDefinitions() if not p.isDestination()]
        assert set(panel.wrappers) >= {p.name() for p in inputs}
        values = panel.createProcessingParameters()
        assert QgsProject.instance().mapLayer(values["INPUT"]) is mapped or values["INPUT"] == mapped.id() or \
            str(values["INPUT"]).startswith(str(SAMPLE)), values["INPUT"]
        # What the user sees: labels without a doubled "optional", numbers with the decimals asked for.
        checked_decimals = 0
        for parameter in inputs:
            wrapper = panel.wrappers[parameter.name()]
            label = wrapper.wrappedLabel() if hasattr(wrapper, "wrappedLabel") else None
            if label is not None:
                assert label.text().lower().count("optional") <= 1, label.text()
            decimals = (parameter.metadata().get("widget_wrapper") or {}).get("decimals")
            widget = wrapper.wrappedWidget()
            if decimals is not None:
                checked_decimals += 1
                assert widget.decimals() == decimals, (parameter.name(), widget.decimals())
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        ok, message = algorithm.checkParameterValues(values, context)
        assert checked_decimals >= 1  # the search distance at least
        if algorithm_id.endswith(("scorerelevance", "relevancepairs", "overlaplocation", "exactoverlap")):
            assert ok, message  # the defaults and the two layers are enough to run
    finally:
        dialog.close()
        dialog.deleteLater()


def test_scorerelevance_runs_through_its_dialog_and_loads_a_styled_layer(provider, gui, sample_layers):
    from processing.core.ProcessingConfig import ProcessingConfig

    keep_open = ProcessingConfig.getSetting(ProcessingConfig.KEEP_DIALOG_OPEN)
    ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)  # to read its results afterwards
    mapped, cadastre = sample_layers
    project = QgsProject.instance()
    before = set(project.mapLayers())
    dialog = _dialog(f"{PROVIDER_ID}:scorerelevance", {
        "INPUT": mapped, "REFERENCE": cadastre, "REFERENCE_KEY": "building_id", "POSITIONAL_UNCERTAINTY": 0.5,
        "OUTPUT": "TEMPORARY_OUTPUT"})
    try:
        finished = []
        dialog.algorithmFinished.connect(lambda ok, results: finished.append((ok, dict(results))))
        dialog.runAlgorithm()
        _wait(lambda: finished, timeout=10)  # emitted once QGIS has loaded and post-processed the results
        QCoreApplication.processEvents()
        assert finished[0][0] and finished[0][1]["OUTPUT"]
        loaded = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
        assert len(loaded) == 1
        layer = loaded[0]
        assert layer.featureCount() == mapped.featureCount()
        renderer = layer.renderer()
        assert renderer.type() != "singleSymbol", renderer.type()
        labels = [item.label() for item in renderer.legendSymbolItems()]
        assert any("no candidate" in label.lower() for label in labels), labels
    finally:
        ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, keep_open)
        if not sip.isdeleted(dialog):
            dialog.close()
            dialog.deleteLater()


def test_the_algorithms_show_in_the_toolbox_under_their_groups(provider):
    from qgis.gui import QgsProcessingToolboxProxyModel

    proxy = QgsProcessingToolboxProxyModel(None, QgsApplication.processingRegistry())
    proxy.setFilterString("overlap relevance")
    names = []

    def walk(parent, depth):
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            names.append((depth, proxy.data(index)))
            walk(index, depth + 1)

    walk(proxy.index(-1, -1), 0)
    assert any(name == "Score overlap relevance" for _, name in names), names
