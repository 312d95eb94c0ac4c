"""Run Debian's qgis_process with this plugin enabled, headless and with a throwaway profile.

Debian's /usr/bin/qgis_process wrapper passes a flag 3.22 rejects, so the binary is
called directly. Modules from the venv reach QGIS's Python only through PYTHONPATH.
"""

import json
import os
import subprocess
import sysconfig
import tempfile
from pathlib import Path

QGIS_PROCESS = "/usr/bin/qgis_process.bin"
REPO_ROOT = Path(__file__).resolve().parents[2]


def plugin_env(plugin_parent, home):
    """Environment for qgis_process: plugin folder parent, private HOME, venv modules."""
    # pytest-qgis points QGIS_CUSTOM_CONFIG_PATH at its own settings; the child gets its own profile.
    env = {key: value for key, value in os.environ.items() if key != "QGIS_CUSTOM_CONFIG_PATH"}
    env.update(
        HOME=str(home),
        QGIS_PLUGINPATH=str(plugin_parent),
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=os.pathsep.join(
            p for p in [sysconfig.get_paths()["purelib"], env.get("PYTHONPATH", "")] if p
        ),
    )
    return env


class QgisProcess:
    """qgis_process bound to one plugin folder and one private profile."""

    def __init__(self, plugin_parent, plugin_name="overlap_relevance", home=None):
        self.plugin_parent = Path(plugin_parent)
        self.plugin_name = plugin_name
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="qgis-home-"))
        self.env = plugin_env(self.plugin_parent, self.home)

    def __call__(self, *args, timeout=600, check=True):
        result = subprocess.run(
            [QGIS_PROCESS, *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"qgis_process {' '.join(map(str, args))} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def enable(self):
        result = self("plugins", "enable", self.plugin_name, check=False)
        if result.returncode != 0 and "already enabled" not in result.stdout + result.stderr:
            raise RuntimeError(f"Could not enable {self.plugin_name}:\n{result.stdout}\n{result.stderr}")
        return result

    def run_json(self, algorithm, parameters, timeout=600):
        """Run ``algorithm`` with ``parameters`` (a dict) and return qgis_process's JSON."""
        args = ["run", algorithm, "--json", "--"]
        args += [f"{key}={value}" for key, value in parameters.items()]
        result = self(*args, timeout=timeout)
        # qgis_process may print log lines before the JSON document.
        text = result.stdout[result.stdout.index("{"):]
        return json.loads(text)


def repo_plugin():
    """QgisProcess for the working tree, reached through the venv's plugin folder symlink."""
    return QgisProcess(REPO_ROOT / ".venv" / "plugins")
