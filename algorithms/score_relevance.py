"""overlaprelevance:scorerelevance — relevance of every input feature's best reference match."""

import time

from qgis.core import (
    QgsFeatureRequest,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterString,
)

from ..model.fields import RELEVANCE_FIELDS, RELEVANCE_PREFIX
from .compat import FAST_INSERT, NO_GEOMETRY_CHECK, SKIP_GEOMETRY_CHECKS, SOURCE_POLYGON
from .base import GROUP_MATCH, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import INPUT, add_layer_pair_parameters, add_model_parameters, declare, is_dbase_destination
from .writing import check_written, flush_sink, new_sink, output_fields

np = lazy_import("numpy")
scoring = lazy_import("..model.scoring", __package__)
relevance_run = lazy_import(".relevance_run", __package__)

FIELD_PREFIX = "FIELD_PREFIX"
OUTPUT = "OUTPUT"
MAX_FIELD_NAME = 10  # the limit of a shapefile's (dBase) field names
_WRITE_BATCH = 1000  # features handed to the sink at once, between cancel checks



class ScoreRelevanceAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_MATCH
    SHORT_DESCRIPTION = "Writes each polygon's best match in another layer and its overlap relevance (IoU) as fields."
    SUMMARY = (
        "For every feature of the input layer, finds the reference features near it, predicts the distribution of "
        "each pair's overlap under positional uncertainty σ, and writes the most relevant reference feature and "
        "how relevant it is back as attributes. The output is the input layer, every feature with its own fields "
        "and geometry unchanged, plus the relevance fields. When QGIS loads it, it is coloured by the score, with "
        "features that have no candidate in a class of their own.")
    TAGS = ("match", "matching", "best match", "conflation", "join", "spatial join", "duplicates", "data quality",
            "compare layers", "change detection", "uncertainty", "score", "attributes")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "scorerelevance"
    DISPLAY_NAME = "Score overlap relevance"

    def output_help(self):
        return [(RELEVANCE_PREFIX + field.name, field.meaning) for field in RELEVANCE_FIELDS] + [
            ("(no candidate)", "match NULL, values 0 and n = 0; features without a usable geometry get NULL "
                               "everywhere. The prefix rel_ is the Field prefix parameter.")]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self, with_input_key=False)
        add_model_parameters(self)
        declare(self, QgsProcessingParameterString(FIELD_PREFIX, "Field prefix", RELEVANCE_PREFIX), advanced=True, help_text=(
            f"The relevance fields are named prefix + {', '.join(f.name for f in RELEVANCE_FIELDS)}. In a shapefile a field "
            f"name has at most {MAX_FIELD_NAME} characters, so the prefix has at most {MAX_FIELD_NAME - 6} there."))
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Relevance", SOURCE_POLYGON))

    def check_more(self, parameters, context):
        """The field prefix against the input's fields and the output's format, before anything is read."""
        prefix = self.parameterAsString(parameters, FIELD_PREFIX, context)
        source = self.parameterAsSource(parameters, INPUT, context)
        try:
            self._check_names(source.fields().names() if source is not None else [], prefix,
                              is_dbase_destination(self, parameters, OUTPUT, context))
        except QgsProcessingException as error:
            return False, str(error)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        prefix = self.parameterAsString(parameters, FIELD_PREFIX, context)
        input_source = self.parameterAsSource(parameters, INPUT, context)
        if input_source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, INPUT))
        try:
            run = relevance_run.prepare_relevance_run(self, parameters, context, feedback, input_key=False)
        except relevance_run.Cancelled:
            return {}
        fields = self._output_fields(input_source.fields(), prefix, run.pair.reference_key_field("match"),
                                     is_dbase_destination(self, parameters, OUTPUT, context))
        sink, dest_id = new_sink(self, parameters, OUTPUT, context, fields, input_source.wkbType(),
                                 input_source.sourceCrs())
        n_input = len(run.pair.input.fids)
        best = scoring.BestMatches(n_input)
        # Features are written as soon as their best match is final, while later chunks are scored on the
        # worker threads: the writing (QGIS, mostly on this thread) and the scoring then share the cores.
        writer = _RelevanceWriter(self, parameters, sink, fields, input_source, run, best)
        try:
            for chunk in run.scored_chunks(feedback, centroid=False):
                best.add(chunk)
                writer.write_before(chunk.complete_before)
            writing_while_scoring = writer.seconds
            feedback.setProgressText("Writing the output")
            writer.write_before(n_input, feedback, progress_from=90.0)
            started = time.perf_counter()
            flush_sink(self, sink, parameters, OUTPUT)
            writer.sink = None
            del sink  # the last reference: the file is closed (a GeoPackage builds its spatial index) here
            closing = time.perf_counter() - started
        except relevance_run.Cancelled:
            return self.discard_output(context, dest_id)
        check_written(self, parameters, OUTPUT, dest_id, writer.read)
        run.report_timings(feedback, **{"writing while scoring": writing_while_scoring,
                                        "writing after scoring": writer.seconds - writing_while_scoring,
                                        "closing the output": closing})
        matched = int(np.count_nonzero(best.index_b >= 0))
        feedback.pushInfo(f"Scored {run.n_pairs} candidate pairs; {matched} of {n_input} input features "
                          "have a candidate.")
        if not self.finished(feedback, context, dest_id):
            return {}
        self.style_on_load(dest_id, "relevance", "{input} with relevance to {reference}")
        return {OUTPUT: dest_id, **run.pair.feature_counts()}

    @staticmethod
    def _check_names(input_names, prefix, dbase):
        """Raise QgsProcessingException when a relevance field name is too long for dBase or taken."""
        existing = {name.lower() for name in input_names}
        for name in (prefix + field.name for field in RELEVANCE_FIELDS):
            if dbase and len(name) > MAX_FIELD_NAME:
                raise QgsProcessingException(
                    f"The field prefix '{prefix}' makes the field name '{name}' longer than {MAX_FIELD_NAME} "
                    f"characters, the limit of a shapefile's fields; use a prefix of at most {MAX_FIELD_NAME - 6} "
                    "characters, or write a GeoPackage.")
            if name.lower() in existing:
                raise QgsProcessingException(
                    f"The input layer already has a field named '{name}'. Choose another field prefix "
                    "(parameter FIELD_PREFIX), or rename or remove that field.")

    @classmethod
    def _output_fields(cls, input_fields, prefix, match_field, dbase):
        cls._check_names(input_fields.names(), prefix, dbase)
        return output_fields(RELEVANCE_FIELDS, prefix, match_field, first=input_fields)


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
        self.unusable = ~run.input.source.usable
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
                        raise relevance_run.Cancelled
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
