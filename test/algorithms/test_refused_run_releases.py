"""A refused run keeps nothing alive: QGIS holds the exception that leaves processAlgorithm, and the layers
its frames held outlived exitQgis(), which crashed the process at shutdown (exit 139)."""

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import shapely
from qgis.core import QgsProcessingException

from tools.corpus import BERLIN, berlin_partner, gpkg_layer, metres_box, write_gpkg

TEST_ROOT = Path(__file__).resolve().parents[1]


def _undefined_crs_layer(folder):
    return gpkg_layer(write_gpkg(folder / "cartesian.gpkg", "POLYGON", [shapely.to_wkb(metres_box(*BERLIN, 20.0))],
                                 epsg=-1))


@pytest.mark.parametrize("algorithm", ["exactoverlap", "scorerelevance"])
def test_the_layers_of_a_refused_run_go_when_the_plugin_unloads(provider, tmp_path, algorithm):
    import processing

    from overlap_relevance.algorithms.base import release_held_frames

    layer, partner = _undefined_crs_layer(tmp_path), berlin_partner()
    gone = weakref.ref(layer), weakref.ref(partner)
    with pytest.raises(QgsProcessingException, match="no coordinate reference system"):
        processing.run(f"overlaprelevance:{algorithm}", {"INPUT": layer, "REFERENCE": partner, "OUTPUT": "memory:"})
    del layer, partner
    gc.collect()
    release_held_frames()  # what the provider's unload does
    gc.collect()
    assert [ref() for ref in gone] == [None, None]


def test_a_generator_that_ran_the_refused_run_goes_on(provider, tmp_path):
    """Releasing the held frames stops below a generator's frame: clearing a suspended generator's frame
    would close it, and the caller's loop over it would end early."""
    import processing

    from overlap_relevance.algorithms.base import release_held_frames

    def runs():
        for round_ in range(3):
            try:
                processing.run("overlaprelevance:exactoverlap",
                               {"INPUT": _undefined_crs_layer(tmp_path), "REFERENCE": berlin_partner(),
                                "OUTPUT": "memory:"})
            except QgsProcessingException:
                yield round_

    rounds = runs()
    assert next(rounds) == 0
    release_held_frames()
    assert list(rounds) == [1, 2]


SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], "/usr/share/qgis/python/plugins"]
from qgis.core import QgsApplication, QgsProcessingException
app = QgsApplication([], False)
app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
from unittest import mock
from pathlib import Path
import overlap_relevance, processing, shapely
from tools.corpus import BERLIN, berlin_partner, gpkg_layer, metres_box, write_gpkg
plugin = overlap_relevance.classFactory(mock.MagicMock())
plugin.initProcessing()
layer = gpkg_layer(write_gpkg(Path(sys.argv[2]) / "c.gpkg", "POLYGON", [shapely.to_wkb(metres_box(*BERLIN, 20.0))],
                              epsg=-1))
try:
    processing.run("overlaprelevance:exactoverlap", {"INPUT": layer, "REFERENCE": berlin_partner(), "OUTPUT": "memory:"})
except QgsProcessingException:
    print("refused")
del layer
plugin.unload()
app.exitQgis()
print("exited")
"""


def test_a_script_exits_cleanly_after_a_refused_run(tmp_path):
    """The PyQGIS script a user writes: a refused run on a GeoPackage layer, unload, exitQgis, exit code 0."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(TEST_ROOT), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.split() == ["refused", "exited"]
