"""The Dask engine (``overlap-relevance`` in .venv-dask, a process of its own) writes what the QGIS algorithms
write: the same best match and scores (scorerelevance) and the same matches (matchfeatures), feature by feature.

(The Dask suite in test/scaleout compares the engine with the single-process chain; this closes the loop
with the Processing algorithms themselves. Skipped without ``make setup-dask``.)"""

import os
import subprocess

import numpy as np
import pytest
from qgis.core import QgsVectorLayer

from tools.layers import layer_rows
from tools.qgis_process import REPO_ROOT

SAMPLE = REPO_ROOT / "resources" / "sample"
LAUNCHER = REPO_ROOT / ".venv-dask" / "bin" / "overlap-relevance"
MAPPED, CADASTRE = str(SAMPLE / "buildings_mapping.gpkg"), str(SAMPLE / "buildings_cadastre.gpkg")

pytestmark = pytest.mark.skipif(not LAUNCHER.exists(), reason="no .venv-dask (make setup-dask)")


def _dask_cli(tmp_path, command, *extra):
    output = tmp_path / f"{command}.gpkg"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PROJ_DATA", "PROJ_LIB")}
    done = subprocess.run([str(LAUNCHER), command, MAPPED, CADASTRE, "--reference-key", "building_id", "--sigma",
                           "0.5", "--workers", "2", "--partitions", "3", "--quiet", "--output", str(output), *extra],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return output


def _by(rows, key):
    return {row[key]: row for row in rows}


def test_scores_are_those_of_scorerelevance(plugin, tmp_path):
    import processing

    result = processing.run("overlaprelevance:scorerelevance", {
        "INPUT": MAPPED, "REFERENCE": CADASTRE, "REFERENCE_KEY": "building_id", "POSITIONAL_UNCERTAINTY": 0.5,
        "SEARCH_DISTANCE": 0.0, "OUTPUT": "memory:"})
    qgis = _by(layer_rows(result["OUTPUT"]), "map_id")
    dask = _by(layer_rows(QgsVectorLayer(str(_dask_cli(tmp_path, "score")), "dask", "ogr")), "map_id")
    assert dask.keys() == qgis.keys() and len(qgis) == 248
    assert [dask[k]["rel_match"] for k in qgis] == [qgis[k]["rel_match"] for k in qgis]
    assert [dask[k]["rel_n"] for k in qgis] == [qgis[k]["rel_n"] for k in qgis]
    for name in ("rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd"):
        got = np.array([np.nan if dask[k][name] is None else dask[k][name] for k in qgis], dtype=float)
        want = np.array([np.nan if qgis[k][name] is None else qgis[k][name] for k in qgis], dtype=float)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


def test_matches_are_those_of_matchfeatures(plugin, tmp_path):
    import processing

    result = processing.run("overlaprelevance:matchfeatures", {
        "INPUT": MAPPED, "REFERENCE": CADASTRE, "INPUT_KEY": "map_id", "REFERENCE_KEY": "building_id",
        "POSITIONAL_UNCERTAINTY": 0.5, "SEARCH_DISTANCE": 0.0, "OUTPUT": "memory:", "OUTPUT_REFERENCE": "memory:",
        "OUTPUT_GROUPS": "memory:"})
    reference_output = tmp_path / "matched_reference.gpkg"
    output = _dask_cli(tmp_path, "match", "--input-key", "map_id", "--reference-output", str(reference_output))
    for qgis_layer, path, key in ((result["OUTPUT"], output, "map_id"),
                                  (result["OUTPUT_REFERENCE"], reference_output, "building_id")):
        qgis = _by(layer_rows(qgis_layer), key)
        dask = _by(layer_rows(QgsVectorLayer(str(path), "dask", "ogr")), key)
        assert dask.keys() == qgis.keys()
        for name in ("m_class", "m_key", "m_change"):
            assert [dask[k][name] for k in qgis] == [qgis[k][name] for k in qgis], name
        got = np.array([np.nan if dask[k]["m_p"] is None else dask[k]["m_p"] for k in qgis], dtype=float)
        want = np.array([np.nan if qgis[k]["m_p"] is None else qgis[k]["m_p"] for k in qgis], dtype=float)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        assert [dask[k]["m_group"] is None for k in qgis] == [qgis[k]["m_group"] is None for k in qgis]
