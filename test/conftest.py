"""Shared fixtures. QGIS itself is started by pytest-qgis; everything runs headless."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


def pytest_ignore_collect(collection_path, config):
    """test/training imports TensorFlow, which must not share a process with QGIS: it has its own run."""
    if config.pluginmanager.has_plugin("pytest_qgis") and collection_path.name == "training":
        return True
    return None


@pytest.fixture(scope="session")
def plugin(qgis_iface, qgis_processing):
    """The plugin as QGIS loads it: classFactory, then initProcessing (no GUI needed)."""
    import overlap_relevance

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
