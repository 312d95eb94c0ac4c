"""Cancelling any scoring algorithm returns no result, promptly."""

import time

import numpy as np
import pytest
import shapely
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject

from tools.layers import memory_layer

ORIGIN = (390_000.0, 5_820_000.0)


class CancelAfter(QgsProcessingFeedback):
    """Cancels once progress passes ``percent``; remembers when."""

    def __init__(self, percent):
        super().__init__()
        self.percent = percent
        self.cancelled_at = None
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        if value >= self.percent and self.cancelled_at is None:
            self.cancelled_at = time.perf_counter()
            self.cancel()


@pytest.fixture(scope="module")
def big_layers():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 3000, (20_000, 2)) + ORIGIN
    a = [shapely.box(x, y, x + 12, y + 9) for x, y in xy]
    b = [shapely.box(x + 1, y, x + 13, y + 9) for x, y in xy]
    return memory_layer(a, "EPSG:25833", name="a"), memory_layer(b, "EPSG:25833", name="b")


CASES = [("overlaprelevance:scorerelevance", 25), ("overlaprelevance:relevancepairs", 25),
         ("overlaprelevance:overlaplocation", 25), ("overlaprelevance:exactoverlap", 15),
         ("overlaprelevance:scorerelevance", 5)]


def _cancelled_run(big_layers, algorithm_id, percent):
    """Run, cancel at ``percent``; (feedback, seconds from the cancel to the end, seconds in all)."""
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = CancelAfter(percent)
    started = time.perf_counter()
    results, ok = algorithm.run({"INPUT": big_layers[0], "REFERENCE": big_layers[1], "OUTPUT": "memory:"},
                                context, feedback)
    finished = time.perf_counter()
    assert feedback.cancelled_at is not None, "the run ended before it could be cancelled"
    assert "OUTPUT" not in (results or {})
    assert not context.temporaryLayerStore().mapLayers()
    return feedback, finished - feedback.cancelled_at, finished - started


@pytest.mark.parametrize("algorithm_id, percent", CASES)
def test_cancel_gives_no_result(provider, big_layers, algorithm_id, percent):
    _cancelled_run(big_layers, algorithm_id, percent)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm_id, percent", CASES)
def test_cancel_stops_within_a_second(provider, big_layers, algorithm_id, percent):
    """Timed, so in `make test-slow` only: a loaded machine may take longer (issue 28)."""
    _, stopping, total = _cancelled_run(big_layers, algorithm_id, percent)
    assert stopping < 1.0, f"took {stopping:.2f} s to stop"
    assert total < 30
