"""overlaprelevance:scorerelevance — relevance of every input feature's best reference match."""

import time

import numpy as np
from qgis.core import (
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterString,
)

from ..model.scoring import BestMatches
from ..plugin.compat import FAST_INSERT, NO_GEOMETRY_CHECK, SKIP_GEOMETRY_CHECKS, SOURCE_POLYGON, field_type
from .base import OverlapRelevanceAlgorithm
from .parameters import INPUT, LAYER_PAIR_HELP, MODEL_HELP, add_layer_pair_parameters, add_model_parameters
from .relevance_run import Cancelled, prepare_relevance_run

FIELD_PREFIX = "FIELD_PREFIX"
OUTPUT = "OUTPUT"
MAX_FIELD_NAME = 10  # shapefile (dBase) limit
_WRITE_BATCH = 1000  # features handed to the sink at once, between cancel checks

# (suffix, type, meaning)
RELEVANCE_FIELDS = (
    ("match", None, "key of the most relevant reference feature (highest expected IoU); NULL without candidates"),
    ("score", "Double", "expected IoU with that match"),
    ("p", "Double", "probability that the IoU with that match is at least the threshold"),
    ("cov", "Double", "expected share of the input feature covered by the match"),
    ("covref", "Double", "expected share of the match covered by the input feature"),
    ("sd", "Double", "standard deviation of the IoU with that match"),
    ("n", "Int", "number of candidate reference features"),
)


class ScoreRelevanceAlgorithm(OverlapRelevanceAlgorithm):
    def name(self):
        return "scorerelevance"

    def displayName(self):  # noqa: N802 (QGIS's name)
        return "Score overlap relevance"

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        fields = "".join(f"<li><b>rel_{suffix}</b>: {meaning}</li>" for suffix, _, meaning in RELEVANCE_FIELDS)
        return (
            "<p>For every feature of the input layer, finds the reference features whose overlap with it is "
            "relevant, predicts the distribution of each overlap with the bundled model, and writes the best "
            "match and its relevance back as attributes. The output holds every input feature with all its "
            "fields and its geometry unchanged, plus the relevance fields.</p>"
            "<p>IoU (intersection over union) is |A∩B| / |A∪B|: 1 for identical features, 0 for disjoint ones. "
            "Scores are expectations over the predicted distribution, so under positional uncertainty a pair "
            "that would overlap perfectly scores less than 1, and <b>rel_p</b> says how likely the overlap is "
            "to be at least the threshold.</p>"
            + LAYER_PAIR_HELP + MODEL_HELP +
            "<h3>Output fields</h3><p>Named with the <b>field prefix</b> (default rel_; names stay within 10 "
            "characters, so the prefix can have at most 4):</p><ul>" + fields + "</ul>"
            "<p>Features without geometry get NULL in every relevance field.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self, with_input_key=False)
        add_model_parameters(self)
        self.addParameter(QgsProcessingParameterString(FIELD_PREFIX, "Field prefix", "rel_"))
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Relevance", SOURCE_POLYGON))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        prefix = self.parameterAsString(parameters, FIELD_PREFIX, context)
        input_source = self.parameterAsSource(parameters, INPUT, context)
        if input_source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, INPUT))
        try:
            run = prepare_relevance_run(self, parameters, context, feedback, input_key=False)
        except Cancelled:
            return {}
        fields = self._output_fields(input_source.fields(), prefix, run.pair.reference_key_field("match"))
        sink, dest_id = self.parameterAsSink(parameters, OUTPUT, context, fields, input_source.wkbType(),
                                             input_source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT))
        n_input = len(run.pair.input.fids)
        best = BestMatches(n_input)
        # Features are written as soon as their best match is final, while later chunks are scored on the
        # worker threads: the writing (QGIS, mostly on this thread) and the scoring then share the cores.
        writer = _RelevanceWriter(self, parameters, sink, fields, input_source, run, best)
        try:
            for chunk in run.scored_chunks(feedback):
                best.add(chunk)
                writer.write_before(chunk.complete_before)
            writing_while_scoring = writer.seconds
            feedback.setProgressText("Writing the output")
            writer.write_before(n_input, feedback, progress_from=90.0)
            started = time.perf_counter()
            writer.sink = None
            del sink  # the last reference: the file is closed (a GeoPackage builds its spatial index) here
            closing = time.perf_counter() - started
        except Cancelled:
            return self.discard_output(context, dest_id)
        run.report_timings(feedback, **{"writing while scoring": writing_while_scoring,
                                        "writing after scoring": writer.seconds - writing_while_scoring,
                                        "closing the output": closing})
        matched = int(np.count_nonzero(best.index_b >= 0))
        feedback.pushInfo(f"Scored {run.n_pairs} candidate pairs; {matched} of {n_input} input features "
                          "have a candidate.")
        feedback.setProgress(100)
        return {OUTPUT: dest_id}

    @staticmethod
    def _output_fields(input_fields, prefix, match_field):
        fields = QgsFields(input_fields)
        existing = {name.lower() for name in input_fields.names()}
        for suffix, kind, _ in RELEVANCE_FIELDS:
            name = prefix + suffix
            if len(name) > MAX_FIELD_NAME:
                raise QgsProcessingException(
                    f"The field prefix '{prefix}' makes the field name '{name}' longer than {MAX_FIELD_NAME} "
                    f"characters (the shapefile limit); use a prefix of at most {MAX_FIELD_NAME - 6} characters.")
            if name.lower() in existing:
                raise QgsProcessingException(
                    f"The input layer already has a field named '{name}'. Choose another field prefix "
                    "(parameter FIELD_PREFIX), or rename or remove that field.")
            field = QgsField(match_field) if kind is None else QgsField(name, field_type(kind))
            field.setName(name)
            fields.append(field)
        return fields


class _RelevanceWriter:
    """Writes every input feature, as read again from the source, with its relevance fields.

    A feature is written once its position is below the limit given to :meth:`write_before`,
    that is once its best match is final; reading stops at the first feature not yet final
    and resumes there on the next call. Features come back in the order they were first
    read, so this streams; a provider that changes the order only delays the writing.
    """

    def __init__(self, algorithm, parameters, sink, fields, input_source, run, best):
        self.algorithm, self.parameters, self.sink, self.fields = algorithm, parameters, sink, fields
        self.best = best
        self.keys = run.pair.reference.keys
        self.unusable = ~run.lonlat_input.usable
        self.position_of = _Positions(run.pair.input.fids)
        self.n_input = len(run.pair.input.fids)
        request = QgsFeatureRequest()
        request.setInvalidGeometryCheck(NO_GEOMETRY_CHECK)  # the input is written back exactly as it is
        self.features = iter(input_source.getFeatures(request, SKIP_GEOMETRY_CHECKS))
        self.waiting = None  # (feature, position): read, not final yet
        self.read = 0
        self.seconds = 0.0
        self.no_relevance = [None] * len(RELEVANCE_FIELDS)

    def write_before(self, limit, feedback=None, progress_from=None):
        """Write the features whose position is below ``limit``, up to the first one that is not.

        With ``feedback``, checks for a cancel (raising Cancelled) and reports progress between batches.
        """
        started = time.perf_counter()
        batch = []
        while True:
            if self.waiting is None:
                feature = next(self.features, None)
                if feature is None:
                    break
                position = self.position_of(feature.id(), self.read)
                self.read += 1
            else:
                (feature, position), self.waiting = self.waiting, None
            if position is not None and position >= limit:
                self.waiting = (feature, position)
                break
            # The feature read keeps its geometry (implicitly shared) and gains the relevance fields.
            attributes = feature.attributes() + self._row(position)
            feature.setFields(self.fields, False)
            feature.setAttributes(attributes)
            batch.append(feature)
            if len(batch) == _WRITE_BATCH:
                self._flush(batch)
                batch = []
                if feedback is not None:
                    if feedback.isCanceled():
                        raise Cancelled
                    feedback.setProgress(progress_from + (100.0 - progress_from) * self.read / max(self.n_input, 1))
        self._flush(batch)
        self.seconds += time.perf_counter() - started

    def _row(self, position):
        """The relevance attribute values of the input feature read at ``position``.

        Position None (a feature the provider did not return when reading) gets NULL everywhere, as do
        features without a usable geometry.
        """
        if position is None or self.unusable[position]:
            return self.no_relevance
        b = self.best.index_b[position]  # without a candidate: no match, zero values and count
        return [self.keys[b] if b >= 0 else None, *self.best.values[position].tolist(), int(self.best.count[position])]

    def _flush(self, batch):
        if batch and not self.sink.addFeatures(batch, FAST_INSERT):
            raise QgsProcessingException(self.algorithm.writeFeatureError(self.sink, self.parameters, OUTPUT))


class _Positions:
    """Feature id -> position in the read order; features come back in that order, so a dict is built only
    if one does not (and a feature id never read gives None)."""

    def __init__(self, fids):
        self.fids = fids
        self.by_id = None

    def __call__(self, fid, expected):
        if expected < len(self.fids) and self.fids[expected] == fid:
            return expected
        if self.by_id is None:
            self.by_id = {int(f): i for i, f in enumerate(self.fids)}
        return self.by_id.get(fid)
