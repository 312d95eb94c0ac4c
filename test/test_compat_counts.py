"""tools/compat/run.py counts every suite `make test` runs, the Dask one included (issue 28)."""

import importlib.util
import re
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "roots", types.SimpleNamespace(
        REPO_ROOT=REPO, ROOTS=None, TARGETS=[], chroot=None, ensure_root=None))
    spec = importlib.util.spec_from_file_location("compat_run", REPO / "tools" / "compat" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_suite_of_make_test_is_counted(monkeypatch, tmp_path):
    run = _run_module(monkeypatch)
    makefile = (REPO / "Makefile").read_text()
    test_target = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"\$\(call junit,(\w+)\)", test_target)) == set(run.SUITES)

    (tmp_path / "dask.xml").write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="1" '
                                       'time="2"><testcase classname="d" name="t"><failure/></testcase>'
                                       '</testsuite></testsuites>')
    counts = run.junit_counts(tmp_path / "dask.xml")
    result = {"target": "t", "release": "bookworm", "qgis": "3.40", "python": "3.11", "numpy": "1.24",
              "suites": {"qgis": counts, "training": counts, "dask": counts, "compiled": counts}, "test_rc": 0,
              "test_seconds": 1.0,
              "demo_rc": 0, "advice": []}
    monkeypatch.setattr(run, "HERE", tmp_path)
    run.write_results([result])
    table = (tmp_path / "RESULTS.md").read_text()
    assert "Dask suite passed / failed / skipped" in table and table.count("3 / 1 / 1") == 4
    assert run.missing_suites(result) == []
    assert run.missing_suites({**result, "suites": {"qgis": counts, "training": counts}}) == ["dask", "compiled"]
