"""shapely on its own GEOS inside QGIS.

A QGIS executable (desktop, ``qgis_process``) is linked against the system's GEOS, so the
GEOS symbols are in the process's global scope before Python starts. shapely's wheel
brings its own, newer GEOS, but the dynamic linker resolves shapely's calls against the
global scope first: inside QGIS, shapely silently runs on QGIS's GEOS (3.11 on Debian 12:
about a third slower at overlays here, and unable to read or write some WKB). Importing
shapely with ``RTLD_DEEPBIND`` makes its extension modules look in their own
dependencies first, so they bind to the GEOS they were built and tested with; QGIS keeps
its own. The two never share objects: geometries cross between them as WKB.
"""

import os
import sys


def import_shapely_with_own_geos():
    """Import shapely so that it binds its bundled GEOS; True when the flag could be applied.

    Does nothing when shapely is already imported (it stays as it is), and off Linux.
    """
    if "shapely" in sys.modules or not hasattr(os, "RTLD_DEEPBIND") or not hasattr(sys, "setdlopenflags"):
        return False
    import numpy  # noqa: F401 (numpy's own extensions load with the usual flags)

    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import shapely  # noqa: F401
    finally:
        sys.setdlopenflags(flags)
    return True
