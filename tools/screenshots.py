"""`make screenshots`: the real QGIS desktop, under Xvfb, photographs the plugin for the README.

Starts `qgis` (the desktop application, not a test harness) on a virtual X display with a
throwaway profile in which the plugin (this working tree, through QGIS_PLUGINPATH) is
enabled, and runs tools/screenshot_session.py inside it. That script opens the dialog,
runs the algorithms as the toolbox would (results loaded and styled by QGIS's own result
handling), and saves PNGs of the dialog, the main window with the styled outputs, and the
evaluation report into docs/. A second session starts QGIS with shapely hidden from its Python (a
``sitecustomize`` that makes the import fail as if shapely were not installed), double-clicks an
algorithm as the toolbox does, and photographs the advice QGIS then shows. Run with the system
Python; needs xvfb (apt-get install xvfb).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
VENV = REPO_ROOT / ".venv"
SESSION = REPO_ROOT / "tools" / "screenshot_session.py"
TIMEOUT_S = int(os.environ.get("SCREENSHOTS_TIMEOUT_S", "600"))


def _venv_site():
    found = sorted((VENV / "lib").glob("python3*/site-packages"))
    return str(found[0]) if found else ""


#: Makes ``import <name>`` fail for every name in OVERLAP_HIDE, as if the package were not installed.
HIDER = (
    "import os, sys\n"
    "from importlib.abc import MetaPathFinder\n"
    "HIDDEN = set(filter(None, os.environ.get('OVERLAP_HIDE', '').split(',')))\n"
    "class Hide(MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in HIDDEN:\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, Hide())\n"
)


def main():
    if shutil.which("xvfb-run") is None:
        print("make screenshots needs xvfb-run: apt-get install -y xvfb", file=sys.stderr)
        return 2
    qgis = shutil.which("qgis")
    if qgis is None:
        print("make screenshots needs the QGIS desktop (the qgis package)", file=sys.stderr)
        return 2
    DOCS.mkdir(exist_ok=True)
    started = time.perf_counter()
    reports = [_session(qgis, mode) for mode in ("results", "without shapely")]
    if any(report is None for report in reports):
        return 1
    for report in reports:
        for name, details in report["files"].items():
            print(f"{DOCS / name}: {details}")
    count = sum(len(report["files"]) for report in reports)
    print(f"QGIS {reports[0]['qgis']}: {count} screenshots in {time.perf_counter() - started:.0f} s")
    return 0


def _session(qgis, mode):
    """One QGIS desktop session running tools/screenshot_session.py in ``mode``; its manifest, or None."""
    with tempfile.TemporaryDirectory(prefix="overlap_relevance_shots_") as work:
        work = Path(work)
        profile = work / "profiles" / "default" / "QGIS"  # --profiles-path work: QGIS adds profiles/<name>
        profile.mkdir(parents=True)
        # The plugin enabled; no tips, news, welcome or crash dialogs that would wait for a click.
        (profile / "QGIS3.ini").write_text(
            "[PythonPlugins]\noverlap_relevance=true\n\n"
            "[qgis]\nshowTips=false\ncheckVersion=false\nallowVersionCheck=false\n"
            "[Projections]\nshowDatumTransformDialog=false\n"
            "[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n", encoding="utf-8")
        manifest = work / "manifest.json"
        # QGIS embeds the system's Python: no other Python's variables or PATH entries (a pyenv shim's) may leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYENV", "VIRTUAL_ENV"))}
        env["PATH"] = os.pathsep.join(["/usr/bin", "/bin", env.get("PATH", "")])
        python_path = _venv_site()
        if mode == "without shapely":
            hider = work / "hider"
            hider.mkdir()
            (hider / "sitecustomize.py").write_text(HIDER, encoding="utf-8")
            python_path = str(hider)  # not the venv either: its shapely would be found there
        env.update({
            "QGIS_PLUGINPATH": str(VENV / "plugins"),
            "PYTHONPATH": python_path,
            "OVERLAP_HIDE": "shapely" if mode == "without shapely" else "",
            "OVERLAP_SCREENSHOT_MODE": mode,
            "PROJ_DATA": env.get("PROJ_DATA", "/usr/share/proj"),
            "OVERLAP_SCREENSHOTS": str(DOCS),
            "OVERLAP_REPO_ROOT": str(REPO_ROOT),
            "OVERLAP_SCREENSHOT_MANIFEST": str(manifest),
            "QT_QPA_PLATFORM": "xcb",
            "HOME": str(work),
        })
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", qgis, "--nologo", "--noversioncheck",
                   "--profiles-path", str(work), "--code", str(SESSION)]
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                                    check=False)
        except subprocess.TimeoutExpired as expired:
            for stream in (expired.stdout, expired.stderr):
                if stream:
                    print(stream[-3000:] if isinstance(stream, str) else stream[-3000:].decode(errors="replace"),
                          file=sys.stderr)
            log = Path(str(manifest) + ".log")
            print(log.read_text(encoding="utf-8") if log.exists() else "(the session never started)", file=sys.stderr)
            print(f"QGIS did not finish within {TIMEOUT_S} s ({mode})", file=sys.stderr)
            return None
        if not manifest.exists():
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
            print(f"QGIS exited without writing the screenshots ({mode})", file=sys.stderr)
            return None
        report = json.loads(manifest.read_text(encoding="utf-8"))
    if report.get("error"):
        print(report["error"], file=sys.stderr)
        return None
    return report


if __name__ == "__main__":
    sys.exit(main())
