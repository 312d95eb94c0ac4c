"""overlaprelevance:scorerelevance — relevance of every input feature's best reference match."""

import time

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterString,
)

from ..model.scoring import best_matches
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
            fields = self._output_fields(input_source.fields(), prefix, run.pair.reference_key_field("match"))
            columns = {key: [] for key in ("index_a", "index_b", "iou", "p", "ca", "cb", "sd")}
            for chunk in run.scored_chunks(feedback):
                for key, values in (("index_a", chunk.index_a), ("index_b", chunk.index_b),
                                    ("iou", chunk.summary.iou_mean), ("p", chunk.summary.p_iou),
                                    ("ca", chunk.summary.cover_a_mean), ("cb", chunk.summary.cover_b_mean),
                                    ("sd", chunk.summary.iou_sd)):
                    columns[key].append(values)
        except Cancelled:
            return {}
        n_input = len(run.pair.input.fids)
        merged = {key: np.concatenate(values) if values else np.zeros(0) for key, values in columns.items()}
        best, count = best_matches(merged["index_a"].astype(np.int64), merged["iou"], n_input)

        sink, dest_id = self.parameterAsSink(parameters, OUTPUT, context, fields, input_source.wkbType(),
                                             input_source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT))
        writing_started = time.perf_counter()
        row_at = self._relevance_rows(run.pair, merged, best, count, ~run.lonlat_input.usable)
        position_of = _Positions(run.pair.input.fids)
        feedback.setProgressText("Writing the output")
        request = QgsFeatureRequest()
        request.setInvalidGeometryCheck(NO_GEOMETRY_CHECK)  # the input is written back exactly as it is
        batch = []
        for written, feature in enumerate(input_source.getFeatures(request, SKIP_GEOMETRY_CHECKS)):
            if written % _WRITE_BATCH == 0:
                if batch and not sink.addFeatures(batch, FAST_INSERT):
                    raise QgsProcessingException(self.writeFeatureError(sink, parameters, OUTPUT))
                batch = []
                if feedback.isCanceled():
                    return self.discard_output(context, dest_id)
                feedback.setProgress(90.0 + 10.0 * written / max(n_input, 1))
            # The feature read keeps its geometry (implicitly shared) and gains the relevance fields.
            attributes = feature.attributes() + row_at(position_of(feature.id(), written))
            feature.setFields(fields, False)
            feature.setAttributes(attributes)
            batch.append(feature)
        if batch and not sink.addFeatures(batch, FAST_INSERT):
            raise QgsProcessingException(self.writeFeatureError(sink, parameters, OUTPUT))
        if feedback.isCanceled():
            return self.discard_output(context, dest_id)
        run.report_timings(feedback, writing=time.perf_counter() - writing_started)
        matched = int(np.count_nonzero(best >= 0))
        feedback.pushInfo(f"Scored {len(merged['iou'])} candidate pairs; {matched} of {n_input} input features "
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

    @staticmethod
    def _relevance_rows(pair, merged, best, count, unusable):
        """position -> the relevance attribute values of the input feature read at that position.

        Rows are made while writing, from (n,) arrays, a batch of positions at a time, so a
        million features do not become a million lists at once. Position None (a feature the provider did
        not return when reading) gets NULL everywhere, as do features without a usable geometry.
        """
        has = best >= 0
        pick = np.where(has, best, 0)
        values = np.column_stack([np.where(has, merged[key][pick], 0.0) if len(merged[key]) else np.zeros(len(best))
                                  for key in ("iou", "p", "ca", "cb", "sd")])
        index_b = merged["index_b"]
        keys = pair.reference.keys
        no_relevance = [None] * len(RELEVANCE_FIELDS)
        block = {"start": -1, "rows": None}  # the Python values of one run of _WRITE_BATCH positions

        def row_at(position):
            if position is None or unusable[position]:
                return no_relevance
            start = position - position % _WRITE_BATCH
            if block["start"] != start:
                block["start"], block["rows"] = start, values[start:start + _WRITE_BATCH].tolist()
            b = best[position]
            return [keys[int(index_b[b])] if b >= 0 else None, *block["rows"][position - start], int(count[position])]

        return row_at


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
