"""overlaprelevance:exactoverlap through processing.run on small layers with known overlaps."""

import pytest
import shapely
from qgis.core import QgsProcessingException, QgsProcessingFeatureSourceDefinition

from tools.geometry import ORIGIN, UTM, to_crs
from tools.geometry import square as utm_square
from tools.layers import layer_rows, memory_layer

ALGORITHM = "overlaprelevance:exactoverlap"


def square(x, y, size=40.0):
    return utm_square(x, y, size)


@pytest.fixture(scope="module")
def layers():
    reference = [square(0, 0), square(100, 0), square(200, 0)]
    inputs = [square(0, 0), square(120, 0), square(200, 300)]  # identical, half-shifted, far away
    reference_layer = memory_layer(to_crs(reference, "EPSG:4326"), "EPSG:4326",
                                   {"ref_id": ["r0", "r1", "r2"]}, name="reference")
    input_layer = memory_layer(to_crs(inputs, "EPSG:3857"), "EPSG:3857", {"in_id": [10, 11, 12]}, name="input")
    return input_layer, reference_layer


def run(processing, **parameters):
    parameters.setdefault("OUTPUT", "memory:")
    return processing.run(ALGORITHM, parameters)


def test_known_overlaps_across_crs(provider, qgis_processing, layers):
    import processing

    input_layer, reference_layer = layers
    result = run(processing, INPUT=input_layer, INPUT_KEY="in_id", REFERENCE=reference_layer, REFERENCE_KEY="ref_id")
    rows = {(r["in_key"], r["ref_key"]): r for r in layer_rows(result["OUTPUT"])}
    assert set(rows) == {(10, "r0"), (11, "r1")}
    assert result["PAIR_COUNT"] == 2
    same = rows[(10, "r0")]
    assert same["iou"] == pytest.approx(1.0, abs=1e-6)
    assert same["area_in"] == pytest.approx(1600.0, rel=1e-3)  # true metres, though the input is Web Mercator
    half = rows[(11, "r1")]
    assert half["area_int"] == pytest.approx(800.0, rel=1e-3)
    assert half["iou"] == pytest.approx(1 / 3, abs=1e-3)
    assert half["cov_in"] == pytest.approx(0.5, abs=1e-3)


def test_search_distance_adds_neighbours_within_reach(provider, qgis_processing, layers):
    import processing

    input_layer, reference_layer = layers
    result = run(processing, INPUT=input_layer, REFERENCE=reference_layer, SEARCH_DISTANCE=70.0)
    pairs = {(r["in_key"], r["ref_key"]) for r in layer_rows(result["OUTPUT"])}
    # fids start at 1 in memory layers: the identical square now also reaches r1 (60 m gap)
    assert (1, 2) in pairs and (1, 1) in pairs
    disjoint = [r for r in layer_rows(result["OUTPUT"]) if r["in_key"] == 1 and r["ref_key"] == 2][0]
    assert disjoint["iou"] == 0.0 and disjoint["area_int"] == 0.0


def test_same_layer_never_pairs_a_feature_with_itself(provider, qgis_processing):
    import processing

    layer = memory_layer([square(0, 0), square(20, 0), square(500, 0)], UTM, name="self")
    result = run(processing, INPUT=layer, REFERENCE=layer)
    pairs = {(r["in_key"], r["ref_key"]) for r in layer_rows(result["OUTPUT"])}
    assert pairs == {(1, 2), (2, 1)}


def test_selected_features_only_is_honoured(provider, qgis_processing, layers):
    import processing

    input_layer, reference_layer = layers
    input_layer.selectByIds([2])
    try:
        source = QgsProcessingFeatureSourceDefinition(input_layer.id(), selectedFeaturesOnly=True)
        from qgis.core import QgsProject

        QgsProject.instance().addMapLayer(input_layer, False)
        result = run(processing, INPUT=source, REFERENCE=reference_layer)
    finally:
        input_layer.removeSelection()
    assert {r["in_key"] for r in layer_rows(result["OUTPUT"])} == {2}


def test_a_line_layer_is_refused_clearly(provider, qgis_processing, layers):
    import processing

    lines = memory_layer([shapely.LineString([(0, 0), (1, 1)])], "EPSG:4326", geometry_type="LineString")
    with pytest.raises(QgsProcessingException, match="polygon"):
        run(processing, INPUT=lines, REFERENCE=layers[1])


def test_a_layer_without_crs_is_refused_clearly(provider, qgis_processing, layers):
    import processing

    no_crs = memory_layer([square(0, 0)], None)
    with pytest.raises(QgsProcessingException, match="coordinate reference system"):
        run(processing, INPUT=no_crs, REFERENCE=layers[1])


def test_null_and_invalid_geometries_are_skipped_or_repaired(provider, qgis_processing, layers):
    import processing

    bowtie = shapely.Polygon([(ORIGIN[0], ORIGIN[1]), (ORIGIN[0] + 40, ORIGIN[1] + 40),
                              (ORIGIN[0] + 40, ORIGIN[1]), (ORIGIN[0], ORIGIN[1] + 40)])
    layer = memory_layer([None, bowtie], UTM, name="broken")
    result = run(processing, INPUT=layer, REFERENCE=layers[1])
    rows = layer_rows(result["OUTPUT"])
    assert [r["in_key"] for r in rows] == [2]
    assert rows[0]["area_in"] == pytest.approx(800.0, rel=1e-3)  # the bow-tie's two triangles


def test_qgis_process_json_on_the_sample(qgis_process_cli, tmp_path):
    from tools.qgis_process import REPO_ROOT

    output = tmp_path / "pairs.gpkg"
    sample = REPO_ROOT / "resources" / "sample"
    result = qgis_process_cli.run_json(ALGORITHM, {
        "INPUT": sample / "buildings_mapping.gpkg", "INPUT_KEY": "map_id",
        "REFERENCE": sample / "buildings_cadastre.gpkg", "REFERENCE_KEY": "building_id", "OUTPUT": output,
    })
    assert result["results"]["PAIR_COUNT"] > 200
    assert output.is_file()
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(output)) as db:
        rows = db.execute('SELECT in_key, ref_key, iou FROM "pairs" ORDER BY iou DESC').fetchall()
    assert len(rows) == result["results"]["PAIR_COUNT"]
    assert rows[0][2] > 0.8 and all(0.0 <= iou <= 1.0 for _, _, iou in rows)
    assert rows[0][0].startswith("M") and rows[0][1].startswith("C")
