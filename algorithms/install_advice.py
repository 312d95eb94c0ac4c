"""How to install what is missing, as commands that work as printed (no QGIS here).

Two audiences:

* QGIS's own Python lacks a core package (numpy, shapely 2, pyproj): :func:`core_commands`.
  On Debian and Ubuntu, QGIS's Python is the system's, which pip may not change
  ("externally managed", PEP 668), so the distribution's package is advised where its
  version suits (python3-shapely is 2.x from Debian 13 and Ubuntu 24.04 on), and otherwise
  a ``pip install --user`` that leaves the system's packages alone. Where QGIS imports shapely
  itself (3.40 and later) that shapely must run on the system's GEOS, so it is built from source
  rather than taken as a wheel (see :mod:`..plugin.native_libs`).
* training needs TensorFlow in a Python of its own: :func:`training_commands` makes a
  self-contained virtual environment. TensorFlow's numpy (>= 1.26, 2.x on Python 3.13)
  then never meets the numpy that QGIS's GDAL was built with.

``make test-compat`` runs every command these functions print in a fresh root of each
Debian release it covers (tools/compat/advice_check.py).
"""

import os
import re
import shlex
import shutil
import subprocess

#: The core's packages: (import name, pip requirement, Debian package).
CORE_PACKAGES = (("numpy", "numpy>=1.21", "python3-numpy"),
                 ("shapely", "shapely>=2.0", "python3-shapely"),
                 ("pyproj", "pyproj>=3.3", "python3-pyproj"))
#: What the training process imports, with the pip requirement that provides each.
TRAINING_REQUIREMENTS = (("tensorflow", "tensorflow-cpu==2.21.*"), ("numpy", "numpy>=1.26"),
                         ("shapely", "shapely>=2.0"), ("pyproj", "pyproj>=3.4"))
#: Where the advised training environment goes (``~`` is the user's home).
TRAINING_VENV = "~/.local/share/overlap_relevance/train-venv"


def is_debian_like(os_release="/etc/os-release"):
    """True on Debian and its derivatives (Ubuntu, Mint, ...), where QGIS's Python is the system's."""
    try:
        with open(os_release, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return False
    ids = " ".join(re.findall(r'^(?:ID|ID_LIKE)="?([^"\n]*)"?$', text, flags=re.MULTILINE)).split()
    return "debian" in ids or "ubuntu" in ids


def minimum_version(requirement):
    """'2.0' for 'shapely>=2.0'; '0' when the requirement sets no minimum."""
    return requirement.split(">=", 1)[1] if ">=" in requirement else "0"


def _arguments(requirements):
    """Requirements quoted for a shell command line."""
    return " ".join(shlex.quote(requirement) for requirement in requirements)


def version_tuple(text):
    """(major, minor) of a version string; Debian epochs and suffixes ('1:1.24.2-1') are ignored."""
    text = text.split(":", 1)[-1]
    parts = []
    for part in text.split(".")[:2]:
        digits = re.match(r"\d*", part).group()
        parts.append(int(digits or 0))
    return tuple(parts)


def debian_candidate(package, timeout=10):
    """The version apt would install for ``package``, or None when unknown (no apt, no such package)."""
    if shutil.which("apt-cache") is None:
        return None
    try:
        done = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"Candidate:\s*(\S+)", done.stdout)
    if not found or found.group(1) == "(none)":
        return None
    return found.group(1)


def qgis_imports_shapely():
    """True when QGIS's Python package imports shapely as it starts (QGIS 3.40 and later).

    Read from ``qgis/core/__init__.py`` without importing qgis, so it works in any Python.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("qgis")
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec else []:
        init = os.path.join(folder, "core", "__init__.py")
        try:
            with open(init, encoding="utf-8") as handle:
                if re.search(r"^\s*import shapely\b", handle.read(), flags=re.MULTILINE):
                    return True
        except OSError:
            continue
    return False


#: Builds shapely on the system's GEOS (a compiler and GEOS's headers needed; about 20 s).
#: shapely 2.1 builds with setuptools; 2.2's meson build also wants pkg-config and ninja.
SHAPELY_FROM_SOURCE = ("sudo apt-get install -y python3-pip libgeos-dev python3-dev gcc g++",
                       "python3 -m pip install --user --break-system-packages --force-reinstall --no-deps "
                       "--no-binary shapely 'shapely>=2.0,<2.2'")


def numpy_major():
    """The major version of the numpy this Python has (the one GDAL was built with), or None."""
    try:
        from importlib import metadata

        return int(metadata.version("numpy").split(".")[0])
    except Exception:  # no numpy, or an odd version string
        return None


def core_commands(missing, debian=None, candidate=debian_candidate, qgis_loads_shapely=None):
    """Shell commands that give QGIS's Python the core packages named in ``missing`` (import names).

    ``qgis_loads_shapely`` (default: :func:`qgis_imports_shapely`): shapely must then run on the
    system's GEOS, so a too old distribution shapely is replaced by one built from source.
    """
    wanted = [entry for entry in CORE_PACKAGES if entry[0] in set(missing)]
    if not wanted:
        return []
    debian = is_debian_like() if debian is None else debian
    qgis_loads_shapely = qgis_imports_shapely() if qgis_loads_shapely is None else qgis_loads_shapely
    if os.name == "nt":
        return ["python3 -m pip install " + _arguments(req for _, req, _ in wanted)]
    if not debian:
        return ["python3 -m pip install --user " + _arguments(req for _, req, _ in wanted)]
    from_apt, from_pip = [], []
    for name, requirement, package in wanted:
        version = candidate(package)
        if version is not None and version_tuple(version) >= version_tuple(minimum_version(requirement)):
            from_apt.append(package)
        else:
            from_pip.append(requirement)
    shapely_from_source = qgis_loads_shapely and "shapely>=2.0" in from_pip
    if shapely_from_source:
        from_pip.remove("shapely>=2.0")
    major = numpy_major()
    if from_pip and major is not None:
        # pip would otherwise take numpy 2 for a wheel that asks for a newer numpy, and GDAL's
        # gdal_array (built with the system's numpy 1.x on Debian 12) would stop importing.
        from_pip.append(f"numpy<{major + 1}")
    commands = ["sudo apt-get install -y " + " ".join(from_apt)] if from_apt else []
    if shapely_from_source:
        commands.append(SHAPELY_FROM_SOURCE[0])  # installs pip too
    elif from_pip:
        commands.append("sudo apt-get install -y python3-pip")
    if from_pip:
        # --user leaves the system's packages alone; --break-system-packages is how pip is told that
        # this is intended on a Python the distribution manages.
        commands.append("python3 -m pip install --user --break-system-packages " + _arguments(from_pip))
    if shapely_from_source:
        commands.append(SHAPELY_FROM_SOURCE[1])
    return commands


def core_advice(missing):
    """A sentence and the commands that install ``missing`` (e.g. ['shapely>=2.0 (found 1.8.5)'])."""
    names = [item.split(">=")[0].split(" ")[0] for item in missing]
    commands = core_commands(names)
    where = " (from the OSGeo4W Shell)" if os.name == "nt" else ""
    return ("Overlap relevance needs these Python packages in QGIS's Python: " + ", ".join(missing)
            + f". Install them{where} with:\n    " + "\n    ".join(commands)
            + "\nthen restart QGIS.")


def mixed_geos_advice(state):
    """Why a shapely wheel loaded by QGIS itself cannot be used, and how to replace it."""
    return (f"QGIS loaded shapely {state['shapely']}, a wheel with its own GEOS {state['shapely_geos']}, into a "
            f"process that uses the system's GEOS {state['process_geos']}: its calls would be split between the "
            "two, and those only the newer GEOS has would run on the other's objects. Use a shapely that runs on "
            "the system's GEOS: the distribution's where it is 2.0 or newer (python3-shapely on Debian 13 and "
            "Ubuntu 24.04), or build one:\n    " + "\n    ".join(SHAPELY_FROM_SOURCE)
            + "\nthen restart QGIS.")


def training_commands(debian=None):
    """Shell commands that make a self-contained Python with what training needs; its Python is last."""
    debian = is_debian_like() if debian is None else debian
    requirements = _arguments(req for _, req in TRAINING_REQUIREMENTS)
    python = f"{TRAINING_VENV}/bin/python"
    commands = ["sudo apt-get install -y python3-venv"] if debian and os.name != "nt" else []
    commands += [f"python3 -m venv {TRAINING_VENV}", f"{python} -m pip install {requirements}"]
    return commands, python


def training_advice(interpreter):
    """How to give training a Python that has TensorFlow, and how to point the plugin at it."""
    commands, python = training_commands()
    requirements = _arguments(req for _, req in TRAINING_REQUIREMENTS)
    return (
        f"If {interpreter} is a virtual environment, install them there:\n"
        f"    {interpreter} -m pip install {requirements}\n"
        "Otherwise make a virtual environment for training (pip may not change a Python the system manages):\n    "
        + "\n    ".join(commands) + "\n"
        f"Then point the plugin at {python}: Settings > Options > Processing > Providers > Overlap relevance "
        "> 'Python interpreter for training' (the QGIS setting 'overlap_relevance/python'), or set the "
        "environment variable OVERLAP_RELEVANCE_PYTHON (e.g. for qgis_process). Training runs TensorFlow in that "
        "separate Python; it is never loaded into QGIS."
    )
