"""INPUT and REFERENCE read together: sources, keys, search distance, same-layer flag."""

from dataclasses import dataclass

import numpy as np

from qgis.core import QgsField, QgsFields, QgsProcessingException

from ..model.frame import InvalidCrsError, layer_to_lonlat
from ..model.parallel import ordered_map
from ..model.skipped import REASONS, TAKES_PART, reason_counts, skip_codes
from .compat import field_type
from .parameters import (
    INPUT,
    INPUT_FEATURES,
    INPUT_KEY,
    INPUT_SKIPPED,
    REFERENCE,
    REFERENCE_FEATURES,
    REFERENCE_KEY,
    REFERENCE_SKIPPED,
    SEARCH_DISTANCE,
    finite_double,
    read_key_field,
    sources_are_same_layer,
)
from .ogr_read import whole_ogr_layer
from .sources import SourceArrays, read_polygon_source


@dataclass
class LayerPair:
    input: SourceArrays
    reference: SourceArrays
    input_key_template: QgsField
    reference_key_template: QgsField
    search_distance: float
    same_layer: bool

    def input_key_field(self, name):
        return _renamed(self.input_key_template, name)

    def reference_key_field(self, name):
        return _renamed(self.reference_key_template, name)

    def key_fields(self):
        """QgsFields in_key and ref_key: what a row about one pair starts with."""
        fields = QgsFields()
        fields.append(self.input_key_field("in_key"))
        fields.append(self.reference_key_field("ref_key"))
        return fields

    def same_layer_ids(self):
        """(ids_a, ids_b) that exclude self-pairs when both sides are one layer, else (None, None)."""
        if self.same_layer:
            return self.input.fids, self.reference.fids
        return None, None

    def to_lonlat(self, feedback):
        """Both layers in lon/lat (:class:`..model.frame.LonLatLayer`), with missing geometries reported.

        The source geometries are released once converted (``geoms`` becomes None), so that a
        layer of a million features is held once, in lon/lat, not twice.
        """
        # The two layers are converted at once, on two threads (shapely and pyproj release the GIL).
        lonlat_input, lonlat_reference = ordered_map(
            lambda item: _layer_to_lonlat(*item), [(self.input, "input"), (self.reference, "reference")])
        self.input.geoms = self.reference.geoms = None
        self.report_missing(feedback, lonlat_input, lonlat_reference)
        return lonlat_input, lonlat_reference

    def report_missing(self, feedback, lonlat_input, lonlat_reference):
        """Name the features that take no part, by key with the core's reason, and log how many take part.

        Sets :attr:`taking_part` ({"input": (taking part, skipped), "reference": ...}) for the results.
        """
        self.taking_part = {}
        for label, arrays, lonlat, key_name in (
                ("input", self.input, lonlat_input, self.input_key_template.name()),
                ("reference", self.reference, lonlat_reference, self.reference_key_template.name())):
            codes = skip_codes(lonlat, arrays.unreadable)
            skipped = np.flatnonzero(codes != TAKES_PART)
            self.taking_part[label] = (len(codes) - len(skipped), len(skipped))
            if len(skipped):
                feedback.pushWarning(skipped_warning(label, key_name, arrays.keys, arrays.fids, codes))
        (used_a, skipped_a), (used_b, skipped_b) = self.taking_part["input"], self.taking_part["reference"]
        feedback.pushInfo(f"Features taking part: {used_a:,} of {used_a + skipped_a:,} input and "
                          f"{used_b:,} of {used_b + skipped_b:,} reference features.")

    def feature_counts(self):
        """The results that say how many features took part (see :data:`.parameters.FEATURE_COUNT_OUTPUTS`)."""
        counts = getattr(self, "taking_part", None)
        if counts is None:
            return {}
        return {INPUT_FEATURES: counts["input"][0], INPUT_SKIPPED: counts["input"][1],
                REFERENCE_FEATURES: counts["reference"][0], REFERENCE_SKIPPED: counts["reference"][1]}

    @staticmethod
    def report_repaired(feedback, repaired_input, repaired_reference):
        """Warn once with the number of distinct features whose geometry was repaired.

        repaired_input, repaired_reference : lists of index arrays collected per chunk.
        """
        counts = [np.unique(np.concatenate(parts)).size if parts else 0
                  for parts in (repaired_input, repaired_reference)]
        if any(counts):
            feedback.pushWarning(
                f"Repaired invalid geometries (GEOS make_valid): {counts[0]} input and {counts[1]} reference "
                "feature(s)."
            )


SKIPPED_NAMED = 20  # skipped features named one by one in the warning; the rest are counted


def skipped_warning(label, key_name, keys, fids, codes, limit=SKIPPED_NAMED):
    """The warning that names the skipped features of one layer: the first ``limit`` by key with their reason,
    the count of the rest, and how many were skipped for each reason. codes: :func:`..model.skipped.skip_codes`."""
    skipped = np.flatnonzero(codes != TAKES_PART)
    by_reason = "; ".join(f"{reason}: {count:,}" for reason, count in reason_counts(codes).items())
    named = ", ".join(f"{_key_text(key_name, keys[i], fids[i])} ({REASONS[int(codes[i])]})" for i in skipped[:limit])
    more = f", and {len(skipped) - limit:,} more" if len(skipped) > limit else ""
    return (f"{len(skipped):,} of {len(codes):,} {label} feature(s) take no part and were skipped ({by_reason}): "
            f"{named}{more}.")


def _key_text(key_name, key, fid):
    """How a skipped feature is named: its key (the feature id when there is no key field)."""
    if key is None:
        return f"{key_name} NULL at feature id {fid}"
    return f"{key_name} {key!r}" if isinstance(key, str) else f"{key_name} {key}"


def _layer_to_lonlat(arrays, label):
    """One layer in lon/lat; the core's refusals (non-polygonal parts, unusable CRS) name the layer."""
    try:
        return layer_to_lonlat(arrays.geoms, arrays.crs)
    except InvalidCrsError as error:
        raise QgsProcessingException(
            f"The {label} layer cannot be used: {error} Assign the layer its correct coordinate reference system "
            "(Layer Properties, Source tab), then run again.") from None
    except ValueError as error:  # NonPolygonalGeometryError and anything else the core refuses
        raise QgsProcessingException(f"The {label} layer cannot be used: {error}") from None


def _renamed(template, name):
    field = QgsField(template)
    field.setName(name)
    return field


def _key_template(source, key_field):
    if key_field:
        return source.fields().field(source.fields().lookupField(key_field))
    return QgsField("fid", field_type("LongLong"))


def read_layer_pair(algorithm, parameters, context, feedback, input_key=True, input_value_fields=()):
    """Read INPUT and REFERENCE (and their key fields); None when cancelled.

    input_value_fields : numeric INPUT fields to read as float arrays (e.g. σ per feature).
    """
    input_source = algorithm.parameterAsSource(parameters, INPUT, context)
    reference_source = algorithm.parameterAsSource(parameters, REFERENCE, context)
    if input_source is None:
        raise QgsProcessingException(algorithm.invalidSourceError(parameters, INPUT))
    if reference_source is None:
        raise QgsProcessingException(algorithm.invalidSourceError(parameters, REFERENCE))
    input_key = read_key_field(algorithm, parameters, INPUT_KEY, context) if input_key else None
    reference_key = read_key_field(algorithm, parameters, REFERENCE_KEY, context)
    search_distance = finite_double(algorithm, parameters, SEARCH_DISTANCE, context)

    feedback.setProgressText("Reading the input layer")
    input_arrays = read_polygon_source(input_source, "input", input_key, feedback, input_value_fields,
                                       layer=whole_ogr_layer(algorithm, parameters, INPUT, context, input_source))
    if input_arrays is None:
        return None
    feedback.setProgress(10)
    feedback.setProgressText("Reading the reference layer")
    reference_arrays = read_polygon_source(
        reference_source, "reference", reference_key, feedback,
        layer=whole_ogr_layer(algorithm, parameters, REFERENCE, context, reference_source))
    if reference_arrays is None:
        return None
    feedback.setProgress(20)
    return LayerPair(
        input=input_arrays,
        reference=reference_arrays,
        input_key_template=_key_template(input_source, input_key),
        reference_key_template=_key_template(reference_source, reference_key),
        search_distance=search_distance,
        same_layer=sources_are_same_layer(algorithm, parameters, context),
    )
