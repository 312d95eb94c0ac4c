"""Cancelling at random points (seeded) of every algorithm never registers a partial output (issue 8).

test_cancel.py cancels at fixed progress points; here each algorithm is cancelled at random
progress percentages and at a random one of the cancellation checks a full run makes (so
also between progress updates: while reading, scoring, writing).
"""

import numpy as np
import pytest
import shapely
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject

from tools.corpus import ALGORITHMS
from tools.layers import memory_layer

SEED = 20260808
ORIGIN = (390_000.0, 5_820_000.0)
N_FEATURES = 3000


class CancellingFeedback(QgsProcessingFeedback):
    """Cancels once progress reaches ``percent``, or at the ``at_check``-th cancellation check; counts checks."""

    def __init__(self, percent=None, at_check=None):
        super().__init__()
        self.percent, self.at_check = percent, at_check
        self.checks = 0
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        if self.percent is not None and value >= self.percent:
            self.cancel()

    def isCanceled(self):  # noqa: N802 (QGIS's name)
        self.checks += 1
        if self.at_check is not None and self.checks >= self.at_check:
            self.cancel()
        return super().isCanceled()

    def was_cancelled(self):
        """Whether the run was cancelled, without counting as a check."""
        return QgsProcessingFeedback.isCanceled(self)


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1500, (N_FEATURES, 2)) + ORIGIN
    # Densified squares: more vertices, so the pairs fall into several chunks.
    a = shapely.segmentize(shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + 12, xy[:, 1] + 9), 1.0)
    b = shapely.segmentize(shapely.box(xy[:, 0] + 1, xy[:, 1], xy[:, 0] + 13, xy[:, 1] + 9), 1.0)
    return memory_layer(list(a), "EPSG:25833", name="a"), memory_layer(list(b), "EPSG:25833", name="b")


def run(algorithm_id, layers, feedback, output):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"overlaprelevance:{algorithm_id}")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    more = {"OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"} if algorithm_id == "matchfeatures" else {}
    results, _ = algorithm.run({"INPUT": layers[0], "REFERENCE": layers[1], "OUTPUT": output, **more}, context,
                               feedback)
    return results or {}, context


def assert_nothing_registered(results, context):
    assert "OUTPUT" not in results, results
    assert not context.temporaryLayerStore().mapLayers()
    assert not context.layersToLoadOnCompletion()


@pytest.mark.parametrize("algorithm_id", ALGORITHMS)
def test_cancel_at_random_points_registers_no_output(provider, layers, algorithm_id, tmp_path):
    rng = np.random.default_rng([SEED, ALGORITHMS.index(algorithm_id)])
    counting = CancellingFeedback()
    results, context = run(algorithm_id, layers, counting, "memory:")
    n_checks = counting.checks
    assert "OUTPUT" in results and not counting.was_cancelled()

    for percent in rng.uniform(1.0, 99.0, 3):
        feedback = CancellingFeedback(percent=percent)
        results, context = run(algorithm_id, layers, feedback, "memory:")
        if feedback.was_cancelled():  # progress reached the point before the end
            assert_nothing_registered(results, context)
    for i, at_check in enumerate(rng.integers(1, n_checks + 1, 3)):
        feedback = CancellingFeedback(at_check=int(at_check))
        output = str(tmp_path / f"{algorithm_id}_{i}.gpkg")  # a file sink, too
        results, context = run(algorithm_id, layers, feedback, output)
        assert feedback.was_cancelled()
        assert_nothing_registered(results, context)
