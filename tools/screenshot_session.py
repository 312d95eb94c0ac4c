"""Runs inside the QGIS desktop (qgis --code), started by tools/screenshots.py; not a module to import.

Mode "results" (OVERLAP_SCREENSHOT_MODE): loads the sample layers, opens scorerelevance's dialog,
runs the algorithms with processing.runAndLoadResults (QGIS's own result handling: the styles are
the post-processors'), and saves PNGs of what a user sees. Mode "without shapely" (QGIS's Python
has no shapely): the toolbox lists the algorithms, and double-clicking one shows the advice.
Writes a manifest with the files, or the error, then quits.
"""

import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QSize, Qt, QTimer, QUrl
from qgis.PyQt.QtGui import QImage, QPainter
from qgis.utils import iface

OUT = Path(os.environ["OVERLAP_SCREENSHOTS"])
MANIFEST = Path(os.environ["OVERLAP_SCREENSHOT_MANIFEST"])
REPO_ROOT = Path(os.environ["OVERLAP_REPO_ROOT"])  # qgis --code runs this file without a __file__
SAMPLE = REPO_ROOT / "resources" / "sample"
SIGMA = 0.5


def _log(text):
    """A progress line for make screenshots (it prints them when QGIS does not finish)."""
    with open(str(MANIFEST) + ".log", "a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def _settle(seconds=0.5):
    """Let QGIS paint: process events for a while, and until the map canvas has finished rendering."""
    deadline = time.monotonic() + 60
    end = time.monotonic() + seconds
    while time.monotonic() < end or (iface.mapCanvas().isDrawing() and time.monotonic() < deadline):
        QgsApplication.processEvents()
        time.sleep(0.02)


def _save(widget, name, files):
    path = OUT / name
    pixmap = widget.grab()
    pixmap.save(str(path), "PNG")
    files[name] = f"{pixmap.width()}x{pixmap.height()} px"


def _outline(layer, colour, width=0.3, dash=False):
    """The two sample layers as context: outlines only, so the outputs on top read clearly."""
    from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer

    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": colour, "outline_width": str(width),
                                         "outline_style": "dash" if dash else "solid"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


def _show_only(layers, extent_layer, zoom=0.45):
    root = QgsProject.instance().layerTreeRoot()
    for node in root.findLayers():
        visible = node.layer() in layers
        node.setItemVisibilityChecked(visible)
        node.setExpanded(visible)
    iface.messageBar().clearWidgets()  # e.g. a font download that Xvfb's machine cannot reach
    canvas = iface.mapCanvas()
    extent = canvas.mapSettings().layerExtentToOutputExtent(extent_layer, extent_layer.extent())
    extent.scale(zoom)  # a few streets: the classes are readable
    canvas.setExtent(extent)
    canvas.refresh()
    _settle(1.0)


def _dialog(files, mapped, cadastre):
    import processing

    dialog = processing.createAlgorithmDialog("overlaprelevance:scorerelevance", {
        "INPUT": mapped, "REFERENCE": cadastre, "REFERENCE_KEY": "building_id", "POSITIONAL_UNCERTAINTY": SIGMA})
    dialog.resize(1100, 760)
    dialog.show()
    _settle(1.0)
    _save(dialog, "dialog_scorerelevance.png", files)
    dialog.close()


def _toolbox(files, query="IoU", name="toolbox_search.png"):
    """The Processing Toolbox searched for ``query``: what a user finds."""
    from qgis.PyQt.QtWidgets import QDockWidget, QLineEdit

    dock = iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
    if dock is None:
        return
    dock.show()
    dock.raise_()
    iface.mainWindow().resizeDocks([dock], [420], Qt.Orientation.Horizontal)
    search = dock.findChild(QLineEdit)
    if search is not None:
        search.setText(query)
    _settle(1.0)
    _save(dock, name, files)
    files[name] += f", searched for {query!r}"
    if search is not None:
        search.clear()
    dock.hide()


def _report_image(path, files, name, height=2600):
    """The report as a reader sees it in a browser: QtWebKit where QGIS has it, else Qt's rich text."""
    html = Path(path).read_text(encoding="utf-8")
    try:
        from qgis.PyQt.QtWebKitWidgets import QWebView
    except ImportError:
        QWebView = None
    if QWebView is not None:
        view = QWebView()
        done = []
        view.loadFinished.connect(done.append)
        view.setHtml(html, QUrl.fromLocalFile(str(path)))
        deadline = time.monotonic() + 30
        while not done and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.02)
        frame = view.page().mainFrame()
        size = frame.contentsSize()
        size = QSize(1100, min(size.height(), height))
        view.page().setViewportSize(size)
        image = QImage(size, QImage.Format.Format_ARGB32)
        image.fill(0xFFFFFFFF)
        painter = QPainter(image)
        frame.render(painter)
        painter.end()
        image.save(str(OUT / name), "PNG")
        files[name] = f"{image.width()}x{image.height()} px (QtWebKit)"
        return
    from qgis.PyQt.QtWidgets import QTextBrowser

    browser = QTextBrowser()
    browser.setHtml(html)
    browser.resize(1100, 1600)
    browser.show()
    _settle(0.5)
    _save(browser, name, files)
    browser.close()


def run():
    import processing

    files = {}
    project = QgsProject.instance()
    cadastre = QgsVectorLayer(str(SAMPLE / "buildings_cadastre.gpkg"), "buildings_cadastre", "ogr")
    mapped = QgsVectorLayer(str(SAMPLE / "buildings_mapping.gpkg"), "buildings_mapping", "ogr")
    project.addMapLayers([cadastre, mapped])
    _outline(cadastre, "#404040", 0.3)
    _outline(mapped, "#1f5fbf", 0.3, dash=True)
    from qgis.PyQt.QtWidgets import QDockWidget

    for dock in iface.mainWindow().findChildren(QDockWidget):  # the layer panel alone, wide enough for the legend
        if dock.objectName() != "Layers":
            dock.hide()
    layers_dock = iface.mainWindow().findChild(QDockWidget, "Layers")
    if layers_dock is not None:
        iface.mainWindow().resizeDocks([layers_dock], [380], Qt.Orientation.Horizontal)
    iface.mainWindow().resize(1600, 1000)
    iface.mainWindow().showMaximized()
    _settle(1.0)

    _log("dialog")
    _dialog(files, mapped, cadastre)
    _log("toolbox")
    _toolbox(files)
    _log("help page")
    page = REPO_ROOT / "resources" / "help" / "scorerelevance.html"
    _report_image(page, files, "help_scorerelevance.png", height=1300)

    common = {"INPUT": mapped, "REFERENCE": cadastre, "REFERENCE_KEY": "building_id",
              "POSITIONAL_UNCERTAINTY": SIGMA}
    before = set(project.mapLayers())
    _log("scorerelevance")
    processing.runAndLoadResults("overlaprelevance:scorerelevance", dict(common, OUTPUT="TEMPORARY_OUTPUT"))
    scored = [project.mapLayer(i) for i in set(project.mapLayers()) - before][0]
    _show_only([scored], scored)
    _save(iface.mainWindow(), "map_scorerelevance.png", files)
    files["map_scorerelevance.png"] += f", renderer {scored.renderer().type()}"

    before = set(project.mapLayers())
    _log("relevancepairs")
    processing.runAndLoadResults("overlaprelevance:relevancepairs", dict(common, GEOMETRY=1, OUTPUT="TEMPORARY_OUTPUT"))
    pairs = [project.mapLayer(i) for i in set(project.mapLayers()) - before][0]
    _show_only([pairs, mapped, cadastre], scored, zoom=0.2)
    _save(iface.mainWindow(), "map_relevancepairs.png", files)
    files["map_relevancepairs.png"] += f", renderer {pairs.renderer().type()}"

    before = set(project.mapLayers())
    _log("overlaplocation")
    processing.runAndLoadResults("overlaprelevance:overlaplocation",
                                 dict(common, POSITIONAL_UNCERTAINTY=2.0, OUTPUT="TEMPORARY_OUTPUT"))
    ellipses = [project.mapLayer(i) for i in set(project.mapLayers()) - before][0]
    _show_only([ellipses, mapped, cadastre], scored, zoom=0.2)
    _save(iface.mainWindow(), "map_overlaplocation.png", files)
    files["map_overlaplocation.png"] += f", renderer {ellipses.renderer().type()}"

    _log("matchfeatures")
    before = set(project.mapLayers())
    processing.runAndLoadResults("overlaprelevance:matchfeatures", dict(
        common, OUTPUT="TEMPORARY_OUTPUT", OUTPUT_REFERENCE="TEMPORARY_OUTPUT", OUTPUT_GROUPS="TEMPORARY_OUTPUT"))
    added = {project.mapLayer(i).name(): project.mapLayer(i) for i in set(project.mapLayers()) - before}
    matched = added["buildings_mapping matched to buildings_cadastre"]
    matched_reference = added["buildings_cadastre matched to buildings_mapping"]  # outlines, drawn on top
    _show_only([matched, matched_reference], scored)
    _save(iface.mainWindow(), "map_matchfeatures.png", files)
    files["map_matchfeatures.png"] += (f", renderers {matched.renderer().type()} and "
                                       f"{matched_reference.renderer().type()}; layers {sorted(added)}")

    report = REPO_ROOT / "build" / "screenshots" / "report_sigma0.5.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    _log("evaluatemodel")
    processing.run("overlaprelevance:evaluatemodel", {
        "INPUT": mapped, "INPUT_KEY": "map_id", "REFERENCE": cadastre, "REFERENCE_KEY": "building_id",
        "POSITIONAL_UNCERTAINTY": SIGMA, "OUTPUT": str(report)})
    _log("report image")
    _report_image(report, files, "report_evaluatemodel.png")
    return files


def run_without_shapely():
    """What a user whose QGIS has no shapely meets: the algorithms listed, and the advice on a double-click."""
    from qgis.PyQt.QtWidgets import QApplication, QTextBrowser
    from qgis.utils import plugins

    files = {}
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("overlaprelevance")
    listed = len(provider.algorithms()) if provider is not None else 0
    iface.mainWindow().resize(1600, 1000)
    iface.mainWindow().showMaximized()
    _settle(1.0)
    _log("toolbox without shapely")
    _toolbox(files, query="overlap relevance", name="toolbox_without_shapely.png")
    files["toolbox_without_shapely.png"] += f", {listed} algorithms of the provider listed"
    shown = {}

    def photograph():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(200, photograph)
            return
        dialog.resize(1000, 520)
        _settle(0.8)
        _save(dialog, "advice_without_shapely.png", files)
        browser = dialog.findChild(QTextBrowser)
        shown["text"] = browser.toPlainText() if browser is not None else ""
        dialog.close()

    _log("advice dialog")
    QTimer.singleShot(500, photograph)
    # What a double-click in the toolbox does: canExecute, then its message in Processing's dialog.
    plugins["processing"].executeAlgorithm("overlaprelevance:scorerelevance", iface.mainWindow())
    commands = [line.strip() for line in shown.get("text", "").splitlines() if line.startswith(("sudo ", "python3 "))]
    files["advice_without_shapely.png"] += f"; commands shown: {commands}"
    return files


def main():
    _log("started")
    result = {"qgis": Qgis.version()}
    try:
        mode = os.environ.get("OVERLAP_SCREENSHOT_MODE", "results")
        result["files"] = run_without_shapely() if mode == "without shapely" else run()
    except Exception:  # noqa: BLE001 - whatever failed is reported to make screenshots, and QGIS quits
        result["error"] = traceback.format_exc()
    MANIFEST.write_text(json.dumps(result, indent=1), encoding="utf-8")
    # Everything is written. QGIS's own exit can wait on a question or crash tearing the layer tree down
    # under Xvfb (seen on 3.40), which says nothing about the plugin: leave at once.
    os._exit(0)


QTimer.singleShot(2000, main)
