"""A new user's first contact: QGIS loads the plugin whatever its Python has, lists every algorithm, and a
run stops with advice that works, never with a traceback.

Each case runs QGIS's own Python (/usr/bin/python3) in a process of its own, never the test's venv:

* the desktop, as QGIS starts it: ``qgis.utils`` loads and starts the plugin (classFactory, initGui),
  Processing lists the provider; canExecute's message is rendered as QGIS's dialog renders it, and
  ``processing.run`` runs an algorithm;
* ``qgis_process``: ``plugins enable``, ``list``, ``help`` and ``run``.

Cases: shapely hidden; numpy, shapely and pyproj hidden; shapely 1.8; a shapely wheel with its own GEOS,
which QGIS (3.40 and later) imports before the plugin; the same wheel in the plugin's own folder, where
QGIS does not look and the plugin imports it on its own GEOS (what the advice installs in a Flatpak).
Hidden modules raise ModuleNotFoundError as if absent (a ``sitecustomize`` on PYTHONPATH); the shapely
variants are PyPI wheels unpacked into a folder by ``make setup`` and put first on PYTHONPATH (or in
the plugin's own folder under a temporary XDG_DATA_HOME), never installed.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from overlap_relevance.algorithms.install_advice import core_commands, mixed_geos_advice

REPO_ROOT = Path(__file__).resolve().parents[2]
QGIS_PYTHON = "/usr/bin/python3"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
PLUGINS = REPO_ROOT / ".venv" / "plugins"  # holds the overlap_relevance symlink to this tree
VARIANTS = REPO_ROOT / ".venv" / "shapely-variants"
ALGORITHMS = {"evaluatemodel", "exactoverlap", "matchfeatures", "overlaplocation", "relevancepairs",
              "scorerelevance", "trainmodel"}
SAMPLE = REPO_ROOT / "resources" / "sample"

HIDER = '''
import os, sys
from importlib.abc import MetaPathFinder

HIDDEN = {name for name in os.environ.get("OVERLAP_TEST_HIDE", "").split(",") if name}


class Hide(MetaPathFinder):
    """Import of a hidden package fails as it would were the package not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
'''

DESKTOP = '''
import json, sys, traceback
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingContext, QgsProcessingFeedback

app = QgsApplication([], False, "", "desktop")  # the platform name QGIS's own executable gives
app.initQgis()
log = []
QgsApplication.messageLog().messageReceived.connect(lambda message, tag, level: log.append(f"{tag}: {message}"))
sys.path[:0] = [sys.argv[1], "/usr/share/qgis/python/plugins"]
import qgis.utils
from processing.core.Processing import Processing

Processing.initialize()
started = bool(qgis.utils.loadPlugin("overlap_relevance")) and bool(qgis.utils.startPlugin("overlap_relevance"))
provider = QgsApplication.processingRegistry().providerById("overlaprelevance")
algorithms = provider.algorithms() if provider is not None else []
can_execute = {a.name(): a.canExecute() for a in algorithms}
# The two core modules that import nothing (the "numpy, shapely, pyproj hidden" case loads them too).
core_loaded = sorted(m for m in sys.modules if m.startswith("overlap_relevance.model.")
                     and m not in ("overlap_relevance.model.match_thresholds", "overlap_relevance.model.fields")
                     or m.split(".")[-1] in ("relevance_run", "layers", "sources", "ogr_read", "geometry_out"))

from qgis.PyQt.QtGui import QTextDocument

shown = {}
for name, (ok, message) in can_execute.items():
    document = QTextDocument()
    document.setHtml("<h3>This algorithm cannot be run :-( </h3>\\n" + message)  # as Processing's toolbox does
    shown[name] = document.toPlainText()

import processing

parameters = {"INPUT": sys.argv[2], "REFERENCE": sys.argv[3], "OUTPUT": "TEMPORARY_OUTPUT"}
try:
    processing.run("overlaprelevance:exactoverlap", parameters)
    run = "ran"
except QgsProcessingException as error:
    run = str(error)
except Exception:
    run = "UNEXPECTED " + traceback.format_exc()
# A run that skips checkParameterValues (as a model's child can) stops in prepareAlgorithm.
feedback = QgsProcessingFeedback()
errors = []
feedback.reportError = lambda text, fatal=False: errors.append(text)
algorithm = QgsApplication.processingRegistry().createAlgorithmById("overlaprelevance:scorerelevance")
results, prepared_ok = algorithm.run(parameters, QgsProcessingContext(), feedback, catchExceptions=True)
print("RESULT " + json.dumps({"started": started, "algorithms": sorted(can_execute), "can_execute": can_execute,
                              "shown": shown, "run": run, "prepared_ok": prepared_ok, "prepared": errors,
                              "core_loaded": core_loaded, "log": log}), flush=True)
import os

os._exit(0)  # all is said; QGIS tearing its application down at interpreter exit can crash, which says nothing here
'''

MIXED_STATE = {"shapely": "2.1.2", "shapely_geos": "3.13.1", "process_geos": "3.11.1-CAPI-1.17.1"}


def _commands_of(advice_text):
    return [line.strip() for line in advice_text.splitlines() if line.startswith("    ")]


#: case -> (PYTHONPATH folder under VARIANTS or None, hidden packages, expected advice commands or None: runs)
CASES = {
    "nothing missing": (None, "", None),
    "shapely hidden": (None, "shapely", lambda: core_commands({"shapely": None})),
    "numpy, shapely, pyproj hidden": (None, "numpy,shapely,pyproj",
                                      lambda: core_commands({"numpy": None, "shapely": None, "pyproj": None})),
    "shapely 1.8": ("shapely-1.8", "", lambda: core_commands({"shapely": "1.8.5.post1"})),
    "shapely wheel on its own GEOS": ("shapely-wheel", "", lambda: _commands_of(mixed_geos_advice(MIXED_STATE))),
    "shapely wheel in the plugin's own folder": ("shapely-wheel", "", None),
}
#: Cases whose shapely lies in the plugin's own folder (native_libs.py private_site), not on PYTHONPATH.
IN_PRIVATE_SITE = {"shapely wheel in the plugin's own folder"}


def _environment(case, tmp_path):
    variant, hidden, _ = CASES[case]
    hider = tmp_path / "hider"
    hider.mkdir(exist_ok=True)
    (hider / "sitecustomize.py").write_text(HIDER)
    paths = [str(hider)]
    data_home = tmp_path / "data"
    if variant is not None:
        folder = VARIANTS / variant
        if not folder.is_dir():
            pytest.skip(f"{folder} is missing: `make setup` found no such wheel for this Python")
        if case in IN_PRIVATE_SITE:
            site = data_home / "overlap_relevance" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
            site.parent.mkdir(parents=True, exist_ok=True)
            site.symlink_to(folder, target_is_directory=True)
        else:
            paths.insert(0, str(folder))
    elif not hidden:
        paths.append(sysconfig.get_paths()["purelib"])  # the venv's shapely 2, as `make setup` gave QGIS
    env = {key: value for key, value in os.environ.items()
           if key not in ("QGIS_CUSTOM_CONFIG_PATH", "PYTHONPATH", "VIRTUAL_ENV")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_DATA_HOME=str(data_home), QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(PLUGINS),
               PYTHONPATH=os.pathsep.join(map(str, paths)), OVERLAP_TEST_HIDE=hidden,
               PROJ_DATA=env.get("PROJ_DATA", "/usr/share/proj"))
    return env


def _no_traceback(*texts, case=None):
    """No traceback; without numpy, QGIS's own Processing plugin fails to start in qgis_process (its
    TestTools imports numpy), which is QGIS's traceback: then none may pass through this plugin."""
    for text in texts:
        assert "overlap_relevance' due to an error" not in text, text[-3000:]  # "Couldn't load plugin ..."
        for traceback in text.split("Traceback (most recent call last)")[1:]:
            assert case is not None and "numpy" in CASES[case][1], text[-3000:]
            assert "overlap_relevance" not in traceback.split("\n\n")[0], traceback[:3000]


def _check_advice(text, expected):
    lines = [line.strip() for line in text.splitlines()]
    for command in expected:
        assert command in lines, (command, text)


@pytest.mark.parametrize("case", list(CASES))
def test_desktop_loads_lists_and_advises(case, tmp_path):
    env = _environment(case, tmp_path)
    script = tmp_path / "desktop.py"
    script.write_text(DESKTOP)
    done = subprocess.run([QGIS_PYTHON, str(script), str(PLUGINS), str(SAMPLE / "buildings_mapping.gpkg"),
                           str(SAMPLE / "buildings_cadastre.gpkg")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    _no_traceback(done.stderr, "\n".join(result["log"]))  # the desktop's Processing starts without numpy
    assert result["started"]
    assert set(result["algorithms"]) == ALGORITHMS
    assert result["core_loaded"] == [], "loading and listing imported the core"
    expected = CASES[case][2]
    if case == "shapely wheel on its own GEOS":
        # QGIS's GEOS is in the global symbol scope only in QGIS's executables (qgis_process below, and the
        # desktop); a Python that imports qgis keeps it local, so the wheel runs on its own GEOS, and may.
        expected = None
    if expected is None:
        assert all(ok for ok, _ in result["can_execute"].values()), result["can_execute"]
        assert result["run"] == "ran" and result["prepared_ok"], result
        return
    expected = expected()
    assert expected
    for name, (ok, message) in result["can_execute"].items():
        assert not ok, name
        assert "<pre" in message, message
        if any("<" in command for command in expected):
            assert "&lt;" in message, message  # escaped: QGIS would otherwise read it as a tag
        _check_advice(result["shown"][name], expected)  # whole, one command a line, as the dialog shows it
    assert not result["run"].startswith("UNEXPECTED"), result["run"]
    assert result["run"] != "ran"
    _check_advice(result["run"], expected)
    assert result["prepared_ok"] is False
    _check_advice("\n".join(result["prepared"]), expected)


def _qgis_process(env, *args):
    return subprocess.run([QGIS_PROCESS, *map(str, args)], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("case", [case for case in CASES if case != "nothing missing"])
def test_qgis_process_loads_lists_and_advises(case, tmp_path):
    env = _environment(case, tmp_path)
    enabled = _qgis_process(env, "plugins", "enable", "overlap_relevance")
    _no_traceback(enabled.stdout, enabled.stderr, case=case)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    listing = _qgis_process(env, "list")
    _no_traceback(listing.stdout, listing.stderr, case=case)
    ids = {line.split()[0] for line in listing.stdout.splitlines() if line.strip().startswith("overlaprelevance:")}
    assert ids == {f"overlaprelevance:{name}" for name in ALGORITHMS}
    helped = _qgis_process(env, "help", "overlaprelevance:matchfeatures")  # its thresholds' defaults need no core
    assert helped.returncode == 0 and "T_IOU" in helped.stdout, helped.stdout[-2000:] + helped.stderr[-2000:]
    ran = _qgis_process(env, "run", "overlaprelevance:scorerelevance", "--",
                        f"INPUT={SAMPLE / 'buildings_mapping.gpkg'}", f"REFERENCE={SAMPLE / 'buildings_cadastre.gpkg'}",
                        f"OUTPUT={tmp_path / 'out.gpkg'}")
    _no_traceback(ran.stdout, ran.stderr, case=case)
    if CASES[case][2] is None:  # runs: in qgis_process (GEOS in the global scope) that means not mixed
        assert ran.returncode == 0 and (tmp_path / "out.gpkg").exists(), ran.stdout[-3000:] + ran.stderr[-3000:]
        return
    assert ran.returncode != 0 and not (tmp_path / "out.gpkg").exists()
    _check_advice(ran.stdout + ran.stderr, CASES[case][2]())
    assert "&lt;" not in ran.stdout + ran.stderr and "<pre>" not in ran.stdout + ran.stderr  # a terminal: plain text

