"""overlaprelevance:matchfeatures — match groups, a one-to-one assignment and change labels, with probabilities."""

import dataclasses
import time

from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProperty,
)

from ..model.fields import GROUP_FIELDS, MATCH_FIELDS
from ..model.match_thresholds import MatchThresholds
from .compat import (
    FAST_INSERT,
    NO_GEOMETRY_CHECK,
    NUMBER_DOUBLE,
    SKIP_GEOMETRY_CHECKS,
    SOURCE_POLYGON,
    SOURCE_TABLE,
    WKB_NO_GEOMETRY,
)
from .base import GROUP_MATCH, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import INPUT, REFERENCE, add_layer_pair_parameters, add_model_parameters, declare, finite_double
from .writing import check_written, flush_sink, new_sink, output_fields

np = lazy_import("numpy")
matching = lazy_import("..model.matching", __package__)
relevance_run = lazy_import(".relevance_run", __package__)

OUTPUT = "OUTPUT"
OUTPUT_REFERENCE = "OUTPUT_REFERENCE"
OUTPUT_GROUPS = "OUTPUT_GROUPS"
# Style kind, loaded layer's name and layer-tree order of each output: the reference side as outlines above
# the filled input, so both stay visible.
_RESULT_STYLES = {
    OUTPUT: ("matches", "{input} matched to {reference}", 1),
    OUTPUT_REFERENCE: ("reference_matches", "{reference} matched to {input}", 2),
    OUTPUT_GROUPS: ("exact", "Match groups of {input} and {reference}", 0),
}
N_GROUPS = "N_GROUPS"
N_MATCHED_INPUT = "N_MATCHED_INPUT"
N_MATCHED_REFERENCE = "N_MATCHED_REFERENCE"
_WRITE_BATCH = 1000


#: Labels and ranges of the core's decision thresholds (MatchThresholds; its defaults were chosen on
#: held-out tuning data, see model/matching_results.md): field -> (label, minimum, maximum, decimals, help).
THRESHOLD_PARAMETERS = {
    "iou": ("IoU that counts as the same object", 0.0, 1.0, 2,
            "Two features are linked as the same object when P(IoU ≥ this) reaches the link probability."),
    "cover": ("Coverage that counts as a part", 0.0, 1.0, 2,
              "A feature is linked as a part of another when P(the share of the smaller one covered ≥ this) reaches "
              "the link probability."),
    "p_edge": ("Link probability", 0.0, 1.0, 2,
               "The probability of being the same object, or a part, from which two features are linked."),
    "shape_offset_m": ("Shape change that counts as modified (metres)", 0.0, 1000.0, 2,
                       "Only where the learned change model (model/match_model.json) is missing: a one-to-one "
                       "match is modified when, once moved onto each other, the two boundaries lie further apart "
                       "than this on average."),
    "alpha_translation": ("Improbable displacement (probability)", 0.0, 1.0, 4,
                          "Only without the learned change model: ... or when the move between them is less "
                          "probable than this under σ."),
    "sigma_floor": ("Smallest σ of the change test (metres)", 0.0, 100.0, 2,
                    "The change test assumes at least this σ, so that rounding at σ = 0 is no change."),
}


def _threshold_parameters():
    """(parameter name, field name, default, label, minimum, maximum, decimals, help) of every threshold."""
    rows = []
    for field in dataclasses.fields(MatchThresholds):
        label, low, high, decimals, text = THRESHOLD_PARAMETERS[field.name]
        rows.append((f"T_{field.name.upper()}", field.name, field.default, label, low, high, decimals, text))
    return rows


class MatchFeaturesAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_MATCH
    SHORT_DESCRIPTION = ("Match two polygon layers: groups (1:1, 1:n, n:1, m:n), one-to-one matches and change "
                         "labels, each with its probability.")
    SUMMARY = (
        "Tells, for every feature of both layers, what happened to it: matched one to one, split, merged, many to "
        "many, only in the input (new) or only in the reference (removed), and for a one-to-one match whether it "
        "is unchanged (what positional uncertainty σ alone explains) or modified. Two features are linked where "
        "the model says they are likely the same object, or one likely a part of the other; the groups are the "
        "linked sets, and the one-to-one assignment within each group maximises the total probability of being the "
        "same object (read at σ, with the features' sizes and neighbours), so no feature is assigned twice. Each "
        "assignment and each change label carries a probability calibrated on known-truth edits. Read the "
        "reference as the old version and the input as the new one.")
    TAGS = ("match", "matching", "conflation", "assignment", "one to one", "split", "merge", "change detection",
            "changes", "versions", "compare layers", "join", "uncertainty", "probability", "data quality")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "matchfeatures"
    DISPLAY_NAME = "Match features"

    def output_help(self):
        return [
            ("Matched input (OUTPUT)", "every input feature with its fields and geometry, plus the m_ fields"),
            ("Matched reference (OUTPUT_REFERENCE)", "every reference feature likewise"),
            ("Match groups (OUTPUT_GROUPS)", "a table, one row per group: " + ", ".join(field.name for field in GROUP_FIELDS)),
            ("(outputs)", "each of the three is optional: qgis_process and scripts write only those named"),
            *((field.name, field.meaning) for field in MATCH_FIELDS),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        add_model_parameters(self, with_threshold=False)
        for name, _, default, label, low, high, decimals, text in _threshold_parameters():
            declare(self, QgsProcessingParameterNumber(name, label, NUMBER_DOUBLE, default, minValue=low,
                                                       maxValue=high), advanced=True, decimals=decimals,
                    help_text=text)
        # Each output is optional, as in QGIS's own join by location: the dialog creates all three by default,
        # qgis_process and processing.run only those named.
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Matched input", SOURCE_POLYGON, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT_REFERENCE, "Matched reference", SOURCE_POLYGON,
                                                            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT_GROUPS, "Match groups", SOURCE_TABLE,
                                                            optional=True))
        self.addOutput(QgsProcessingOutputNumber(N_GROUPS, "Match groups"))
        self.addOutput(QgsProcessingOutputNumber(N_MATCHED_INPUT, "Input features in a group"))
        self.addOutput(QgsProcessingOutputNumber(N_MATCHED_REFERENCE, "Reference features in a group"))

    def check_more(self, parameters, context):
        """The m_ fields must not exist on either layer already."""
        taken = {field.name for field in MATCH_FIELDS}
        for name, label in ((INPUT, "input"), (REFERENCE, "reference")):
            source = self.parameterAsSource(parameters, name, context)
            if source is None:
                continue
            clash = sorted(taken & {n.lower() for n in source.fields().names()})
            if clash:
                return False, (f"The {label} layer already has a field named '{clash[0]}'; rename or remove it "
                               f"(the match fields are {', '.join(f.name for f in MATCH_FIELDS[:-1])} and {MATCH_FIELDS[-1].name}).")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        started = time.perf_counter()
        thresholds = MatchThresholds(**{field: finite_double(self, parameters, name, context)
                                        for name, field, *_ in _threshold_parameters()})
        sources = {name: self.parameterAsSource(parameters, name, context) for name in (INPUT, REFERENCE)}
        for name, source in sources.items():
            if source is None:
                raise QgsProcessingException(self.invalidSourceError(parameters, name))
        try:
            run = relevance_run.prepare_relevance_run(self, parameters, context, feedback)
        except relevance_run.Cancelled:
            return {}
        feedback.setProgressText("Scoring candidate pairs and matching")
        n_input = max(len(run.pair.input.fids), 1)

        def progress(fraction, text=None):
            if text:
                feedback.setProgressText(text)
            feedback.setProgress(20 + 70 * fraction)

        matching_started = time.perf_counter()
        result = matching.match_layers(run.model, run.input, run.reference, run.sigma, run.pair.search_distance,
                                       *run.pair.same_layer_ids(), thresholds=thresholds,
                                       cancelled=feedback.isCanceled, progress=progress)
        if result is None or feedback.isCanceled():
            return {}
        run.n_pairs = int(result.n_pairs)
        run.seconds["scoring and matching"] = time.perf_counter() - matching_started
        del n_input

        feedback.setProgressText("Writing the outputs")
        keys_a, keys_b = run.pair.input.keys, run.pair.reference.keys
        dest = {}
        sides = (
            (OUTPUT, sources[INPUT], run.pair.input.fids, run.pair.reference_key_field("m_key"), keys_b,
             result.group_a, result.class_a, result.partner_a, result.p_a, result.change_a, result.change_p_a),
            (OUTPUT_REFERENCE, sources[REFERENCE], run.pair.reference.fids, run.pair.input_key_field("m_key"), keys_a,
             result.group_b, result.class_b, result.partner_b, result.p_b, result.change_b, result.change_p_b),
        )
        writing_started = time.perf_counter()
        for output, source, fids, key_template, other_keys, group, klass, partner, p, change, change_p in sides:
            fields = self._feature_fields(source.fields(), key_template)
            if not _named(parameters, output):
                continue
            sink, dest_id = new_sink(self, parameters, output, context, fields, source.wkbType(), source.sourceCrs())
            dest[output] = dest_id
            rows = _Rows(fids, group, klass, partner, p, change, other_keys, change_p)
            written = self._write_features(sink, source, fields, rows, feedback, output, parameters)
            if written is None:
                return self._discard_all(context, dest)
            flush_sink(self, sink, parameters, output)
            del sink  # closes the file
            check_written(self, parameters, output, dest_id, written)
        if _named(parameters, OUTPUT_GROUPS):
            dest[OUTPUT_GROUPS] = self._write_groups(parameters, context, result, keys_a, keys_b)
        if feedback.isCanceled():
            return self._discard_all(context, dest)
        for output, dest_id in dest.items():
            self.style_on_load(dest_id, *_RESULT_STYLES[output])
        if not dest:
            feedback.pushInfo("No output was named (OUTPUT, OUTPUT_REFERENCE, OUTPUT_GROUPS): only the counts are "
                              "given.")
        run.report_timings(feedback, "scoring and matching", writing=time.perf_counter() - writing_started)

        counts = {klass: int(np.count_nonzero(result.groups["class"] == klass)) for klass in ("1:1", "1:n", "n:1",
                                                                                            "m:n")}
        matched_a = int(np.count_nonzero(result.group_a >= 0))
        matched_b = int(np.count_nonzero(result.group_b >= 0))
        feedback.pushInfo(
            f"{len(result.groups['id'])} groups ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
            f"{matched_a} of {len(result.group_a)} input and {matched_b} of {len(result.group_b)} reference features "
            f"are in a group; {run.n_pairs} candidate pairs ({time.perf_counter() - started:.1f} s).")
        if not self.finished(feedback, context, *dest.values()):
            return {}
        return {**dest, N_GROUPS: len(result.groups["id"]), N_MATCHED_INPUT: matched_a, N_MATCHED_REFERENCE: matched_b,
                **run.pair.feature_counts()}

    def _discard_all(self, context, destinations):
        """A cancel leaves no output behind, not even those already complete."""
        for dest_id in destinations.values():
            self.discard_output(context, dest_id)
        return {}

    @staticmethod
    def _feature_fields(source_fields, key_template):
        return output_fields(MATCH_FIELDS, key_field=key_template, first=source_fields)

    def _write_features(self, sink, source, fields, rows, feedback, output, parameters):
        """Every feature of ``source``, re-read as it is, with its match fields: their number, None when cancelled."""
        request = QgsFeatureRequest()
        request.setInvalidGeometryCheck(NO_GEOMETRY_CHECK)
        batch, written = [], 0
        for feature in source.getFeatures(request, SKIP_GEOMETRY_CHECKS):
            attributes = feature.attributes() + rows(feature.id())
            feature.setFields(fields, False)
            feature.setAttributes(attributes)
            batch.append(feature)
            if len(batch) == _WRITE_BATCH:
                if not sink.addFeatures(batch, FAST_INSERT):
                    raise QgsProcessingException(self.writeFeatureError(sink, parameters, output))
                written += len(batch)
                batch = []
                if feedback.isCanceled():
                    return None
        if batch and not sink.addFeatures(batch, FAST_INSERT):
            raise QgsProcessingException(self.writeFeatureError(sink, parameters, output))
        return None if feedback.isCanceled() else written + len(batch)

    def _write_groups(self, parameters, context, result, keys_a, keys_b):
        from .parameters import table_destination

        fields = output_fields(GROUP_FIELDS)
        sink, dest_id = new_sink(self, parameters, OUTPUT_GROUPS, context, fields, WKB_NO_GEOMETRY)
        groups = result.groups
        features = []
        for group_id, klass, members_a, members_b, p in zip(groups["id"].tolist(), groups["class"].tolist(),
                                                            groups["members_a"], groups["members_b"],
                                                            groups["p"].tolist()):
            feature = QgsFeature(fields)
            feature.setAttributes([group_id, klass, len(members_a), len(members_b),
                                   ", ".join(str(keys_a[i]) for i in members_a),
                                   ", ".join(str(keys_b[i]) for i in members_b),
                                   None if p != p else p])
            features.append(feature)
        if features and not sink.addFeatures(features, FAST_INSERT):
            raise QgsProcessingException(self.writeFeatureError(sink, parameters, OUTPUT_GROUPS))
        flush_sink(self, sink, parameters, OUTPUT_GROUPS)
        del sink  # closes the file
        check_written(self, parameters, OUTPUT_GROUPS, dest_id, len(features))
        return table_destination(context, dest_id)


def _named(parameters, name):
    """Whether the optional output ``name`` was asked for: given, and not skipped (None or empty in the dialog)."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink
    if isinstance(value, QgsProperty):  # a static destination, or an expression or field that gives one
        value = f"{value.staticValue() or ''}{value.expressionString()}{value.field()}"
    return value is not None and str(value).strip() != ""


class _Rows:
    """Feature id -> the match field values of that feature (NULL where the core has none).

    The values are turned into Python objects once, column by column, not feature by feature.
    """

    def __init__(self, fids, group, klass, partner, p, change, other_keys, change_p=None):
        self.position = dict(zip(np.asarray(fids).tolist(), range(len(fids))))
        partner = np.asarray(partner)
        keys = np.full(len(partner), None, dtype=object)
        has = partner >= 0
        keys[has] = other_keys[partner[has]]
        p = np.asarray(p, dtype=float)
        change_p = np.full(len(p), np.nan) if change_p is None else np.asarray(change_p, dtype=float)
        self.rows = list(zip(
            np.where(group >= 0, group, None).tolist(), list(klass), keys.tolist(),
            np.where(np.isfinite(p), p, None).tolist(), list(change),
            np.where(np.isfinite(change_p), change_p, None).tolist()))
        self.none = (None,) * len(MATCH_FIELDS)

    def __call__(self, fid):
        i = self.position.get(fid)
        return list(self.rows[i] if i is not None else self.none)
