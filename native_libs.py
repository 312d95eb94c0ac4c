"""Which GEOS shapely runs on inside QGIS.

A QGIS executable (desktop, ``qgis_process``) is linked against the system's GEOS, so the
GEOS symbols are in the process's global scope before Python starts. A shapely wheel brings
its own, newer GEOS, but the dynamic linker resolves shapely's calls against the global
scope first. Two cases, by QGIS version:

* **QGIS < 3.40** does not import shapely. The plugin's entry point imports it first, with
  ``RTLD_DEEPBIND``, so a wheel's extension modules bind to the GEOS they were built with
  (3.11 on Debian 12 was about a third slower at overlays and could not read some WKB).
  QGIS keeps its own; geometries cross between the two only as WKB.
* **QGIS >= 3.40** imports shapely in ``qgis.core`` (for ``QgsGeometry.as_shapely``), so it
  is loaded before any plugin and the flag cannot apply. The plugin uses that shapely. It is
  safe when it runs on the system's GEOS (Debian 13's python3-shapely, or one built from
  source); a wheel would mix the two: every GEOS function the system has runs on the
  system's, the newer ones (``GEOSHasM_r`` and about 17 more) on the wheel's, against the
  other's objects. :func:`shapely_geos_state` tells, and the algorithms refuse that case
  with advice (see :mod:`..algorithms.install_advice`).

A folder of the plugin's own, :func:`private_site` (``$XDG_DATA_HOME/overlap_relevance/pythonX.Y``),
is how a shapely wheel can be used on every QGIS: QGIS never looks there, so from 3.40 on its
``import shapely`` finds nothing, and the plugin's entry point then imports the wheel from there with
``RTLD_DEEPBIND``. The install advice puts shapely there where QGIS's own Python may not get one
built on QGIS's GEOS (a Flatpak ships no GEOS headers).
"""

import ctypes
import os
import sys
from pathlib import Path

#: True once :func:`import_shapely_with_own_geos` imported shapely with RTLD_DEEPBIND.
_DEEP_BOUND = False


def private_site(environ=None):
    """The plugin's own package folder for this Python version, which QGIS never searches itself."""
    environ = os.environ if environ is None else environ
    data_home = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "overlap_relevance", f"python{sys.version_info[0]}.{sys.version_info[1]}")


def _add_private_site():
    """Put :func:`private_site` first on sys.path when it holds shapely and no shapely is imported yet."""
    site = private_site()
    if "shapely" not in sys.modules and os.path.isdir(os.path.join(site, "shapely")) and site not in sys.path:
        sys.path.insert(0, site)


def import_shapely_with_own_geos():
    """Import shapely so that it binds its bundled GEOS; True when the flag could be applied.

    Looks in :func:`private_site` first. Does nothing when shapely is already imported (QGIS >= 3.40
    imports whatever shapely its Python finds), and off Linux.
    Never raises: without numpy or shapely, or with a broken one, the plugin still loads, and the
    algorithms' canExecute says what is missing (False is returned then).
    """
    global _DEEP_BOUND
    _add_private_site()
    if "shapely" in sys.modules or not hasattr(os, "RTLD_DEEPBIND") or not hasattr(sys, "setdlopenflags"):
        return False
    try:
        import numpy  # noqa: F401 (numpy's own extensions load with the usual flags)
    except Exception:  # missing or broken: reported by canExecute
        return False
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import shapely  # noqa: F401
    except Exception:  # missing, or built for another numpy: reported by canExecute
        return False
    finally:
        sys.setdlopenflags(flags)
    _DEEP_BOUND = True
    return True


def process_geos_version():
    """The GEOS version in the process's global symbol scope ('3.11.1-CAPI-1.17.1'), or None.

    Only Linux (ELF) has one scope where a library's symbols can take the place of another's: Windows
    binds each DLL's imports to a named DLL, macOS to a library (two-level namespace); there, None.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).GEOSversion
    except (AttributeError, OSError, TypeError):
        return None
    function.restype = ctypes.c_char_p
    return function().decode("ascii", "replace")


def shapely_geos_state():
    """How the imported shapely's GEOS relates to the process's (imports shapely if needed).

    Returns a dict: ``shapely`` (version), ``shapely_geos`` (the GEOS it was built with),
    ``process_geos`` (the global one, None outside a QGIS executable), ``bundled`` (shapely
    brings its own GEOS), ``deep_bound`` and ``mixed`` (calls would split between the two).
    """
    import shapely

    bundled = (Path(shapely.__file__).resolve().parent.parent / "shapely.libs").is_dir()
    process = process_geos_version()
    own = shapely.geos_version_string
    mixed = bool(process) and bundled and not _DEEP_BOUND and process.split("-")[0] != own.split("-")[0]
    return {"shapely": shapely.__version__, "shapely_geos": own, "process_geos": process,
            "bundled": bundled, "deep_bound": _DEEP_BOUND, "mixed": mixed}
