"""overlap_relevance: score how relevant features of one polygon layer are to another.

QGIS loads this folder as a plugin (under whatever folder name it has) and calls
:func:`classFactory`. Outside QGIS, ``pip install .`` exposes the same folder as the
package ``overlap_relevance``; its core lives in :mod:`.model` and never imports qgis.
"""

from .constants import VERSION as __version__  # noqa: F401 (QGIS-free)


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS entry point. Imported lazily so that plain-Python users never import qgis."""
    from .native_libs import import_shapely_with_own_geos

    import_shapely_with_own_geos()
    from .plugin.plugin import OverlapRelevancePlugin

    return OverlapRelevancePlugin(iface)
