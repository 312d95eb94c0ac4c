"""The Processing provider ``overlaprelevance``."""

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..constants import ICON_PATH, PROVIDER_ID, VERSION


class OverlapRelevanceProvider(QgsProcessingProvider):
    def id(self):
        return PROVIDER_ID

    def name(self):
        return "Overlap relevance"

    def longName(self):  # noqa: N802 (QGIS's name)
        return f"Overlap relevance {VERSION}"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON_PATH

    def versionInfo(self):  # noqa: N802 (QGIS's name)
        return VERSION

    def load(self):
        """Add the provider's Processing option (the training interpreter), then the algorithms."""
        from ..algorithms.settings import add_processing_options
        from ..algorithms.styles import create_post_processors

        add_processing_options(self)
        create_post_processors()  # on the main thread; each output then gets its own (algorithms/styles.py)
        self.refreshAlgorithms()
        return True

    def unload(self):
        from ..algorithms.base import release_held_frames
        from ..algorithms.settings import remove_processing_options

        remove_processing_options()
        release_held_frames()  # before QGIS exits: layers that a failed run's frames hold go now

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        from ..algorithms import ALGORITHMS

        for algorithm_class in ALGORITHMS:
            self.addAlgorithm(algorithm_class())
