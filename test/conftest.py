"""Shared fixtures. QGIS itself is started by pytest-qgis; everything runs headless."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def plugin(qgis_iface, qgis_processing):
    """The plugin as QGIS loads it: classFactory, then initProcessing (no GUI needed)."""
    import overlap_relevance

    instance = overlap_relevance.classFactory(qgis_iface)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session")
def provider(plugin):
    return plugin.provider


@pytest.fixture(scope="session")
def qgis_process_cli():
    """qgis_process with this working tree enabled as a plugin in a throwaway profile."""
    from tools.qgis_process import repo_plugin

    cli = repo_plugin()
    cli.enable()
    return cli
