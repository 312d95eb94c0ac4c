"""INPUT and REFERENCE read together: sources, keys, search distance, same-layer flag."""

from dataclasses import dataclass

import numpy as np

from qgis.core import QgsField, QgsProcessingException

from ..model.frame import layer_to_lonlat
from ..plugin.compat import field_type
from .parameters import (
    INPUT,
    INPUT_KEY,
    REFERENCE,
    REFERENCE_KEY,
    SEARCH_DISTANCE,
    read_key_field,
    sources_are_same_layer,
)
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

    def same_layer_ids(self):
        """(ids_a, ids_b) that exclude self-pairs when both sides are one layer, else (None, None)."""
        if self.same_layer:
            return self.input.fids, self.reference.fids
        return None, None

    def to_lonlat(self, feedback):
        """Both layers in lon/lat (:class:`..model.frame.LonLatLayer`), with missing geometries reported."""
        try:
            lonlat_input = layer_to_lonlat(self.input.geoms, self.input.crs)
            lonlat_reference = layer_to_lonlat(self.reference.geoms, self.reference.crs)
        except ValueError as error:  # non-polygonal parts, unusable CRS: the core says which
            raise QgsProcessingException(str(error)) from None
        self.report_missing(feedback, lonlat_input, lonlat_reference)
        return lonlat_input, lonlat_reference

    def report_missing(self, feedback, lonlat_input, lonlat_reference):
        """Tell the user how many features had no usable geometry on each side."""
        for label, arrays, lonlat in (("input", self.input, lonlat_input),
                                      ("reference", self.reference, lonlat_reference)):
            if lonlat.n_missing:
                feedback.pushWarning(
                    f"{lonlat.n_missing} {label} feature(s) have no usable geometry (null, empty, or not "
                    f"representable in lon/lat) and were skipped."
                )
            if arrays.n_unreadable:
                feedback.pushWarning(f"{arrays.n_unreadable} {label} geometries could not be read by GEOS.")


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
    search_distance = algorithm.parameterAsDouble(parameters, SEARCH_DISTANCE, context)

    feedback.setProgressText("Reading the input layer")
    input_arrays = read_polygon_source(input_source, "input", input_key, feedback, input_value_fields)
    if input_arrays is None:
        return None
    feedback.setProgress(10)
    feedback.setProgressText("Reading the reference layer")
    reference_arrays = read_polygon_source(reference_source, "reference", reference_key, feedback)
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
