"""What every algorithm of the provider shares: group, icon, help and a dependency check."""

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtGui import QIcon

from ..plugin.constants import ICON_PATH
from ..plugin.native_libs import shapely_geos_state
from .install_advice import CORE_PACKAGES, core_advice, minimum_version, mixed_geos_advice, version_tuple


def missing_dependencies():
    """Names (with minimum versions) of the core's Python packages this QGIS lacks."""
    missing = []
    for module_name, requirement, _ in CORE_PACKAGES:
        minimum = minimum_version(requirement)
        try:
            module = __import__(module_name)
        except ImportError:
            missing.append(requirement)
            continue
        if version_tuple(getattr(module, "__version__", "0")) < version_tuple(minimum):
            missing.append(f"{requirement} (found {module.__version__})")
    return missing


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
            return False, core_advice(missing)
        state = shapely_geos_state()
        if state["mixed"]:
            return False, mixed_geos_advice(state)
        return True, ""
