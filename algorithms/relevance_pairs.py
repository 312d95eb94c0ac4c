"""overlaprelevance:relevancepairs — one row per candidate pair with its relevance."""

from qgis.core import (
    QgsFeature,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
)

from ..model.fields import PAIR_EXACT_FIELDS, PAIR_FIELDS
from .compat import SOURCE_TABLE, WKB_LINESTRING, WKB_NO_GEOMETRY
from .base import GROUP_PAIRS, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import add_layer_pair_parameters, add_model_parameters, declare, table_destination
from .writing import add_features, check_written, flush_sink, new_sink, output_fields

np = lazy_import("numpy")
shapely = lazy_import("shapely")
frame = lazy_import("..model.frame", __package__)
overlap = lazy_import("..model.overlap", __package__)
pairs = lazy_import("..model.pairs", __package__)
geometry_out = lazy_import(".geometry_out", __package__)
relevance_run = lazy_import(".relevance_run", __package__)

COMPUTE_EXACT = "COMPUTE_EXACT"
GEOMETRY = "GEOMETRY"
OUTPUT = "OUTPUT"
GEOMETRY_OPTIONS = ("No geometry (table)", "Line between the features' centroids")
#: The predicted values, each from the attribute of a chunk's summary that its field names.
PREDICTED = tuple(field for field in PAIR_FIELDS if field.summary)


class RelevancePairsAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_PAIRS
    SHORT_DESCRIPTION = "Every candidate pair of two polygon layers with its predicted overlap, ranked."
    SUMMARY = (
        "Lists every candidate pair of an input and a reference feature with the predicted distribution of their "
        "overlap, ranked within each input feature. Use it to see all plausible matches, not only the best one, "
        "and, with exact overlaps, to check the model on your data. Drawn as lines between the features' "
        "centroids, the best match of each input feature is shown strongly and the others faintly.")
    TAGS = ("match", "matching", "candidates", "pairs", "ranking", "conflation", "join", "uncertainty", "validation")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "relevancepairs"
    DISPLAY_NAME = "Relevance pairs"

    def output_help(self):
        return [("in_key, ref_key", "the pair's input and reference keys"),
                *((field.name, field.meaning) for field in PAIR_FIELDS),
                *((field.name, field.meaning + " (with Compute exact overlaps)") for field in PAIR_EXACT_FIELDS)]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        add_model_parameters(self)
        declare(self, QgsProcessingParameterBoolean(COMPUTE_EXACT, "Compute exact overlaps (validation)", False),
                help_text="Adds the exact IoU and coverages of each pair, computed with GEOS on the full-detail "
                          "geometries with the positions taken as exact (slower).")
        declare(self, QgsProcessingParameterEnum(GEOMETRY, "Geometry", list(GEOMETRY_OPTIONS), defaultValue=0),
                help_text="A table without geometry, or a line from the input feature's centroid to the reference "
                          "feature's centroid, in the input layer's CRS.")
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Relevance pairs", SOURCE_TABLE))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        compute_exact = self.parameterAsBoolean(parameters, COMPUTE_EXACT, context)
        with_lines = self.parameterAsEnum(parameters, GEOMETRY, context) == 1
        try:
            run = relevance_run.prepare_relevance_run(self, parameters, context, feedback)
            parts = [self._chunk_columns(run, chunk, compute_exact, with_lines)
                     for chunk in run.scored_chunks(feedback, progress_to=85.0, centroid=False)]
        except relevance_run.Cancelled:
            return {}
        columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}
        index_a = columns.get("index_a", np.zeros(0)).astype(np.int64)
        rank = _rank_within(index_a, columns.get("rel_score", np.zeros(0)))

        fields = output_fields(PAIR_FIELDS + (PAIR_EXACT_FIELDS if compute_exact else ()), first=run.pair.key_fields())
        names = [field.name for field in PREDICTED + (PAIR_EXACT_FIELDS if compute_exact else ())]
        geometry_type = WKB_LINESTRING if with_lines else WKB_NO_GEOMETRY
        crs = self.parameterAsSource(parameters, "INPUT", context).sourceCrs()
        sink, dest_id = new_sink(self, parameters, OUTPUT, context, fields, geometry_type, crs)
        keys_a = run.pair.input.keys[index_a]
        keys_b = run.pair.reference.keys[columns["index_b"].astype(np.int64)] if len(index_a) else []
        values = np.column_stack([columns[n] for n in names]).tolist() if len(index_a) else []
        lines = geometry_out.to_qgis(columns["line"]) if with_lines and len(index_a) else None
        feedback.setProgressText("Writing the output")
        n_rows = max(len(index_a), 1)
        batch = []
        for i, (key_a, key_b, row_rank, row) in enumerate(zip(keys_a, keys_b, rank.tolist(), values)):
            if i % 5000 == 0:
                add_features(self, sink, batch, parameters, OUTPUT)
                batch = []
                if feedback.isCanceled():
                    return self.discard_output(context, dest_id)
                feedback.setProgress(85.0 + 15.0 * i / n_rows)
            feature = QgsFeature(fields)
            feature.setAttributes([key_a, key_b, row_rank, *row])
            if lines is not None:
                feature.setGeometry(lines[i])
            batch.append(feature)
        add_features(self, sink, batch, parameters, OUTPUT)
        flush_sink(self, sink, parameters, OUTPUT)
        del sink  # closes the file
        check_written(self, parameters, OUTPUT, dest_id, len(index_a))
        if not self.finished(feedback, context, dest_id):
            return {}
        dest_id = table_destination(context, dest_id)
        self.style_on_load(dest_id, "pairs", "Relevance pairs of {input} with {reference}")
        return {OUTPUT: dest_id, **run.pair.feature_counts()}

    @staticmethod
    def _chunk_columns(run, chunk, compute_exact, with_lines):
        columns = {"index_a": chunk.index_a, "index_b": chunk.index_b,
                   **{field.name: getattr(chunk.summary, field.summary) for field in PREDICTED}}
        if compute_exact:
            # The chunk's frames hold the model's (possibly simplified) geometries; exact means full detail,
            # measured in the frames scoring uses (a straight edge bends differently in another frame).
            full = frame.project_pairs(run.input.full_detail, run.reference.full_detail,
                                       chunk.index_a, chunk.index_b, repair=False, centre_on_large=True,
                                       reach_m=chunk.reach_m)
            exact = overlap.exact_overlap_of_frames(full)
            columns.update(ex_iou=exact.iou, ex_cov=exact.cover_a, ex_covref=exact.cover_b)
        if with_lines:
            centroids = shapely.centroid(np.stack([chunk.frames.a, chunk.frames.b], axis=1))  # (p, 2)
            pair_index = np.repeat(np.arange(len(chunk.index_a))[:, None], 2, axis=1)
            x, y = geometry_out.frame_points_to_crs(chunk.frames, shapely.get_x(centroids), shapely.get_y(centroids),
                                                    pair_index, run.pair.input.crs)
            columns["line"] = shapely.linestrings(np.stack([x, y], axis=-1))
        return columns


def _rank_within(index_a, score):
    """1-based rank of each pair within its input feature, by descending score (ties: earlier first)."""
    rank = np.zeros(len(index_a), dtype=np.int64)
    if len(index_a):
        order = np.lexsort((np.arange(len(index_a)), -score, index_a))
        group_start = np.r_[True, index_a[order][1:] != index_a[order][:-1]]
        starts = np.flatnonzero(group_start)
        position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        rank[order] = position + 1
    return rank
