"""The plugin's settings: which Python interpreter runs training (TensorFlow never runs inside QGIS).

The interpreter is, in this order:

1. the QGIS setting ``overlap_relevance/python`` (:data:`PYTHON_KEY`), shown in
   Settings ▸ Options ▸ Processing ▸ Providers ▸ Overlap relevance as
   "Python interpreter for training";
2. the environment variable ``OVERLAP_RELEVANCE_PYTHON`` (:data:`PYTHON_ENV`), handy
   for ``qgis_process`` and scripts;
3. the default: the training environment ``<plugin folder>/.venv-train`` that ``make setup-train``
   makes, else ``<plugin folder>/.venv``, when present (``Scripts\\python.exe`` on Windows), else
   ``python3`` (``python`` on Windows) from the PATH.
"""

import os
from pathlib import Path

from qgis.core import QgsSettings

PYTHON_KEY = "overlap_relevance/python"
PYTHON_ENV = "OVERLAP_RELEVANCE_PYTHON"
#: Name of the Processing option (Settings ▸ Options ▸ Processing ▸ Providers).
PYTHON_OPTION = "OVERLAP_RELEVANCE_PYTHON"
PLUGIN_DIR = Path(__file__).resolve().parents[1]


def default_interpreter():
    """The Python of ``<plugin folder>/.venv-train`` or ``.venv`` when there is one, else ``python3``."""
    candidates = [PLUGIN_DIR / venv / sub for venv in (".venv-train", ".venv")
                  for sub in (Path("bin") / "python", Path("Scripts") / "python.exe")]
    for candidate in candidates:
        if candidate.is_file():  # not resolved: a venv's python is a symlink that must stay the venv's
            return str(candidate)
    return "python" if os.name == "nt" else "python3"


def training_interpreter():
    """(interpreter, where it was set: 'setting' / 'environment' / 'default')."""
    value = QgsSettings().value(PYTHON_KEY, "")
    value = str(value or "").strip()
    if value:
        return value, "setting"
    value = os.environ.get(PYTHON_ENV, "").strip()
    if value:
        return value, "environment"
    return default_interpreter(), "default"


def set_training_interpreter(path):
    """Store ``path`` in the QGIS setting (None or '' removes it, so the default applies)."""
    settings = QgsSettings()
    if path:
        settings.setValue(PYTHON_KEY, str(path))
    else:
        settings.remove(PYTHON_KEY)


def add_processing_options(provider):
    """Show the interpreter setting in Processing's options, stored under :data:`PYTHON_KEY`.

    Does nothing where the Processing plugin's configuration is not available (the
    setting and the environment variable still work).
    """
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return
    description = "Python interpreter for training (needs TensorFlow)"
    placeholder = f"Leave blank for the default: {default_interpreter()}"
    try:
        setting = Setting(provider.name(), PYTHON_OPTION, description, "", valuetype=Setting.FILE,
                          placeholder=placeholder)
    except TypeError:  # a Processing without placeholders
        setting = Setting(provider.name(), PYTHON_OPTION, description, "", valuetype=Setting.FILE)
    setting.qname = PYTHON_KEY  # read and saved under the plugin's own key
    ProcessingConfig.settingIcons[provider.name()] = provider.icon()
    ProcessingConfig.addSetting(setting)
    setting.read()


def remove_processing_options():
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return
    if PYTHON_OPTION in ProcessingConfig.settings:
        ProcessingConfig.removeSetting(PYTHON_OPTION)
