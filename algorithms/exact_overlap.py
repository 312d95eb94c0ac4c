"""overlaprelevance:exactoverlap — exact overlap of every candidate pair (the reference)."""

from qgis.core import (
    QgsFeature,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
)

from ..model.fields import EXACT_OVERLAP_FIELDS
from .compat import SOURCE_TABLE, WKB_NO_GEOMETRY
from .base import GROUP_PAIRS, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import add_layer_pair_parameters, table_destination
from .writing import add_features, check_written, flush_sink, new_sink, output_fields

np = lazy_import("numpy")
overlap = lazy_import("..model.overlap", __package__)
pairs = lazy_import("..model.pairs", __package__)
layers = lazy_import(".layers", __package__)

OUTPUT = "OUTPUT"
PAIR_COUNT = "PAIR_COUNT"


class ExactOverlapAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_PAIRS
    SHORT_DESCRIPTION = "Exact areas, coverages and IoU of every candidate pair of two polygon layers, in metres."
    SUMMARY = (
        "Computes the exact overlap of every candidate pair of an input and a reference polygon layer with GEOS, "
        "in each pair's local metric frame, with the positions taken as exact. It is what the relevance model is "
        "trained and evaluated against, and a plain exact overlap table in its own right: one row per candidate "
        "pair, without geometry.")
    TAGS = ("exact", "intersection", "area", "coverage", "table", "geos", "validation", "join")
    NOTES = ("iou", "frame", "geometry")

    NAME = "exactoverlap"
    DISPLAY_NAME = "Exact overlap of candidate pairs"

    def output_help(self):
        return [("in_key, ref_key", "the pair's input and reference keys"), *((field.name, field.meaning) for field in EXACT_OVERLAP_FIELDS),
                (PAIR_COUNT, "the number of candidate pairs (an output number, for models)")]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Exact overlaps", SOURCE_TABLE))
        self.addOutput(QgsProcessingOutputNumber(PAIR_COUNT, "Number of candidate pairs"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        pair = layers.read_layer_pair(self, parameters, context, feedback)
        if pair is None:
            return {}
        lonlat_a, lonlat_b = pair.to_lonlat(feedback)  # refusals come before any output is created
        fields = output_fields(EXACT_OVERLAP_FIELDS, first=pair.key_fields())
        sink, dest_id = new_sink(self, parameters, OUTPUT, context, fields, WKB_NO_GEOMETRY)

        n_input = max(len(pair.input.fids), 1)
        n_pairs = 0
        # Full detail, repaired once per feature, each pair in the frame scorerelevance measures it in at σ = 0.
        (full_a, full_b), repaired = pairs.full_detail_layers(lonlat_a, lonlat_b)
        repaired_a, repaired_b = [np.flatnonzero(repaired[0])], [np.flatnonzero(repaired[1])]
        for chunk in pairs.iter_measured_chunks(full_a, full_b, pair.search_distance, *pair.same_layer_ids()):
            if feedback.isCanceled():
                return self.discard_output(context, dest_id)
            exact = overlap.exact_overlap_of_frames(chunk.frames)
            columns = np.column_stack([exact.area_a, exact.area_b, exact.area_inter, exact.cover_a,
                                       exact.cover_b, exact.iou]).tolist()
            keys_a = pair.input.keys[chunk.index_a]
            keys_b = pair.reference.keys[chunk.index_b]
            features = []
            for key_a, key_b, values in zip(keys_a, keys_b, columns):
                feature = QgsFeature(fields)
                feature.setAttributes([key_a, key_b, *values])
                features.append(feature)
            add_features(self, sink, features, parameters, OUTPUT)
            n_pairs += len(keys_a)
            # Pairs come sorted by input feature, so the last input index tells how far we are.
            feedback.setProgress(20.0 + 80.0 * (chunk.index_a[-1] + 1) / n_input)
        if feedback.isCanceled():
            return self.discard_output(context, dest_id)
        flush_sink(self, sink, parameters, OUTPUT)
        del sink  # closes the file
        check_written(self, parameters, OUTPUT, dest_id, n_pairs)
        pair.report_repaired(feedback, repaired_a, repaired_b)
        feedback.pushInfo(f"Candidate pairs: {n_pairs}")
        dest_id = table_destination(context, dest_id)
        self.style_on_load(dest_id, "exact", "Exact overlaps of {input} with {reference}")
        return {OUTPUT: dest_id, PAIR_COUNT: n_pairs, **pair.feature_counts()}
