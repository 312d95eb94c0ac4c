"""Outputs (issue 8): every algorithm writes GeoPackage, Shapefile, CSV and memory layers alike,
and the same input gives identical values run after run."""

import math

import pytest
import shapely
from qgis.core import QgsVectorLayer

from tools.corpus import ALGORITHMS, BERLIN, berlin_partner, circle, metres_box
from tools.layers import layer_rows, memory_layer

KEY = "名前"


@pytest.fixture(scope="module")
def mixed_input():
    """Plain, holed, self-intersecting, large and antimeridian features, with non-ASCII and long field names."""
    geoms = [
        metres_box(*BERLIN, 20.0), metres_box(*BERLIN, 20.0, dx=15),
        shapely.Polygon(metres_box(*BERLIN, 60.0, dx=-20, dy=-20).exterior, [metres_box(*BERLIN, 10.0).exterior]),
        shapely.Polygon([(13.40, 52.52), (13.4003, 52.5202), (13.4003, 52.52), (13.40, 52.5202)]),  # bow-tie
        circle(*BERLIN, 40.0, 4000),
        shapely.box(179.9999, -0.0001, 180, 0.0001),
    ]
    n = len(geoms)
    return memory_layer(geoms, "EPSG:4326", {KEY: [f"ü{i}" for i in range(n)], "höhe": [float(i) for i in range(n)],
                                             "a_long_field_name": list(range(n))}, name="mixed")


def parameters(algorithm, layer, output):
    extra = {"scorerelevance": {}, "relevancepairs": {"COMPUTE_EXACT": True, "GEOMETRY": 1},
             "overlaplocation": {"MIN_RELEVANCE": 0.0}, "exactoverlap": {},
             "matchfeatures": {"OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"}}[algorithm]
    if algorithm != "scorerelevance":
        extra["INPUT_KEY"] = KEY
    if algorithm != "exactoverlap":
        extra["POSITIONAL_UNCERTAINTY"] = 0.7
    return {"INPUT": layer, "REFERENCE": berlin_partner(), "SEARCH_DISTANCE": 5.0, "OUTPUT": output, **extra}


def run(algorithm, layer, output="memory:"):
    import processing

    return processing.run(f"overlaprelevance:{algorithm}", parameters(algorithm, layer, output))["OUTPUT"]


def rows_with_geometry(layer):
    return [(row, bytes(feature.geometry().asWkb()))
            for row, feature in zip(layer_rows(layer), layer.getFeatures())]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_input_gives_identical_values(provider, mixed_input, algorithm):
    first, second = rows_with_geometry(run(algorithm, mixed_input)), rows_with_geometry(run(algorithm, mixed_input))
    assert first and first == second


def _as_text(value):
    """A value as CSV or dBase would hold it, for comparing across formats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def _comparable(value):
    if isinstance(value, str):
        try:
            return _comparable(float(value)) if value else None
        except ValueError:
            return value
    if isinstance(value, float) and value == int(value) and math.isfinite(value):
        return int(value)
    return value


@pytest.mark.parametrize("extension", ["gpkg", "shp", "csv"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_output_format_holds_the_memory_result(provider, mixed_input, algorithm, extension, tmp_path):
    expected = layer_rows(run(algorithm, mixed_input))
    path = run(algorithm, mixed_input, str(tmp_path / f"out.{extension}"))
    layer = QgsVectorLayer(path, "written", "ogr")
    assert layer.isValid(), path  # a table sent to a .shp is reported as the .dbf OGR really wrote
    rows = layer_rows(layer)
    assert len(rows) == len(expected) > 0
    for row, want in zip(rows, expected):
        for name, value in want.items():
            if name not in row:  # dBase truncates long names; ours all fit in 10 characters
                assert name == "a_long_field_name" and extension == "shp"
                continue
            got, value = _comparable(row[name]), _comparable(value)
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (name, got, value)
            else:
                assert _as_text(got) == _as_text(value), (name, got, value)
    if algorithm in ("scorerelevance", "overlaplocation", "relevancepairs") and extension != "csv":
        assert layer.featureCount() == sum(1 for f in layer.getFeatures() if not f.geometry().isNull())
