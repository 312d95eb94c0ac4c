"""A Processing feedback that keeps what an algorithm tells the user, for tests to read."""

from qgis.core import QgsProcessingFeedback


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every message: ``infos`` and ``warnings`` apart, and both in order in ``messages``."""

    def __init__(self):
        super().__init__()
        self.messages, self.infos, self.warnings = [], [], []

    def pushInfo(self, info):  # noqa: N802 (QGIS's name)
        self.messages.append(info)
        self.infos.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802 (QGIS's name)
        self.messages.append(warning)
        self.warnings.append(warning)
        super().pushWarning(warning)
