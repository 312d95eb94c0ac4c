"""`make setup`, `setup-train` and `setup-dask` give the same environments whatever the caller's shell holds.

A PYTHONPATH exported as the README's qgis_process lines do made pip in .venv-train take the QGIS venv's
`packaging` as installed, and TensorFlow could not be imported afterwards (issue 25, item 7). The Makefile
keeps the caller's Python variables away from every recipe; pip's own configuration (PIP_CERT, indexes) stays.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tools.qgis_process import REPO_ROOT

CALLER = {  # what a shell may hold: another environment's packages, another Python, pip sent elsewhere
    "PYTHONPATH": str(REPO_ROOT / ".venv" / "lib"),
    "PYTHONHOME": "/nonexistent/python-home",  # any Python started with it fails at once
    "VIRTUAL_ENV": "/nonexistent/venv",
    "PYTHONUSERBASE": "/nonexistent/user-base",
    "PIP_TARGET": "/nonexistent/pip-target",
    "PIP_USER": "1",
    "PIP_NO_DEPS": "1",
}
CLEARED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONUSERBASE", "PIP_TARGET", "PIP_USER", "PIP_NO_DEPS")
PROBE = ("probe: ; @$(SYSTEM_PYTHON) -c 'import json, os, sys; print(json.dumps({\"env\": dict(os.environ), "
         "\"no_user_site\": sys.flags.no_user_site}))'")


def _make(*args, cwd=REPO_ROOT, env=None, timeout=60):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_recipes_run_python_without_the_callers_python_environment():
    env = {**os.environ, **CALLER, "PIP_CERT": "/etc/ssl/certs/kept.pem"}
    result = _make("-s", f"--eval={PROBE}", "probe", env=env)
    assert result.returncode == 0, result.stderr  # with PYTHONHOME passed on, the Python would not even start
    seen = json.loads(result.stdout)
    for name in CLEARED:
        assert name not in seen["env"], name
    assert seen["no_user_site"] == 1
    assert seen["env"]["PIP_CERT"] == "/etc/ssl/certs/kept.pem"  # what the machine needs to reach packages


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_the_clearing_reaches_nested_make_calls():
    """link-package runs in a nested make; it must see the same cleared environment."""
    env = {**os.environ, **CALLER}
    result = _make("-s", f"--eval={PROBE}", "--eval=outer: ; @$(MAKE) --no-print-directory -s probe", "outer", env=env)
    assert result.returncode == 0, result.stderr
    assert not set(CLEARED) & set(json.loads(result.stdout)["env"])


KEY_IMPORTS = {  # make target -> (environment, what must import there); `setup` less its apt step
    ".venv/.setup-done": (".venv", "import shapely, pytest, pytest_qgis, tqdm, qgis.core; "
                                   "assert int(shapely.__version__.split('.')[0]) >= 2; "
                                   "import overlap_relevance.algorithms.sources"),
    "setup-dask": (".venv-dask", "import dask, distributed, dask_geopandas, geopandas, pyogrio, pyarrow, scipy, "
                                 "shapely, pyproj, packaging; import overlap_relevance.scaleout.cli"),
    "setup-train": (".venv-train", "import tensorflow, numpy, shapely, pyproj, packaging; "
                                   "import overlap_relevance.model.training.train"),
}


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(KEY_IMPORTS))
def test_an_environment_built_from_a_polluted_shell_works_from_a_clean_one(tmp_path, target):
    """Builds the environment in a copy of the tree (minutes: pip installs everything), then imports from it."""
    copy = tmp_path / "tree"
    shutil.copytree(REPO_ROOT, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv*", "build", ".git", "__pycache__", "*.pyc", "work", ".pytest_cache"))
    site = REPO_ROOT / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    env = {**os.environ, **CALLER, "PYTHONPATH": str(site)}
    result = _make(target, cwd=copy, env=env, timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    venv, code = KEY_IMPORTS[target]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    check = subprocess.run([str(copy / venv / "bin" / "python"), "-c", code], env=clean, capture_output=True,
                           text=True, timeout=600)
    assert check.returncode == 0, check.stderr[-3000:]
