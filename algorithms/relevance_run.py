"""What the three scoring algorithms share: read both layers, load the model, score chunks."""

import time
from dataclasses import dataclass, field

import numpy as np
from qgis.core import QgsProcessingException

from ..model.frame import LONG_EDGE_M
from ..model.network import ModelFileError
from ..model.parallel import ordered_map
from ..model.preparation import PreparedLayer, prepare_layer
from ..model.scoring import OverlapModel, score_candidate_pairs
from .layers import LayerPair, read_layer_pair
from .parameters import (
    POSITIONAL_UNCERTAINTY_FIELD,
    THRESHOLD,
    finite_double,
    load_model_parameter,
    positional_uncertainty,
)


class Cancelled(Exception):
    """The user cancelled; the algorithm returns no result."""


@dataclass
class RelevanceRun:
    pair: LayerPair
    input: PreparedLayer  # as read (full detail) and as the network sees it (repaired once, simplified where large)
    reference: PreparedLayer
    model: OverlapModel
    sigma: np.ndarray  # (n_input,) metres
    threshold: float
    seconds: dict = field(default_factory=dict)  # wall time per stage, for the log
    n_pairs: int = 0

    def report_timings(self, feedback, pairs_stage="scoring", **more_seconds):
        """One log line with the wall time of every stage, and the pairs per second of ``pairs_stage``, the
        stage that handled the pairs (no rate when that stage was not timed: never a made-up 0 pairs/s)."""
        self.seconds.update(more_seconds)
        stages = ", ".join(f"{name} {value:.2f} s" for name, value in self.seconds.items())
        seconds = self.seconds.get(pairs_stage)
        rate = f", {self.n_pairs / seconds:,.0f} pairs/s in {pairs_stage}" if seconds else ""
        feedback.pushInfo(f"Timings: {stages} ({self.n_pairs} pairs{rate}).")

    def scored_chunks(self, feedback, progress_from=20.0, progress_to=90.0, centroid=True):
        """Yield :class:`..model.scoring.ScoredChunk` objects; raises Cancelled. ``centroid``: False where the
        algorithm does not read the overlap's centroid (see :func:`..model.scoring.score_candidate_pairs`).

        The "scoring" time counts this generator's own time (waiting for the worker threads and
        gathering chunks), not what the caller does with a chunk between two of them.
        """
        n_input = max(len(self.pair.input.fids), 1)
        feedback.setProgressText("Scoring candidate pairs")
        spent = 0.0
        resumed = time.perf_counter()
        try:
            for chunk in score_candidate_pairs(self.model, self.input.model, self.reference.model, self.sigma,
                                               self.pair.search_distance, self.threshold,
                                               *self.pair.same_layer_ids(), cancelled=feedback.isCanceled,
                                               centroid=centroid):
                # Pairs come sorted by input feature, so the last input index tells how far we are.
                feedback.setProgress(progress_from + (progress_to - progress_from) * (chunk.index_a[-1] + 1) / n_input)
                if feedback.isCanceled():
                    raise Cancelled
                self.n_pairs += len(chunk.index_a)
                spent += time.perf_counter() - resumed
                yield chunk
                resumed = time.perf_counter()
        except ModelFileError as error:  # a model whose outputs turn out unusable on these pairs
            raise QgsProcessingException(str(error)) from None
        if feedback.isCanceled():
            raise Cancelled
        self.seconds["scoring"] = spent + time.perf_counter() - resumed


def prepare_relevance_run(algorithm, parameters, context, feedback, input_key=True):
    """Load the model, read INPUT and REFERENCE, resolve σ; raises Cancelled."""
    started = time.perf_counter()
    model = load_model_parameter(algorithm, parameters, context)
    sigma_field = algorithm.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
    pair = read_layer_pair(algorithm, parameters, context, feedback, input_key=input_key,
                           input_value_fields=[sigma_field] if sigma_field else [])
    if pair is None:
        raise Cancelled
    sigma = positional_uncertainty(algorithm, parameters, context, pair.input, feedback)
    threshold = 0.5
    if algorithm.parameterDefinition(THRESHOLD) is not None:
        threshold = finite_double(algorithm, parameters, THRESHOLD, context)
    seconds = {"reading": time.perf_counter() - started}
    started = time.perf_counter()
    lonlat_input, lonlat_reference = pair.to_lonlat(feedback)
    seconds["lon/lat"] = time.perf_counter() - started
    feedback.setProgressText("Preparing geometries")
    started = time.perf_counter()
    prepared_input, prepared_reference = ordered_map(prepare_layer, [lonlat_input, lonlat_reference])  # both at once
    seconds["model geometries"] = time.perf_counter() - started
    pair.report_repaired(feedback, [np.flatnonzero(prepared_input.repaired)],
                         [np.flatnonzero(prepared_reference.repaired)])
    _report_long_edges(feedback, lonlat_input, lonlat_reference)
    return RelevanceRun(pair, prepared_input, prepared_reference, model, sigma, threshold, seconds)


def _report_long_edges(feedback, *layers):
    """Warn, with a count per layer, about features whose edges are long enough for the frames to bend them."""
    counts = [int(np.count_nonzero(layer.long_edges & layer.usable)) for layer in layers]
    if any(counts):
        feedback.pushWarning(
            f"{counts[0]} input and {counts[1]} reference feature(s) have edges longer than "
            f"{LONG_EDGE_M / 1000:.0f} km. "
            "Each pair is measured in its own local frame, where an edge is a straight line; frames centred apart "
            "bend a long edge apart (a 50 km edge at mid-latitudes by some 50 m), so their overlaps may be off "
            "by that much. Densify the layers (Processing: Densify by interval) for exact results.")
