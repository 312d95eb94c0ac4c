"""overlaprelevance:relevancepairs and overlaprelevance:overlaplocation on layers with known overlaps."""

import pytest
from qgis.core import QgsGeometry, QgsPointXY

from test_score_relevance import layers
from tools.geometry import square
from tools.layers import layer_rows


def run(algorithm, **parameters):
    import processing

    parameters.setdefault("OUTPUT", "memory:")
    return processing.run(f"overlaprelevance:{algorithm}", parameters)["OUTPUT"]


def test_pairs_are_ranked_and_agree_with_exact(provider):
    input_layer, reference_layer = layers()
    output = run("relevancepairs", INPUT=input_layer, INPUT_KEY="name", REFERENCE=reference_layer,
                 REFERENCE_KEY="ref_id", SEARCH_DISTANCE=100.0, COMPUTE_EXACT=True)
    rows = layer_rows(output)
    by_pair = {(r["in_key"], r["ref_key"]): r for r in rows}
    assert by_pair[("same", "r0")]["rank"] == 1 and by_pair[("half", "r1")]["rank"] == 1
    assert by_pair[("same", "r0")]["ex_iou"] == pytest.approx(1.0, abs=1e-9)
    assert by_pair[("half", "r1")]["ex_iou"] == pytest.approx(1 / 3, abs=1e-6)
    for row in rows:
        assert row["rel_score"] == pytest.approx(row["ex_iou"], abs=0.03)
        assert row["rel_cov"] == pytest.approx(row["ex_cov"], abs=0.03)
    ranks = {}
    for row in rows:
        ranks.setdefault(row["in_key"], []).append((row["rank"], -row["rel_score"]))
    for values in ranks.values():
        assert sorted(r for r, _ in values) == list(range(1, len(values) + 1))
        assert [s for _, s in sorted(values)] == sorted(s for _, s in values)


def test_pair_lines_join_the_centroids_in_the_input_crs(provider):
    input_layer, reference_layer = layers()
    output = run("relevancepairs", INPUT=input_layer, REFERENCE=reference_layer, GEOMETRY=1)
    assert output.crs() == input_layer.crs()
    features = list(output.getFeatures())
    assert features and all(f.geometry().type() == 1 for f in features)  # lines
    same = [f for f in features if f["in_key"] == 1 and f["ref_key"] == 1][0]
    start, end = same.geometry().asPolyline()
    assert start.distance(end) < 1e-3  # identical squares: both centroids in one place (EPSG:3857 units)


def test_ellipses_cover_the_true_overlap_centroid(provider):
    input_layer, reference_layer = layers(input_crs="EPSG:25833", reference_crs="EPSG:4326")
    output = run("overlaplocation", INPUT=input_layer, INPUT_KEY="name", REFERENCE=reference_layer,
                 POSITIONAL_UNCERTAINTY=0.5, LEVEL=0.99)
    assert output.crs() == input_layer.crs()
    rows = list(output.getFeatures())
    assert {f["in_key"] for f in rows} == {"same", "half"}  # the far feature has no candidate
    truth = {"same": square(0, 0).centroid, "half": square(110, 0).intersection(square(100, 0)).centroid}
    for name, centroid in truth.items():
        ellipses = [f.geometry() for f in rows if f["in_key"] == name]
        point = QgsGeometry.fromPointXY(QgsPointXY(centroid.x, centroid.y))
        assert any(e.contains(point) for e in ellipses), name
        assert all(0.0 < f["weight"] <= 1.0 and f["level"] == pytest.approx(0.99) for f in rows)
        assert max(e.area() for e in ellipses) < 400.0  # smaller than the 20 m squares themselves


def test_minimum_relevance_filters_pairs(provider):
    input_layer, reference_layer = layers()
    output = run("overlaplocation", INPUT=input_layer, INPUT_KEY="name", REFERENCE=reference_layer,
                 MIN_RELEVANCE=0.5)
    assert {f["in_key"] for f in output.getFeatures()} == {"same"}
