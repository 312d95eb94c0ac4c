"""Hostile input (issue 8): every corpus case through every algorithm, as input and as reference.

Each run must either succeed with finite, in-range outputs or raise a QgsProcessingException
whose message names the problem (never a Python traceback), and must leave both layers as
they were.
"""

import math
import re

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsWkbTypes
from qgis.PyQt import sip

from tools.corpus import ALGORITHMS, CASES, ROLES, berlin_partner
from tools.feedback import RecordingFeedback
from tools.layers import layer_rows

BY_NAME = {case.name: case for case in CASES}

# Fields that hold a share, a probability or an IoU.
UNIT_FIELDS = {"rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd", "ex_iou", "ex_cov", "ex_covref", "cov_in",
               "cov_ref", "iou", "weight", "level", "m_p"}
NON_NEGATIVE_FIELDS = {"area_in", "area_ref", "area_int", "rel_n", "rank", "component", "m_group"}


def snapshot(layer):
    """Everything that must not change: fields, type, CRS, and every feature's id, attributes and WKB."""
    features = [(f.id(), [None if v is None or (hasattr(v, "isNull") and v.isNull()) else v for v in f.attributes()],
                 bytes(f.geometry().asWkb())) for f in layer.getFeatures()]
    return layer.fields().names(), layer.wkbType(), layer.crs().toWkt(), layer.featureCount(), features


def parameters_for(case, role, algorithm, layer, partner):
    parameters = {"INPUT": layer, "REFERENCE": partner} if role == "input" else {"INPUT": partner, "REFERENCE": layer}
    parameters["OUTPUT"] = "memory:"
    if case.key:
        key = "INPUT_KEY" if role == "input" else "REFERENCE_KEY"
        if algorithm != "scorerelevance" or key == "REFERENCE_KEY":
            parameters[key] = case.key
    if algorithm == "relevancepairs":
        parameters.update(COMPUTE_EXACT=True, GEOMETRY=1)
    if algorithm in ("scorerelevance", "matchfeatures", "relevancepairs", "overlaplocation"):
        parameters["POSITIONAL_UNCERTAINTY"] = 0.5
    if algorithm == "matchfeatures":
        parameters.update(OUTPUT_REFERENCE="memory:", OUTPUT_GROUPS="memory:")
    if algorithm == "overlaplocation":
        parameters["MIN_RELEVANCE"] = 0.0
    return parameters


def check_output(layer, algorithm, input_layer):
    """Finite numbers in range, finite geometries; scorerelevance keeps every input feature as it was."""
    names = layer.fields().names()
    rows = []
    for feature in layer.getFeatures():
        values = dict(zip(names, feature.attributes()))
        for name, value in values.items():
            if isinstance(value, float):
                assert math.isfinite(value), (name, value)
                if name in UNIT_FIELDS:
                    assert -1e-9 <= value <= 1 + 1e-9, (name, value)
            if name in NON_NEGATIVE_FIELDS and isinstance(value, (int, float)):
                assert value >= 0, (name, value)
        geometry = feature.geometry()
        if not geometry.isNull() and algorithm not in ("scorerelevance", "matchfeatures"):
            for vertex in geometry.vertices():
                assert math.isfinite(vertex.x()) and math.isfinite(vertex.y()), geometry.asWkt(3)[:200]
        rows.append(feature)
    if algorithm in ("scorerelevance", "matchfeatures"):
        assert layer.featureCount() == input_layer.featureCount()
        written = [bytes(f.geometry().asWkb()) for f in rows]
        original = [bytes(f.geometry().asWkb()) for f in input_layer.getFeatures()]
        assert written == original
        assert QgsWkbTypes.flatType(layer.wkbType()) == QgsWkbTypes.flatType(input_layer.wkbType())


def run_case(case, role, algorithm, folder):
    """Run one case; returns (output layer or None, error message or None, feedback messages)."""
    import processing

    layer, partner = case.make(folder), case.partner()
    try:
        before = snapshot(layer), snapshot(partner)
        feedback = RecordingFeedback()
        parameters = parameters_for(case, role, algorithm, layer, partner)
        output, error = None, None
        try:
            output = processing.run(f"overlaprelevance:{algorithm}", parameters, feedback=feedback)["OUTPUT"]
        except QgsProcessingException as exception:
            error = str(exception)
        assert (snapshot(layer), snapshot(partner)) == before, "an input layer was modified"
        if output is not None:
            check_output(output, algorithm, parameters["INPUT"])
        return output, error, feedback.messages
    finally:
        # QGIS 3.22 keeps a reference to whatever an exception in processAlgorithm passed through, so these
        # layers would outlive QGIS, and a shapefile layer destroyed after QGIS exits crashes the process.
        sip.delete(layer)
        sip.delete(partner)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_case_succeeds_with_finite_outputs_or_names_the_problem(provider, folder, case, role, algorithm):
    _, error, messages = run_case(case, role, algorithm, folder)
    expected = case.expected_error(role, algorithm)
    assert not any("Traceback" in m for m in messages), messages
    if expected is None:
        assert error is None, f"{case.name} as {role} in {algorithm} failed: {error}"
    else:
        assert error is not None, f"{case.name} as {role} in {algorithm} succeeded; expected {expected!r}"
        assert "Traceback" not in error, error
        assert re.search(expected.format(role=role), error), error


# What some cases must find, beyond "finite or a clear error".
def _run(algorithm, feedback=None, **parameters):
    import processing

    parameters.setdefault("OUTPUT", "memory:")
    return processing.run(f"overlaprelevance:{algorithm}", parameters, feedback=feedback)


def test_features_off_the_globe_get_null_relevance_and_a_warning(provider, folder):
    case = BY_NAME["out_of_range_lonlat"]  # latitudes 95 and -95, longitudes 200 and 1000, one good square
    feedback = RecordingFeedback()
    output = _run("scorerelevance", feedback, INPUT=case.make(folder), REFERENCE=case.partner())["OUTPUT"]
    rows = {row["cid"]: row for row in layer_rows(output)}
    assert rows[0]["rel_score"] is None and rows[3]["rel_score"] is None  # beyond the poles: unusable
    assert rows[1]["rel_n"] == 0 and rows[2]["rel_n"] == 0  # wrapped to -160 and -80: nothing there
    assert rows[4]["rel_match"] is not None
    # Both named by key (the feature id: scorerelevance has no input key) with the core's reason.
    assert any(m.startswith("2 of 5 input feature(s) take no part and were skipped (coordinates not finite")
               and "fid 1 (coordinates not finite, or off the globe in lon/lat)" in m and "fid 4 (" in m
               for m in feedback.messages), feedback.messages
    assert any("Features taking part: 3 of 5 input" in m for m in feedback.messages), feedback.messages


def test_longitudes_beyond_180_find_their_neighbours_across_the_antimeridian(provider, folder):
    case = BY_NAME["pacific_360"]
    for role in ROLES:
        layers = (case.make(folder), case.partner())
        inputs = layers if role == "input" else layers[::-1]
        rows = layer_rows(_run("exactoverlap", INPUT=inputs[0], REFERENCE=inputs[1])["OUTPUT"])
        pairs = {(r["in_key"], r["ref_key"]) if role == "input" else (r["ref_key"], r["in_key"]) for r in rows
                 if r["area_int"] > 0}
        assert pairs == {(1, 1), (2, 2)}, (role, rows)  # fids: 0..360 data and its -180..180 twin overlap


def test_triangles_are_read_as_polygons(provider, folder):
    case = BY_NAME["triangles_gpkg"]
    rows = layer_rows(_run("exactoverlap", INPUT=case.make(folder), REFERENCE=case.partner())["OUTPUT"])
    assert {r["in_key"] for r in rows if r["area_int"] > 0} == {1, 2}


@pytest.mark.parametrize("algorithm, name", [
    ("exactoverlap", "SEARCH_DISTANCE"), ("scorerelevance", "POSITIONAL_UNCERTAINTY"), ("scorerelevance", "THRESHOLD"),
    ("relevancepairs", "THRESHOLD"), ("overlaplocation", "LEVEL"), ("overlaplocation", "MIN_WEIGHT"),
    ("overlaplocation", "MIN_RELEVANCE")])
def test_nan_parameters_are_refused_by_name(provider, algorithm, name):
    partner = berlin_partner()
    with pytest.raises(QgsProcessingException, match=f"\\({name}\\) must be a finite number"):
        _run(algorithm, INPUT=partner, REFERENCE=berlin_partner(), **{name: math.nan})


@pytest.mark.parametrize("algorithm, extra", [("exactoverlap", {}), ("relevancepairs", {"GEOMETRY": 0})])
def test_a_table_sent_to_a_shapefile_is_loaded_from_the_dbf(provider, tmp_path, algorithm, extra):
    """OGR writes a geometryless table as a lone .dbf; the result and the layer to load say so."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
        QgsVectorLayer,
    )

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    destination = QgsProcessingOutputLayerDefinition(str(tmp_path / "pairs.shp"), QgsProject.instance())
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"overlaprelevance:{algorithm}")
    results, ok = algorithm.run({"INPUT": berlin_partner(), "REFERENCE": berlin_partner(), "OUTPUT": destination,
                                 **extra}, context, QgsProcessingFeedback())
    assert ok and results["OUTPUT"] == str(tmp_path / "pairs.dbf")
    assert list(context.layersToLoadOnCompletion()) == [results["OUTPUT"]]
    assert QgsVectorLayer(results["OUTPUT"], "pairs", "ogr").featureCount() > 0


def test_a_pole_held_by_a_polar_crs_square_is_found_and_measured(provider, folder):
    """A square round the pole in polar stereographic reaches lon/lat as a ring that winds round the pole."""
    case = BY_NAME["polar_stereographic"]
    rows = layer_rows(_run("relevancepairs", INPUT=case.make(folder), REFERENCE=case.partner(),
                           COMPUTE_EXACT=True)["OUTPUT"])
    assert {r["ref_key"] for r in rows} == {1, 3}  # the densified polar cap and the square at the pole
    for row in rows:
        assert row["ex_iou"] > 0 and row["rel_score"] == pytest.approx(row["ex_iou"], abs=0.03)


def test_a_whole_world_box_and_a_polar_box_are_scored(provider, folder):
    """Feature 3 (cid) is the whole world, feature 4 a box round the north pole: no feature is left out for its
    size (issue 25). The world contains every partner box, so its IoU with the largest one, box(-10, -10, 10,
    10), is that box's share of the globe."""
    case = BY_NAME["world_edges"]
    feedback = RecordingFeedback()
    rows = {r["cid"]: r for r in layer_rows(_run("scorerelevance", feedback, INPUT=case.make(folder),
                                                 REFERENCE=case.partner())["OUTPUT"])}
    assert rows[0]["rel_match"] is not None
    # Every reference feature lies inside the whole world: the best (the largest) is wholly covered by it.
    assert rows[3]["rel_n"] == 3 and rows[3]["rel_covref"] == pytest.approx(1.0, abs=1e-6)
    # The box's share of the sphere with its edges on the parallels: 20° · (sin 10° − sin −10°) / 4π. Its
    # 2,200 km edges are straight lines in the pair's frame, which bends them by about 1 % of its area: the
    # run says so in its long-edge warning.
    share = math.radians(20.0) * 2 * math.sin(math.radians(10.0)) / (4 * math.pi)
    assert rows[3]["rel_score"] == pytest.approx(share, rel=2e-2)
    assert rows[4]["rel_match"] is not None and rows[4]["rel_n"] >= 1
    assert not any("skipped" in m or "90°" in m for m in feedback.messages), feedback.messages
    assert any("edges longer than 50 km" in m for m in feedback.messages), feedback.messages
