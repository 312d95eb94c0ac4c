"""What every algorithm of the provider shares: group, icon, help and a dependency check."""

import os

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtGui import QIcon

from ..plugin.provider import ICON_PATH

REQUIRED_MODULES = (("numpy", "1.21"), ("shapely", "2.0"), ("pyproj", "3.3"))


def missing_dependencies():
    """Names (with minimum versions) of the core's Python packages this QGIS lacks."""
    missing = []
    for module_name, minimum in REQUIRED_MODULES:
        try:
            module = __import__(module_name)
        except ImportError:
            missing.append(f"{module_name}>={minimum}")
            continue
        if _version_tuple(getattr(module, "__version__", "0")) < _version_tuple(minimum):
            missing.append(f"{module_name}>={minimum} (found {module.__version__})")
    return missing


def _version_tuple(text):
    parts = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class OverlapRelevanceAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms; subclasses say only what is particular to them."""

    GROUP_ID = "relevance"
    GROUP = "Relevance"

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802 (QGIS's name)
        return self.GROUP_ID

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON_PATH

    def helpUrl(self):  # noqa: N802 (QGIS's name)
        return "https://github.com/overlap-relevance/overlap_relevance#readme"

    @staticmethod
    def discard_output(context, dest_id):
        """Forget a partly written sink after a cancel, so it is never loaded as a result."""
        layers = dict(context.layersToLoadOnCompletion())
        if layers.pop(dest_id, None) is not None:
            context.setLayersToLoadOnCompletion(layers)
        store = context.temporaryLayerStore()
        if store.mapLayer(dest_id) is not None:
            store.removeMapLayer(dest_id)
        return {}

    def canExecute(self):  # noqa: N802 (QGIS's name)
        missing = missing_dependencies()
        if missing:
            return False, (
                "Overlap relevance needs these Python packages in QGIS's Python: "
                + ", ".join(missing)
                + ". Install them with QGIS's Python, for example: "
                + f"python3 -m pip install --user {' '.join(m.split(' ')[0] for m in missing)}"
                + (" (on Windows, from the OSGeo4W Shell)." if os.name == "nt" else ".")
            )
        return True, ""
