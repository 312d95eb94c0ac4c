"""overlaprelevance:overlaplocation — where the overlap of relevant pairs is predicted to lie."""

from qgis.core import (
    QgsFeature,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
)

from ..model.fields import LOCATION_FIELDS
from .compat import NUMBER_DOUBLE, SOURCE_POLYGON, WKB_POLYGON
from .base import GROUP_PAIRS, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import INPUT, add_layer_pair_parameters, add_model_parameters, declare, finite_double
from .writing import add_features, check_written, flush_sink, new_sink, output_fields

np = lazy_import("numpy")
shapely = lazy_import("shapely")
geometry_out = lazy_import(".geometry_out", __package__)
relevance_run = lazy_import(".relevance_run", __package__)

MIN_RELEVANCE = "MIN_RELEVANCE"
MIN_WEIGHT = "MIN_WEIGHT"
LEVEL = "LEVEL"
OUTPUT = "OUTPUT"
ELLIPSE_VERTICES = 64


class OverlapLocationAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_PAIRS
    SHORT_DESCRIPTION = "Ellipses where the overlap of relevant pairs is predicted to lie, under positional uncertainty."
    SUMMARY = (
        "Shows where the overlap of relevant pairs is predicted to lie. The model predicts the centroid of each "
        "pair's intersection as a Gaussian mixture; each component is drawn as an ellipse holding the chosen share "
        "(confidence level) of its probability, in the input layer's CRS. Under positional uncertainty the "
        "ellipses grow with σ; at σ = 0 they are small, around the overlap's centroid. Only pairs with an expected "
        "IoU of at least the minimum relevance, and components of at least the minimum weight, are drawn.")
    TAGS = ("location", "where", "ellipse", "confidence", "uncertainty", "intersection", "centroid", "match")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "overlaplocation"
    DISPLAY_NAME = "Predicted overlap location"

    def output_help(self):
        return [("in_key, ref_key", "the pair"), *((field.name, field.meaning) for field in LOCATION_FIELDS)]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        add_model_parameters(self, with_threshold=False)
        declare(self, QgsProcessingParameterNumber(MIN_RELEVANCE, "Minimum relevance (expected IoU)", NUMBER_DOUBLE,
                                                   0.1, minValue=0.0, maxValue=1.0), decimals=2,
                help_text="Pairs whose expected IoU is below this value get no ellipse.")
        declare(self, QgsProcessingParameterNumber(MIN_WEIGHT, "Minimum component weight", NUMBER_DOUBLE, 0.05,
                                                   minValue=0.0, maxValue=1.0), decimals=2, advanced=True,
                help_text="Mixture components of a smaller weight (probability) are not drawn.")
        declare(self, QgsProcessingParameterNumber(LEVEL, "Confidence level", NUMBER_DOUBLE, 0.9, minValue=0.01,
                                                   maxValue=0.999), decimals=3,
                help_text="The share of a component's probability that its ellipse holds.")
        self.addParameter(QgsProcessingParameterFeatureSink(OUTPUT, "Predicted overlap location", SOURCE_POLYGON))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        min_relevance = finite_double(self, parameters, MIN_RELEVANCE, context)
        min_weight = finite_double(self, parameters, MIN_WEIGHT, context)
        level = finite_double(self, parameters, LEVEL, context)
        dest_id = None
        try:
            run = relevance_run.prepare_relevance_run(self, parameters, context, feedback)
            fields = output_fields(LOCATION_FIELDS, first=run.pair.key_fields())
            crs = self.parameterAsSource(parameters, INPUT, context).sourceCrs()
            sink, dest_id = new_sink(self, parameters, OUTPUT, context, fields, WKB_POLYGON, crs)
            n_ellipses = 0
            for chunk in run.scored_chunks(feedback, progress_to=99.0):
                features = self._ellipses(run, chunk, fields, min_relevance, min_weight, level)
                add_features(self, sink, features, parameters, OUTPUT)
                n_ellipses += len(features)
        except relevance_run.Cancelled:
            return self.discard_output(context, dest_id) if dest_id else {}
        flush_sink(self, sink, parameters, OUTPUT)
        del sink  # closes the file
        check_written(self, parameters, OUTPUT, dest_id, n_ellipses)
        feedback.pushInfo(f"{n_ellipses} ellipses written.")
        self.style_on_load(dest_id, "location", "Overlap locations of {input} with {reference}")
        return {OUTPUT: dest_id, **run.pair.feature_counts()}

    @staticmethod
    def _ellipses(run, chunk, fields, min_relevance, min_weight, level):
        """The features of the chunk's ellipses (a list)."""
        weights = chunk.centroid.weights  # (p, K)
        chosen = (chunk.summary.iou_mean[:, None] >= min_relevance) & (weights >= min_weight)
        pair, component = np.nonzero(chosen)
        if not len(pair):
            return []
        vertices = chunk.centroid[pair].ellipses(level, ELLIPSE_VERTICES)  # (m, K, V, 2), frame metres
        vertices = vertices[np.arange(len(pair)), component]  # (m, V, 2)
        pair_index = np.broadcast_to(pair[:, None], vertices.shape[:2])
        x, y = geometry_out.frame_points_to_crs(chunk.frames, vertices[..., 0], vertices[..., 1], pair_index,
                                                run.pair.input.crs)
        rings = np.stack([x, y], axis=-1)
        # An ellipse that left the CRS's domain has non-finite points; GEOS 3.11 refuses such a ring
        # ("not closed", since NaN != NaN) where newer GEOS builds it. Neither is a usable ellipse.
        finite = np.isfinite(rings).all(axis=(1, 2))
        if not finite.all():
            pair, component, rings = pair[finite], component[finite], rings[finite]
            if not len(pair):
                return []
        polygons = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
        keys_a = run.pair.input.keys[chunk.index_a[pair]]
        keys_b = run.pair.reference.keys[chunk.index_b[pair]]
        features = []
        for geometry, key_a, key_b, k, w in zip(geometry_out.to_qgis(polygons), keys_a, keys_b, component.tolist(),
                                                weights[pair, component].tolist()):
            feature = QgsFeature(fields)
            feature.setGeometry(geometry)
            feature.setAttributes([key_a, key_b, k, w, level])
            features.append(feature)
        return features
