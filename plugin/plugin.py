"""The plugin object QGIS creates through ``classFactory``."""

from qgis.core import QgsApplication

from .provider import OverlapRelevanceProvider


class OverlapRelevancePlugin:
    """Registers the Processing provider; adds nothing else to the GUI.

    ``initProcessing`` never touches ``iface``: qgis_process calls it without a GUI.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            self.provider = OverlapRelevanceProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
