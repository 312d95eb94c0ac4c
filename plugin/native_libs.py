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
"""

import ctypes
import os
import sys
from pathlib import Path

#: True once :func:`import_shapely_with_own_geos` imported shapely with RTLD_DEEPBIND.
_DEEP_BOUND = False


def import_shapely_with_own_geos():
    """Import shapely so that it binds its bundled GEOS; True when the flag could be applied.

    Does nothing when shapely is already imported (QGIS >= 3.40 imports it itself), and off Linux.
    Never raises: without numpy or shapely, or with a broken one, the plugin still loads, and the
    algorithms' canExecute says what is missing (False is returned then).
    """
    global _DEEP_BOUND
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
