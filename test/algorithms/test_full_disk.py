"""A full disk is never reported as success (issue 28, fault 2): every writer checks every write and the
file it leaves, and names the output that could not be written."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import shapely
from qgis.core import QgsProcessingException

from tools.corpus import BERLIN, metres_box
from tools.layers import memory_layer

#: Big enough for an empty GeoPackage, far too small for any output below.
DISK_SIZE = "1m"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs folder (needs root and a mount namespace that allows it; skipped otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture(scope="module")
def layers():
    """1,600 overlapping many-vertex squares and the same shifted by 4 m: thousands of pairs, megabytes out."""
    squares = [metres_box(*BERLIN, 20.0, dx=12.0 * i, dy=12.0 * j) for i in range(40) for j in range(40)]
    side = shapely.bounds(squares[0])[2] - shapely.bounds(squares[0])[0]
    detailed = list(shapely.segmentize(np.array(squares), side / 25))  # ~100 vertices each
    shifted = list(shapely.transform(np.array(detailed), lambda xy: xy + [4e-5, 0.0]))
    n = len(detailed)
    return (memory_layer(detailed, "EPSG:4326", {"k": list(range(n))}, name="input"),
            memory_layer(shifted, "EPSG:4326", {"k": list(range(n))}, name="reference"))


CASES = {
    "scorerelevance": {},
    "relevancepairs": {"COMPUTE_EXACT": True, "GEOMETRY": 1},
    "exactoverlap": {},
    "overlaplocation": {"MIN_RELEVANCE": 0.0, "MIN_WEIGHT": 0.0},
    "matchfeatures": {"OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"},
}


@pytest.mark.parametrize("algorithm", sorted(CASES))
def test_a_full_disk_stops_the_run_naming_the_output(provider, layers, small_disk, algorithm):
    import processing

    parameters = {"INPUT": layers[0], "REFERENCE": layers[1], "SEARCH_DISTANCE": 2.0,
                  "OUTPUT": str(small_disk / "out.gpkg"), **CASES[algorithm]}
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(f"overlaprelevance:{algorithm}", parameters)
    message = str(raised.value)
    assert "OUTPUT" in message and "Traceback" not in message, message


def test_the_groups_table_on_a_full_disk_is_named(provider, layers, small_disk):
    import processing

    parameters = {"INPUT": layers[0], "REFERENCE": layers[1], "OUTPUT": "memory:", "OUTPUT_REFERENCE": "memory:",
                  "OUTPUT_GROUPS": str(small_disk / "groups.csv"), "SEARCH_DISTANCE": 2.0}
    # Fill the disk first, so that even the small groups table cannot be written.
    with open(small_disk / "ballast", "wb") as handle:
        try:
            handle.write(b"\0" * (2 << 20))
        except OSError:
            pass
    with pytest.raises(QgsProcessingException, match="OUTPUT_GROUPS"):
        processing.run("overlaprelevance:matchfeatures", parameters)


def test_an_output_that_holds_fewer_features_than_written_is_an_error(provider, tmp_path):
    """What a failed close leaves (a file GDAL reads short, or not at all) is caught after closing."""
    import processing
    from overlap_relevance.algorithms.writing import check_written
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("overlaprelevance:exactoverlap")
    layer = memory_layer([metres_box(*BERLIN, 20.0), metres_box(*BERLIN, 20.0, dx=5)], "EPSG:4326", {"k": [1, 2]})
    out = str(tmp_path / "pairs.gpkg")
    processing.run("overlaprelevance:exactoverlap", {"INPUT": layer, "REFERENCE": layer, "OUTPUT": out})
    check_written(algorithm, {}, "OUTPUT", out, 2)
    with pytest.raises(QgsProcessingException, match="holds 2 of the 3 features"):
        check_written(algorithm, {}, "OUTPUT", out, 3)
    with open(out, "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(QgsProcessingException, match="cannot read"):
        check_written(algorithm, {}, "OUTPUT", out, 2)
