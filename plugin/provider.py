"""The Processing provider ``overlaprelevance``."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .. import __version__

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")


class OverlapRelevanceProvider(QgsProcessingProvider):
    def id(self):
        return "overlaprelevance"

    def name(self):
        return "Overlap relevance"

    def longName(self):  # noqa: N802 (QGIS's name)
        return f"Overlap relevance {__version__}"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON_PATH

    def versionInfo(self):  # noqa: N802 (QGIS's name)
        return __version__

    def load(self):
        """Add the provider's Processing option (the training interpreter), then the algorithms."""
        from .settings import add_processing_options

        add_processing_options(self)
        self.refreshAlgorithms()
        return True

    def unload(self):
        from .settings import remove_processing_options

        remove_processing_options()

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        from ..algorithms import ALGORITHMS

        for algorithm_class in ALGORITHMS:
            self.addAlgorithm(algorithm_class())
