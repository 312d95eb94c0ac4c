"""How to install what is missing, in the words of the platform QGIS runs on (no QGIS here).

Two audiences:

* QGIS's own Python lacks a core package (numpy, shapely 2, pyproj): :func:`core_steps`, shown by
  every algorithm's ``canExecute`` (rendered as HTML by QGIS's dialog: :func:`render_html`) and
  ``checkParameterValues`` (plain text in ``qgis_process``: :func:`render_text`). What works depends on
  where QGIS came from (:func:`detect_platform`):

  ============ ================================================================================
  osgeo4w      OSGeo4W network installer: its setup adds python3-shapely (never upgrading others)
  windows      standalone installer: pip in the OSGeo4W Shell that comes with it
  macos        the Python inside the QGIS application, pip ``--user``
  flatpak      ``flatpak run --command=pip3 org.qgis.qgis install --user`` (the Flatpak's own pip)
  conda        ``conda install`` from conda-forge, numpy and pyproj pinned to what is installed
  debian       Debian, Ubuntu and derivatives: apt where the distribution's version suits, else pip
               ``--user`` (built on the system's GEOS where QGIS imports shapely itself, 3.40+)
  linux        other distributions: their package manager (dnf, pacman) or pip ``--user``
  ============ ================================================================================

  No command changes numpy or pyproj in QGIS's Python: pip runs with ``--no-deps``, conda with
  both pinned, OSGeo4W's setup without ``--upgrade-also``. Where QGIS's own numpy or pyproj is too
  old, the advice is to update QGIS (they are part of it), not to replace them.
* training needs TensorFlow in a Python of its own: :func:`training_commands` makes a
  self-contained virtual environment. TensorFlow's numpy (>= 1.26, 2.x on Python 3.13)
  then never meets the numpy that QGIS's GDAL was built with.

``make test-compat`` runs every command these functions print for Debian in a fresh root of each
Debian release it covers (tools/compat/advice_check.py).
"""

import html
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass

#: The core's packages: (import name, pip requirement, Debian package).
CORE_PACKAGES = (("numpy", "numpy>=1.21", "python3-numpy"),
                 ("shapely", "shapely>=2.0", "python3-shapely"),
                 ("pyproj", "pyproj>=3.3", "python3-pyproj"))
#: What pip installs for each core package (shapely 3 may change its API).
PIP_REQUIREMENTS = {"numpy": "numpy>=1.21", "shapely": "shapely>=2.0,<3", "pyproj": "pyproj>=3.3"}
#: Packages that are part of QGIS's Python (GDAL is built on numpy, QGIS's Python on pyproj's PROJ):
#: advice may add them where they are missing, never replace them.
PART_OF_QGIS = ("numpy", "pyproj")
#: What training imports, with the pip requirement that provides each.
TRAINING_REQUIREMENTS = (("tensorflow", "tensorflow-cpu==2.21.*"), ("numpy", "numpy>=1.26"),
                         ("shapely", "shapely>=2.0"), ("pyproj", "pyproj>=3.4"))
#: Where the advised training environment goes (``~`` is the user's home).
TRAINING_VENV = "~/.local/share/overlap_relevance/train-venv"
OSGEO4W_SETUP_URL = "https://download.osgeo.org/osgeo4w/v2/osgeo4w-setup.exe"
OSGEO4W_SITE = "https://download.osgeo.org/osgeo4w/v2"

#: What each platform is called in the advice.
PLATFORM_NAMES = {
    "osgeo4w": "QGIS from the OSGeo4W network installer",
    "windows": "QGIS from the standalone Windows installer",
    "macos": "QGIS for macOS",
    "flatpak": "QGIS from Flathub (Flatpak)",
    "conda": "QGIS in a conda environment",
    "debian": "QGIS from Debian or Ubuntu packages",
    "linux": "QGIS on Linux",
}
#: Linux distributions whose own shapely is 2.x and built on their GEOS: os-release ID -> install command.
DISTRIBUTION_INSTALL = {
    "fedora": "sudo dnf install -y", "rhel": "sudo dnf install -y", "centos": "sudo dnf install -y",
    "rocky": "sudo dnf install -y", "almalinux": "sudo dnf install -y",
    "arch": "sudo pacman -S --needed", "manjaro": "sudo pacman -S --needed", "endeavouros": "sudo pacman -S --needed",
}
DISTRIBUTION_PREFIX = {"arch": "python-", "manjaro": "python-", "endeavouros": "python-"}


@dataclass(frozen=True)
class Platform:
    """Where QGIS runs, as its Python sees it: ``kind`` is a key of :data:`PLATFORM_NAMES`.

    python: QGIS's Python interpreter as a command; root: the OSGeo4W root or conda prefix;
    distro: the os-release IDs on Linux (most specific first); app_id: the Flatpak application;
    private_site: the plugin's own package folder (see :func:`..native_libs.private_site`).
    """

    kind: str
    python: str = "python3"
    root: str = ""
    distro: tuple = ()
    app_id: str = ""
    private_site: str = ""

    @property
    def name(self):
        return PLATFORM_NAMES[self.kind]

    @property
    def windows(self):
        return self.kind in ("osgeo4w", "windows") or (self.kind == "conda" and self.python.endswith(".exe"))


def os_release_ids(os_release="/etc/os-release"):
    """ID then ID_LIKE of /etc/os-release ('ubuntu', 'debian'); empty where there is none."""
    try:
        with open(os_release, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return ()
    return tuple(" ".join(re.findall(r'^(?:ID|ID_LIKE)="?([^"\n]*)"?$', text, flags=re.MULTILINE)).split())


def is_debian_like(os_release="/etc/os-release"):
    """True on Debian and its derivatives (Ubuntu, Mint, ...), where QGIS's Python is the system's."""
    ids = os_release_ids(os_release)
    return "debian" in ids or "ubuntu" in ids


def _python_in(prefix, windows):
    """The interpreter of the Python installed at ``prefix`` (QGIS's ``sys.executable`` is QGIS itself)."""
    if windows:
        return os.path.join(prefix, "python.exe")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (f"python{version}", "python3"):
        path = os.path.join(prefix, "bin", name)
        if os.path.exists(path):
            return path
    return "python3"


def _private_site(environ):
    try:
        from ..native_libs import private_site
    except ImportError:  # this file loaded on its own (tools/compat/advice_check.py): Debian needs none
        return ""
    return private_site(environ)


def detect_platform(environ=None, system=None, prefix=None, os_release="/etc/os-release", exists=os.path.exists):
    """Where this Python's QGIS comes from, from the markers each platform leaves (see :data:`PLATFORM_NAMES`).

    conda: a ``conda-meta`` folder in the prefix; Windows: ``OSGEO4W_ROOT``, set by both installers'
    launchers, with OSGeo4W's package database (``etc/setup/installed.db``) only where its setup
    installed QGIS; Flatpak: ``FLATPAK_ID`` or ``/.flatpak-info``; Debian and derivatives: os-release.
    """
    environ = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    prefix = sys.prefix if prefix is None else prefix
    windows = system.startswith("win")
    if exists(os.path.join(prefix, "conda-meta")):
        return Platform("conda", python=_python_in(prefix, windows), root=prefix)
    if windows:
        root = environ.get("OSGEO4W_ROOT", "")
        kind = "osgeo4w" if root and exists(os.path.join(root, "etc", "setup", "installed.db")) else "windows"
        return Platform(kind, python="python", root=root)
    if system == "darwin":
        return Platform("macos", python=_python_in(prefix, False), private_site=_private_site(environ))
    if environ.get("FLATPAK_ID") or exists("/.flatpak-info"):
        return Platform("flatpak", python="python3", app_id=environ.get("FLATPAK_ID") or "org.qgis.qgis",
                        private_site=_private_site(environ))
    ids = os_release_ids(os_release)
    kind = "debian" if ("debian" in ids or "ubuntu" in ids) else "linux"
    return Platform(kind, python="python3", distro=ids, private_site=_private_site(environ))


def minimum_version(requirement):
    """'2.0' for 'shapely>=2.0'; '0' when the requirement sets no minimum."""
    return requirement.split(">=", 1)[1].split(",")[0] if ">=" in requirement else "0"


def _arguments(requirements, windows=False):
    """Requirements quoted for the platform's shell (cmd.exe knows only double quotes)."""
    if windows:
        return " ".join(f'"{requirement}"' for requirement in requirements)
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


def installed_version(name):
    """The version of ``name`` this Python has (without importing it), or None."""
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:  # not installed, or unreadable metadata
        return None


@dataclass
class Step:
    """One thing to do: a sentence saying where, and the commands to run there (may be none)."""

    text: str
    commands: tuple = ()


def _pip(platform, names, *flags):
    """pip into QGIS's Python, never touching what is installed besides (``--no-deps``)."""
    requirements = _arguments((PIP_REQUIREMENTS[name] for name in names), platform.windows)
    return " ".join((f"{platform.python} -m pip install", *flags, "--no-deps", requirements))


def _debian_steps(names, candidate, qgis_loads_shapely):
    from_apt, from_pip = [], []
    for name, requirement, package in CORE_PACKAGES:
        if name not in names:
            continue
        version = candidate(package)
        if version is not None and version_tuple(version) >= version_tuple(minimum_version(requirement)):
            from_apt.append(package)
        else:
            from_pip.append(name)
    commands = ["sudo apt-get install -y " + " ".join(from_apt)] if from_apt else []
    shapely_from_source = qgis_loads_shapely and "shapely" in from_pip
    if shapely_from_source:
        from_pip.remove("shapely")
        commands.append(SHAPELY_FROM_SOURCE[0])  # installs pip too
    elif from_pip:
        commands.append("sudo apt-get install -y python3-pip")
    if from_pip:
        # --user leaves the system's packages alone; --break-system-packages is how pip is told that
        # this is intended on a Python the distribution manages (PEP 668).
        commands.append(_pip(Platform("debian"), from_pip, "--user", "--break-system-packages"))
    if shapely_from_source:
        commands.append(SHAPELY_FROM_SOURCE[1])
    how = []
    if from_apt:
        how.append("the distribution's packages where their version suits")
    if from_pip:
        how.append("pip for your user only where it is too old")
    if shapely_from_source:
        how.append("shapely built on the system's GEOS, which QGIS uses too, since the distribution's is older "
                   "than 2.0 (about 20 s)")
    where = ("QGIS from Debian or Ubuntu packages runs on the system's Python (/usr/bin/python3). In a terminal, "
             + "; ".join(how) + ":")
    return [Step(where, tuple(commands))]


def _linux_steps(platform, names, qgis_loads_shapely):
    ids = [i for i in platform.distro if i in DISTRIBUTION_INSTALL]
    steps = []
    if ids:
        prefix = DISTRIBUTION_PREFIX.get(ids[0], "python3-")
        steps.append(Step("Your distribution's packages are built on its own GEOS, as QGIS is. In a terminal:",
                          (DISTRIBUTION_INSTALL[ids[0]] + " " + " ".join(prefix + name for name in names),)))
    pip = "Otherwise, pip" if ids else "Pip"
    if qgis_loads_shapely and "shapely" in names:
        steps.append(Step(f"{pip}, into the plugin's own folder, which QGIS does not search: QGIS imports "
                          "shapely itself, and a wheel's GEOS found by QGIS would mix with QGIS's; from there the "
                          "plugin loads it on its own GEOS. In a terminal:",
                          (_pip(platform, names, "--target", shlex.quote(platform.private_site)),)))
    else:
        steps.append(Step(f"{pip} for your user only, in a terminal:", (_pip(platform, names, "--user"),)))
    return steps


def core_steps(missing, platform=None, candidate=debian_candidate, qgis_loads_shapely=None):
    """What gives QGIS's Python the core packages named in ``missing`` (import names): a list of :class:`Step`.

    ``missing`` may be a dict {name: found version or None}: a package of :data:`PART_OF_QGIS` that is
    present but too old is never replaced; the step says to update QGIS instead.
    """
    found = dict(missing) if isinstance(missing, dict) else dict.fromkeys(missing)
    platform = detect_platform() if platform is None else platform
    qgis_loads_shapely = qgis_imports_shapely() if qgis_loads_shapely is None else qgis_loads_shapely
    kept = [name for name in PART_OF_QGIS if found.get(name)]
    names = [name for name, _, _ in CORE_PACKAGES if name in found and name not in kept]
    steps = []
    if kept:
        steps.append(Step(f"{' and '.join(kept)} come with QGIS and are left as they are: update QGIS to a "
                          "version whose " + " and ".join(kept) + " are recent enough."))
    if not names:
        return steps
    kind = platform.kind
    if kind == "debian":
        return steps + _debian_steps(names, candidate, qgis_loads_shapely)
    if kind == "linux":
        return steps + _linux_steps(platform, names, qgis_loads_shapely)
    if kind == "osgeo4w":
        root = platform.root or r"C:\OSGeo4W"
        packages = ",".join("python3-" + name for name in names)
        steps.append(Step(
            f"QGIS came from the OSGeo4W installer ({root}). Run it again ({OSGEO4W_SETUP_URL}): Advanced "
            f"Install, then select {', '.join('python3-' + n for n in names)} under Libs. Or, in a Command Prompt "
            "run as administrator, in the folder where osgeo4w-setup.exe was saved (installed packages are not "
            "upgraded):",
            (f'osgeo4w-setup.exe --advanced --quiet-mode --autoaccept --only-site --site {OSGEO4W_SITE} '
             f'--root "{root}" --packages {packages}',)))
    elif kind == "windows":
        steps.append(Step("QGIS came from the standalone installer, whose Python is reached through the OSGeo4W "
                          "Shell in its Start menu folder. Open the OSGeo4W Shell as administrator (right-click, "
                          "Run as administrator) and run:", (_pip(platform, names),)))
    elif kind == "macos":
        steps.append(Step("In Terminal, with the Python inside the QGIS application, into the plugin's own folder "
                          "(which the plugin searches before QGIS's own packages, so an older shapely that came with "
                          "QGIS stays as it is):",
                          (f"{shlex.quote(platform.python)} -m pip install --no-deps --target "
                           f"{shlex.quote(platform.private_site)} "
                           + _arguments(PIP_REQUIREMENTS[name] for name in names),)))
    elif kind == "flatpak":
        steps.append(Step(_FLATPAK_TEXT, (_flatpak_install(platform, names),)))
    elif kind == "conda":
        pins = [f"{name}=={installed_version(name)}" for name in PART_OF_QGIS if installed_version(name)]
        specs = " ".join(f'"{spec}"' for spec in [*(PIP_REQUIREMENTS[name] for name in names), *pins])
        steps.append(Step(f"QGIS runs in the conda environment {platform.root}. In a terminal (Anaconda Prompt "
                          "on Windows), from conda-forge, with numpy and pyproj held to the installed versions:",
                          (f'conda install --yes --prefix "{platform.root}" -c conda-forge {specs}',)))
    return steps


#: Flathub's QGIS page gives ``flatpak run --devel --command=pip3 org.qgis.qgis install ...`` for extra modules.
_FLATPAK_TEXT = ("QGIS runs in a Flatpak, whose Python is its own. In a terminal of your system (not in QGIS), with "
                 "the Flatpak's pip (--devel: from its SDK, as Flathub's QGIS page advises), into the plugin's own "
                 "folder: QGIS does not search it, so the plugin loads shapely on shapely's own GEOS, never mixed "
                 "with the Flatpak's (which ships no GEOS headers to build one on):")


def _flatpak_pip(platform, arguments):
    """The Flatpak's own pip, run from the host."""
    return f"flatpak run --devel --command=pip3 {platform.app_id or 'org.qgis.qgis'} {arguments}"


def _flatpak_install(platform, names):
    requirements = _arguments(PIP_REQUIREMENTS[name] for name in names)
    return _flatpak_pip(platform, f"install --no-deps --target {shlex.quote(platform.private_site)} {requirements}")


def core_commands(missing, debian=None, candidate=debian_candidate, qgis_loads_shapely=None, platform=None):
    """The shell commands of :func:`core_steps`, in order (``debian``: force Debian (True) or other Linux)."""
    if platform is None and debian is not None:
        platform = Platform("debian") if debian else Platform("linux", distro=())
    return [command for step in core_steps(missing, platform, candidate, qgis_loads_shapely)
            for command in step.commands]


def render_html(paragraphs):
    """Paragraphs (str) and steps (:class:`Step`) as HTML: text escaped, commands whole in <pre>."""
    parts = []
    for item in paragraphs:
        if isinstance(item, Step):
            parts.append(f"<p>{html.escape(item.text, quote=False)}</p>")
            if item.commands:
                # pre-wrap: a long command wraps in the dialog rather than hiding its end; copied, it is one line.
                parts.append('<pre style="white-space: pre-wrap">' + html.escape("\n".join(item.commands), quote=False)
                             + "</pre>")
        else:
            parts.append(f"<p>{html.escape(item, quote=False)}</p>")
    return "".join(parts)


def render_text(paragraphs):
    """The same as plain text, commands indented on lines of their own (a terminal, a log)."""
    lines = []
    for item in paragraphs:
        if isinstance(item, Step):
            lines.append(item.text)
            lines.extend("    " + command for command in item.commands)
        else:
            lines.append(item)
    return "\n".join(lines)


def core_advice(missing, platform=None, as_html=False):
    """What is missing and how to install it on this platform; ``missing``: {name: found or None}."""
    platform = detect_platform() if platform is None else platform
    found = dict(missing) if isinstance(missing, dict) else dict.fromkeys(missing)
    wanted = ", ".join(f"{PIP_REQUIREMENTS[name].split(',')[0]} (found {found[name]})" if found[name]
                       else f"{PIP_REQUIREMENTS[name].split(',')[0]} (not installed)"
                       for name in PIP_REQUIREMENTS if name in found)
    paragraphs = [f"Overlap relevance needs these Python packages in QGIS's Python: {wanted}.",
                  *core_steps(found, platform),
                  "Then restart QGIS. The algorithms are listed meanwhile; they run once this is done."]
    return render_html(paragraphs) if as_html else render_text(paragraphs)


def mixed_geos_advice(state, platform=None, as_html=False):
    """Why a shapely wheel loaded by QGIS itself cannot be used, and how to replace it."""
    platform = detect_platform() if platform is None else platform
    why = (f"QGIS loaded shapely {state['shapely']}, a wheel with its own GEOS {state['shapely_geos']}, into a "
           f"process that uses the system's GEOS {state['process_geos']}: its calls would be split between the "
           "two, and those only the newer GEOS has would run on the other's objects.")
    if platform.kind == "debian":
        steps = [Step("Use a shapely that runs on the system's GEOS: the distribution's where it is 2.0 or newer "
                      "(python3-shapely on Debian 13 and Ubuntu 24.04), or build one:", SHAPELY_FROM_SOURCE)]
    elif platform.kind == "flatpak":
        steps = [Step("Remove that wheel, so that QGIS finds no shapely, and put one in the plugin's own folder "
                      "instead; " + _FLATPAK_TEXT[0].lower() + _FLATPAK_TEXT[1:],
                      (_flatpak_pip(platform, "uninstall -y shapely"), _flatpak_install(platform, ["shapely"])))]
    else:
        steps = [Step("Remove that wheel, so that QGIS finds no shapely (in a terminal):",
                      (f"{platform.python} -m pip uninstall -y shapely",)),
                 *_linux_steps(platform, ["shapely"], True)]
    paragraphs = [why, *steps, "Then restart QGIS."]
    return render_html(paragraphs) if as_html else render_text(paragraphs)


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
