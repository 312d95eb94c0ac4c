"""shapely is imported with RTLD_DEEPBIND by the plugin entry point (see plugin/native_libs.py)."""

import subprocess
import sys
import textwrap


def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_shapely_imported_with_its_own_geos_works():
    done = _run("""
        import sys
        from overlap_relevance.plugin.native_libs import import_shapely_with_own_geos
        assert "shapely" not in sys.modules
        assert import_shapely_with_own_geos() is True
        import shapely
        a, b = shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)
        assert shapely.area(shapely.intersection(a, b)) == 1.0
        assert shapely.from_wkb(shapely.to_wkb(a)).equals(a)
        assert import_shapely_with_own_geos() is False  # already imported: left as it is
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_plugin_entry_point_imports_shapely_first():
    done = _run("""
        import sys, qgis.core  # as inside QGIS: qgis first, shapely not yet
        import overlap_relevance
        assert "shapely" not in sys.modules
        overlap_relevance.classFactory(None)
        assert "shapely" in sys.modules
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
