"""Every feature that takes no part is named, by key and with the core's reason; the results count both sides."""

from types import SimpleNamespace

import numpy as np
import pytest
import shapely

from tools.geometry import square, to_crs
from tools.layers import memory_layer

from overlap_relevance.algorithms.layers import SKIPPED_NAMED, skipped_warning
from overlap_relevance.model.frame import layer_to_lonlat
from overlap_relevance.model.skipped import (NO_GEOMETRY, NOT_FINITE, OTHER, REASONS, TAKES_PART, UNREADABLE,
                                             reason_counts, skip_codes)

from tools.feedback import RecordingFeedback


def test_skip_codes_name_the_core_reason_of_every_unusable_feature():
    geoms = [*to_crs([square(0, 0)], "EPSG:4326"), None, shapely.Polygon(), shapely.box(10, 95, 11, 96),
             shapely.Polygon([(0, 0), (1, 0), (np.nan, 1), (0, 0)]), None]
    layer = layer_to_lonlat(np.array(geoms, dtype=object), "EPSG:4326")
    unreadable = np.array([False, False, False, False, False, True])  # present in QGIS, GEOS could not read it
    codes = skip_codes(layer, unreadable)
    assert codes.tolist() == [TAKES_PART, NO_GEOMETRY, NO_GEOMETRY, NOT_FINITE, NOT_FINITE, UNREADABLE]
    assert (codes == TAKES_PART).tolist() == layer.usable.tolist()
    assert reason_counts(codes) == {REASONS[UNREADABLE]: 1, REASONS[NO_GEOMETRY]: 2, REASONS[NOT_FINITE]: 2}


def test_skip_codes_count_what_the_core_finds_unusable_even_without_a_mask_of_its_own():
    # A core that finds a feature unusable for a reason this module has no mask for.
    layer = SimpleNamespace(usable=np.array([True, False, False]), missing=np.array([False, True, False]),
                            nonfinite=np.array([False, False, False]))
    assert skip_codes(layer).tolist() == [TAKES_PART, NO_GEOMETRY, OTHER]


def test_the_warning_names_the_first_twenty_by_key_and_counts_the_rest():
    n = SKIPPED_NAMED + 5
    codes = np.full(n + 2, NO_GEOMETRY, dtype=np.int8)
    codes[:2] = TAKES_PART
    codes[5] = NOT_FINITE
    keys = np.array(["ok", "fine", *[f"k{i}" for i in range(n - 1)], None], dtype=object)
    fids = np.arange(1, n + 3)
    text = skipped_warning("reference", "name", keys, fids, codes)
    assert text.startswith(f"{n} of {n + 2} reference feature(s) take no part and were skipped "
                           f"({REASONS[NO_GEOMETRY]}: {n - 1}; {REASONS[NOT_FINITE]}: 1): ")
    assert "name 'k0' (no geometry (NULL or empty))" in text and f"name 'k{SKIPPED_NAMED - 1}' (" in text
    assert f"name 'k3' ({REASONS[NOT_FINITE]})" in text
    assert f"'k{SKIPPED_NAMED}'" not in text and "'ok'" not in text and "'fine'" not in text
    assert text.endswith(", and 5 more.")
    last = skipped_warning("input", "fid", np.array([None], dtype=object), np.array([7]),
                           np.array([NO_GEOMETRY], dtype=np.int8))
    assert "fid NULL at feature id 7 (no geometry (NULL or empty))" in last


def _layers():
    """An input of three squares (one NULL), a reference of two squares and SKIPPED_NAMED + 3 NULL geometries."""
    good = to_crs([square(0, 0), square(100, 0)], "EPSG:4326")
    n_null = SKIPPED_NAMED + 3
    reference = memory_layer([*good, *[None] * n_null], attributes={"name": ["a", "b", *[f"n{i}" for i in
                                                                                         range(n_null)]]})
    inputs = memory_layer([good[0], None, good[1]], attributes={"id": [10, 11, 12]})
    return inputs, reference, n_null


ALGORITHMS = {
    "scorerelevance": {"OUTPUT": "memory:"},
    "relevancepairs": {"OUTPUT": "memory:"},
    "overlaplocation": {"OUTPUT": "memory:"},
    "exactoverlap": {"OUTPUT": "memory:"},
    "matchfeatures": {"OUTPUT": "memory:", "OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"},
    "evaluatemodel": {"MC_PAIRS": 0, "OUTPUT": "TEMPORARY_OUTPUT"},
}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_names_the_skipped_and_counts_who_took_part(provider, algorithm):
    import processing

    inputs, reference, n_null = _layers()
    feedback = RecordingFeedback()
    parameters = {"INPUT": inputs, "REFERENCE": reference, "REFERENCE_KEY": "name", **ALGORITHMS[algorithm]}
    if algorithm != "scorerelevance":
        parameters["INPUT_KEY"] = "id"
    results = processing.run(f"overlaprelevance:{algorithm}", parameters, feedback=feedback)
    assert (results["INPUT_FEATURES"], results["INPUT_SKIPPED"]) == (2, 1)
    assert (results["REFERENCE_FEATURES"], results["REFERENCE_SKIPPED"]) == (2, n_null)
    warnings = [m for m in feedback.messages if "take no part" in m]
    input_key = "fid 2" if algorithm == "scorerelevance" else "id 11"
    assert any(m.startswith("1 of 3 input feature(s)") and f"{input_key} (no geometry (NULL or empty))" in m
               for m in warnings), warnings
    reference_warning = next(m for m in warnings if " reference feature(s)" in m)
    assert reference_warning.startswith(f"{n_null} of {n_null + 2} reference feature(s)")
    assert reference_warning.count("(no geometry (NULL or empty))") == SKIPPED_NAMED
    assert reference_warning.endswith(", and 3 more.") and "name 'n0'" in reference_warning
    assert f"Features taking part: 2 of 3 input and 2 of {n_null + 2} reference features." in feedback.messages
    algorithm_object = __import__("qgis.core", fromlist=["QgsApplication"]).QgsApplication.processingRegistry() \
        .algorithmById(f"overlaprelevance:{algorithm}")
    assert {"INPUT_FEATURES", "INPUT_SKIPPED", "REFERENCE_FEATURES", "REFERENCE_SKIPPED"} <= {
        output.name() for output in algorithm_object.outputDefinitions()}
