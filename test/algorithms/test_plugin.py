"""The plugin loads wherever QGIS users meet it: classFactory, the provider, qgis_process, the zip."""

import configparser
import subprocess
import sys
import zipfile

import pytest
from qgis.core import QgsApplication

from tools.qgis_process import REPO_ROOT, QgisProcess

PROVIDER_ID = "overlaprelevance"


def test_class_factory_registers_and_unload_removes_the_provider(plugin, qgis_iface):
    import overlap_relevance

    registry = QgsApplication.processingRegistry()
    assert registry.providerById(PROVIDER_ID) is not None  # the session's plugin, via classFactory
    plugin.unload()
    assert registry.providerById(PROVIDER_ID) is None
    try:
        fresh = overlap_relevance.classFactory(qgis_iface)
        fresh.initGui()  # initGui registers through initProcessing
        provider = registry.providerById(PROVIDER_ID)
        assert provider is not None
        assert provider.name() == "Overlap relevance"
        assert not provider.icon().isNull()
        assert provider.algorithms(), "the provider has no algorithms"
        fresh.unload()
        assert registry.providerById(PROVIDER_ID) is None
    finally:
        plugin.initProcessing()  # give the other tests their provider back


def test_every_algorithm_describes_itself(provider):
    for algorithm in provider.algorithms():
        assert algorithm.name() and algorithm.name().islower(), algorithm.id()
        assert algorithm.displayName(), algorithm.id()
        assert algorithm.group() and algorithm.groupId(), algorithm.id()
        help_text = algorithm.shortHelpString()
        assert help_text and len(help_text) > 200, f"{algorithm.id()} needs a real help string"
        for parameter in algorithm.parameterDefinitions():
            assert parameter.description(), f"{algorithm.id()}:{parameter.name()} has no description"
        assert algorithm.canExecute()[0], algorithm.canExecute()[1]


def test_metadata_declares_what_the_plugin_manager_needs():
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "metadata.txt")
    general = parser["general"]
    for key in ("name", "description", "about", "version", "author", "email", "repository", "tracker", "tags",
                "icon", "changelog"):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"
    assert general["hasProcessingProvider"] == "yes"
    assert "supportsQt6" not in general  # QGIS 4 ignores it; qgisMaximumVersion >= 4.0 lists the plugin
    assert (REPO_ROOT / general["icon"]).is_file()
    import overlap_relevance

    assert general["version"] == overlap_relevance.__version__


def _algorithm_ids(listing):
    return {line.split()[0] for line in listing.splitlines() if line.strip().startswith(PROVIDER_ID + ":")}


def test_qgis_process_lists_and_explains_every_algorithm(qgis_process_cli, provider):
    listing = qgis_process_cli("list").stdout
    expected = {algorithm.id() for algorithm in provider.algorithms()}
    assert _algorithm_ids(listing) == expected
    for algorithm_id in sorted(expected):
        help_output = qgis_process_cli("help", algorithm_id).stdout
        assert "INPUT" in help_output and "OUTPUT" in help_output, help_output[:500]


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    subprocess.run(["make", "-s", "zip"], cwd=REPO_ROOT, check=True, capture_output=True)
    return REPO_ROOT / "build" / "overlap_relevance.zip"


def test_zip_holds_one_plugin_folder_without_tests_or_caches(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert {name.split("/")[0] for name in names} == {"overlap_relevance"}
    assert "overlap_relevance/metadata.txt" in names
    assert "overlap_relevance/__init__.py" in names
    assert not [n for n in names if "/test/" in n or "__pycache__" in n or ".venv" in n or n.endswith(".pyc")]


def test_unpacked_zip_enables_and_lists_the_same_algorithms(built_zip, tmp_path, provider):
    plugins = tmp_path / "plugins"
    zipfile.ZipFile(built_zip).extractall(plugins)
    cli = QgisProcess(plugins, home=tmp_path / "home")
    cli.enable()
    assert _algorithm_ids(cli("list").stdout) == {algorithm.id() for algorithm in provider.algorithms()}


def test_pip_installed_package_imports_without_qgis(tmp_path):
    """`pip install .` exposes the root as `overlap_relevance`; its core never imports qgis."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir),
         str(REPO_ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(wheel_dir.glob("overlap_relevance-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "overlap_relevance/model/frame.py" in names
    assert not [n for n in names if n.startswith("overlap_relevance/test/")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys, overlap_relevance.model.frame, overlap_relevance.model.overlap, "
        "overlap_relevance.model.mixture, overlap_relevance.model.candidates\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('qgis', 'tensorflow', 'keras')]\n"
        "assert not bad, bad\n"
        "print(overlap_relevance.__file__)"
    )
    # PYTHONPATH puts the wheel ahead of the development symlink; numpy, shapely, pyproj come from the venv.
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": "/usr/bin"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert str(site) in result.stdout
