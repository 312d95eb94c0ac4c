"""Shared fixtures. QGIS itself is started by pytest-qgis; everything runs headless."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


def pytest_ignore_collect(collection_path, config):
    """test/model/training imports TensorFlow, which must not share a process with QGIS, and test/scaleout
    needs Dask and geopandas (.venv-dask): each has its own run."""
    if config.pluginmanager.has_plugin("pytest_qgis") and collection_path.name in ("training", "scaleout"):
        return True
    return None


def _desktop_parts(iface):
    """Give pytest-qgis's iface the real widgets QGIS's dialogs and result loading ask it for.

    Its stub answers browserModel() and layerTreeView() with MagicMocks, which QGIS's C++ refuses
    (on 3.44 loading a result then aborts the process).
    """
    from qgis.core import QgsProject
    from qgis.gui import QgsBrowserGuiModel, QgsLayerTreeView
    from qgis.core import QgsLayerTreeModel

    parts = {"browser": QgsBrowserGuiModel(), "view": QgsLayerTreeView()}
    parts["model"] = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    parts["view"].setModel(parts["model"])
    iface.browserModel = lambda: parts["browser"]
    iface.layerTreeView = lambda: parts["view"]
    return parts


@pytest.fixture(scope="session")
def plugin(qgis_iface, qgis_processing):
    """The plugin as QGIS loads it: classFactory, then initProcessing (no GUI needed)."""
    import overlap_relevance

    _desktop = _desktop_parts(qgis_iface)  # noqa: F841 - kept for the session

    instance = overlap_relevance.classFactory(qgis_iface)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture
def provider(plugin):
    return plugin.provider


@pytest.fixture(scope="session")
def qgis_process_cli():
    """qgis_process with this working tree enabled as a plugin in a throwaway profile."""
    from tools.qgis_process import repo_plugin

    cli = repo_plugin()
    cli.enable()
    return cli
