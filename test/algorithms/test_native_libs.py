"""Which GEOS shapely runs on inside QGIS (native_libs.py), on every QGIS version.

QGIS < 3.40: the plugin's entry point imports shapely first, with RTLD_DEEPBIND.
QGIS >= 3.40: qgis.core has imported shapely already; the plugin uses it, and refuses a wheel
whose GEOS would mix with the process's.
"""

import subprocess
import sys
import textwrap

import pytest
from qgis.core import Qgis

QGIS_IMPORTS_SHAPELY = Qgis.QGIS_VERSION_INT >= 34000


def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_shapely_imported_with_its_own_geos_works():
    done = _run("""
        import sys
        from overlap_relevance.native_libs import import_shapely_with_own_geos, shapely_geos_state
        assert "shapely" not in sys.modules
        assert import_shapely_with_own_geos() is True
        import shapely
        a, b = shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)
        assert shapely.area(shapely.intersection(a, b)) == 1.0
        assert shapely.from_wkb(shapely.to_wkb(a)).equals(a)
        assert import_shapely_with_own_geos() is False  # already imported: left as it is
        assert shapely_geos_state()["deep_bound"] and not shapely_geos_state()["mixed"]
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_plugin_entry_point_and_shapely_on_this_qgis():
    """Before 3.40 the entry point imports shapely; from 3.40 on qgis.core did, and it is left alone."""
    done = _run(f"""
        import sys, qgis.core  # as inside QGIS: qgis first
        preloaded = "shapely" in sys.modules
        assert preloaded == {QGIS_IMPORTS_SHAPELY}, preloaded
        import overlap_relevance
        overlap_relevance.classFactory(None)
        assert "shapely" in sys.modules
        from overlap_relevance import native_libs
        assert native_libs._DEEP_BOUND == (not preloaded)
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_shapely_that_qgis_process_uses_is_not_mixed(qgis_process_cli, tmp_path):
    """In a QGIS executable (global GEOS), shapely runs on one GEOS: its own (deep-bound) or the system's."""
    from tools.qgis_process import REPO_ROOT

    # The algorithms' canExecute refuses a mixed state, so a run of any algorithm proves it is not.
    result = qgis_process_cli("run", "overlaprelevance:scorerelevance", "--json", "--",
                              f"INPUT={REPO_ROOT / 'resources/sample/buildings_mapping.gpkg'}",
                              f"REFERENCE={REPO_ROOT / 'resources/sample/buildings_cadastre.gpkg'}",
                              f"OUTPUT={tmp_path / 'out.gpkg'}", check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_a_mixed_state_is_detected_and_refused_with_advice(monkeypatch):
    from overlap_relevance.algorithms import base
    from overlap_relevance.algorithms.install_advice import SHAPELY_FROM_SOURCE
    from overlap_relevance.algorithms.score_relevance import ScoreRelevanceAlgorithm

    state = {"shapely": "2.2.0", "shapely_geos": "3.14.1", "process_geos": "3.11.1-CAPI-1.17.1",
             "bundled": True, "deep_bound": False, "mixed": True}
    monkeypatch.setattr(base, "shapely_geos_state", lambda: state)
    ok, message = ScoreRelevanceAlgorithm().canExecute()
    assert not ok
    assert "3.14.1" in message and "3.11.1" in message and SHAPELY_FROM_SOURCE[1] in message
    monkeypatch.setattr(base, "shapely_geos_state", lambda: {**state, "mixed": False})
    assert ScoreRelevanceAlgorithm().canExecute() == (True, "")


@pytest.mark.parametrize("process, bundled, deep, expected", [
    (None, True, False, False),  # plain Python: no global GEOS
    ("3.11.1-CAPI-1.17.1", True, True, False),  # deep-bound wheel
    ("3.11.1-CAPI-1.17.1", False, False, False),  # built on the system's GEOS
    ("3.11.1-CAPI-1.17.1", True, False, True),  # wheel loaded by QGIS itself
])
def test_mixed_means_a_wheel_bound_through_the_global_scope(monkeypatch, process, bundled, deep, expected):
    from pathlib import Path

    from overlap_relevance import native_libs

    monkeypatch.setattr(native_libs, "process_geos_version", lambda: process)
    monkeypatch.setattr(native_libs, "_DEEP_BOUND", deep)
    real_is_dir = Path.is_dir
    monkeypatch.setattr(Path, "is_dir", lambda self: bundled if self.name == "shapely.libs" else real_is_dir(self))
    import shapely

    monkeypatch.setattr(shapely, "geos_version_string", "3.14.1")
    assert native_libs.shapely_geos_state()["mixed"] is expected
