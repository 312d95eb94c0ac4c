"""overlaprelevance:scorerelevance through processing.run on layers with known overlaps."""

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeatureSourceDefinition, QgsProject

from tools.geometry import UTM, square, to_crs
from tools.layers import layer_rows, memory_layer

ALGORITHM = "overlaprelevance:scorerelevance"
# Input features: identical to r0; half-shifted onto r1; far from everything; no geometry.
INPUTS = [square(0, 0), square(110, 0), square(400, 400), None]
REFERENCES = [square(0, 0), square(100, 0), square(200, 0)]


def layers(input_crs="EPSG:3857", reference_crs="EPSG:4326"):
    input_layer = memory_layer(to_crs(INPUTS, input_crs), input_crs,
                               {"name": ["same", "half", "far", "none"]}, name="input")
    reference_layer = memory_layer(to_crs(REFERENCES, reference_crs), reference_crs,
                                   {"ref_id": ["r0", "r1", "r2"]}, name="reference")
    return input_layer, reference_layer


def run(**parameters):
    import processing

    parameters.setdefault("OUTPUT", "memory:")
    return processing.run(ALGORITHM, parameters)["OUTPUT"]


def by_name(layer):
    return {row["name"]: row for row in layer_rows(layer)}


def test_known_overlaps(provider):
    input_layer, reference_layer = layers()
    rows = by_name(run(INPUT=input_layer, REFERENCE=reference_layer, REFERENCE_KEY="ref_id"))
    assert rows["same"]["rel_match"] == "r0"
    assert rows["same"]["rel_score"] == pytest.approx(1.0, abs=0.03)
    assert rows["same"]["rel_p"] > 0.95
    assert rows["same"]["rel_cov"] == pytest.approx(1.0, abs=0.03)
    assert rows["half"]["rel_match"] == "r1"
    assert rows["half"]["rel_score"] == pytest.approx(1 / 3, abs=0.03)
    assert rows["half"]["rel_cov"] == pytest.approx(0.5, abs=0.03)
    assert rows["half"]["rel_p"] < 0.05  # IoU 1/3 is below the 0.5 threshold
    assert rows["far"]["rel_match"] is None
    assert rows["far"]["rel_n"] == 0 and rows["far"]["rel_score"] == 0.0
    assert all(rows["none"][k] is None for k in ("rel_match", "rel_score", "rel_p", "rel_n"))
    for row in rows.values():
        for key in ("rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd"):
            value = row[key]
            assert value is None or (np.isfinite(value) and 0.0 <= value <= 1.0)


def test_output_keeps_input_fields_geometry_and_crs(provider):
    input_layer, reference_layer = layers()
    output = run(INPUT=input_layer, REFERENCE=reference_layer)
    assert output.crs() == input_layer.crs()
    assert output.fields().names()[:1] == ["name"]
    before = {f["name"]: f.geometry().asWkt(6) for f in input_layer.getFeatures()}
    after = {f["name"]: f.geometry().asWkt(6) for f in output.getFeatures()}
    assert before == after
    assert input_layer.fields().names() == ["name"]  # the input layer is never modified


def test_positional_uncertainty_lowers_the_expected_iou_of_identical_squares(provider):
    input_layer, reference_layer = layers()
    exact = by_name(run(INPUT=input_layer, REFERENCE=reference_layer))["same"]
    fuzzy = by_name(run(INPUT=input_layer, REFERENCE=reference_layer, POSITIONAL_UNCERTAINTY=3.0))["same"]
    assert fuzzy["rel_score"] < exact["rel_score"] - 0.1
    assert fuzzy["rel_sd"] > exact["rel_sd"]
    assert 0.0 < fuzzy["rel_p"] < 1.0


# PROJ's inverse of ETRS89-LAEA (EPSG:3035) uses a series for the authalic latitude that moves points by
# about 0.3 mm here, so the data itself differs by that much when it arrives in 3035; the others round-trip
# to well below a micrometre.
@pytest.mark.parametrize("crs_pair, tolerance", [(("EPSG:4326", "EPSG:25833"), 1e-6),
                                                 (("EPSG:32633", "EPSG:3857"), 1e-6),
                                                 (("EPSG:25833", "EPSG:25833"), 1e-6),
                                                 (("EPSG:3035", "EPSG:4326"), 1e-4)])
def test_results_do_not_depend_on_the_crs_the_data_arrives_in(provider, crs_pair, tolerance):
    reference_rows = by_name(run(INPUT=layers()[0], REFERENCE=layers()[1], POSITIONAL_UNCERTAINTY=1.0))
    rows = by_name(run(INPUT=layers(*crs_pair)[0], REFERENCE=layers(*crs_pair)[1], POSITIONAL_UNCERTAINTY=1.0))
    for name in ("same", "half"):
        for key in ("rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd"):
            assert rows[name][key] == pytest.approx(reference_rows[name][key], abs=tolerance), (name, key)


def test_same_layer_never_matches_itself(provider):
    layer = memory_layer([square(0, 0), square(5, 0), square(300, 0)], UTM, {"name": ["a", "b", "c"]})
    rows = by_name(run(INPUT=layer, REFERENCE=layer))
    assert rows["a"]["rel_match"] == 2 and rows["b"]["rel_match"] == 1
    assert rows["c"]["rel_n"] == 0


def test_selected_features_only(provider):
    input_layer, reference_layer = layers()
    QgsProject.instance().addMapLayer(input_layer, False)
    input_layer.selectByIds([2])
    source = QgsProcessingFeatureSourceDefinition(input_layer.id(), selectedFeaturesOnly=True)
    rows = layer_rows(run(INPUT=source, REFERENCE=reference_layer))
    assert [r["name"] for r in rows] == ["half"]


def test_field_collisions_and_long_prefixes_are_refused(provider):
    input_layer, reference_layer = layers()
    scored_before = memory_layer(to_crs(INPUTS, "EPSG:3857"), "EPSG:3857", {"rel_score": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(QgsProcessingException, match="already has a field named 'rel_score'"):
        run(INPUT=scored_before, REFERENCE=reference_layer)
    rows = layer_rows(run(INPUT=scored_before, REFERENCE=reference_layer, FIELD_PREFIX="r2_"))
    assert rows[0]["rel_score"] == 1.0 and rows[0]["r2_score"] > 0.9
    # The 10-character limit is dBase's: a shapefile has it, a GeoPackage or a memory layer does not.
    long_names = layer_rows(run(INPUT=input_layer, REFERENCE=reference_layer, FIELD_PREFIX="relevance_"))
    assert long_names[0]["relevance_covref"] > 0.9


def test_prefix_checks_come_before_any_feature_is_read(provider, tmp_path):
    """checkParameterValues (what the dialog calls on Run) knows the output format and the input's fields."""
    from qgis.core import QgsApplication, QgsProcessingContext

    input_layer, reference_layer = layers()
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()

    def check(**more):
        return algorithm.checkParameterValues({"INPUT": input_layer, "REFERENCE": reference_layer, **more}, context)

    assert check(FIELD_PREFIX="relevance_", OUTPUT=str(tmp_path / "long.gpkg")) == (True, "")
    ok, message = check(FIELD_PREFIX="relevance_", OUTPUT=str(tmp_path / "long.shp"))
    assert not ok and "longer than 10" in message and "shapefile" in message
    assert check(FIELD_PREFIX="rel_", OUTPUT=str(tmp_path / "short.shp")) == (True, "")
    ok, message = check(FIELD_PREFIX="na", OUTPUT="memory:")  # "name" is an input field: na + me
    assert ok, message
    clash = memory_layer(to_crs(INPUTS, "EPSG:3857"), "EPSG:3857", {"REL_P": [1.0, 2.0, 3.0, 4.0]})
    ok, message = algorithm.checkParameterValues({"INPUT": clash, "REFERENCE": reference_layer,
                                                  "OUTPUT": "memory:"}, context)
    assert not ok and "already has a field named 'rel_p'" in message
    # A check schedules nothing: the dialog would try to load a destination named in a check.
    from qgis.core import QgsProcessingOutputLayerDefinition

    for destination in ("TEMPORARY_OUTPUT", str(tmp_path / "long.shp")):
        definition = QgsProcessingOutputLayerDefinition(destination, QgsProject.instance())
        check(FIELD_PREFIX="relevance_", OUTPUT=definition)
    assert not context.layersToLoadOnCompletion()
    ok, message = check(FIELD_PREFIX="relevance_", OUTPUT=definition)
    assert not ok and "longer than 10" in message  # a definition's sink is read too
    with pytest.raises(QgsProcessingException, match="longer than 10"):
        run(INPUT=input_layer, REFERENCE=reference_layer, FIELD_PREFIX="relevance_", OUTPUT=str(tmp_path / "x.shp"))
    assert not (tmp_path / "x.shp").exists()  # refused before anything was written


def test_sigma_field_and_model_file_are_checked_early(provider, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext

    input_layer, reference_layer = layers()
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()
    base = {"INPUT": input_layer, "REFERENCE": reference_layer, "OUTPUT": "memory:"}
    ok, message = algorithm.checkParameterValues({**base, "POSITIONAL_UNCERTAINTY_FIELD": "name"}, context)
    assert not ok and "must be numeric" in message
    not_a_model = tmp_path / "model.npz"
    not_a_model.write_bytes(b"not a zip file")
    ok, message = algorithm.checkParameterValues({**base, "MODEL": str(not_a_model)}, context)
    assert not ok and message.startswith("Model file:")


def test_missing_and_corrupt_model_files_are_refused(provider, tmp_path):
    input_layer, reference_layer = layers()
    with pytest.raises(QgsProcessingException, match="not found"):
        run(INPUT=input_layer, REFERENCE=reference_layer, MODEL=str(tmp_path / "missing.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(QgsProcessingException, match="not a readable"):
        run(INPUT=input_layer, REFERENCE=reference_layer, MODEL=str(corrupt))


def test_per_feature_uncertainty_field_overrides_the_parameter(provider):
    input_layer, reference_layer = layers()
    with_sigma = memory_layer(to_crs(INPUTS, "EPSG:3857"), "EPSG:3857",
                              {"name": ["same", "half", "far", "none"], "sigma": [3.0, 0.0, 0.0, 0.0]})
    rows = by_name(run(INPUT=with_sigma, REFERENCE=reference_layer, POSITIONAL_UNCERTAINTY_FIELD="sigma"))
    plain = by_name(run(INPUT=input_layer, REFERENCE=reference_layer, POSITIONAL_UNCERTAINTY=3.0))
    assert rows["same"]["rel_score"] == pytest.approx(plain["same"]["rel_score"], abs=1e-9)
    assert rows["half"]["rel_sd"] < plain["half"]["rel_sd"]


def test_results_do_not_depend_on_how_pairs_are_cut_into_chunks(provider, monkeypatch):
    """Features are written while later chunks are scored: with many small chunks, each feature still
    gets its best match over all its candidates."""
    from overlap_relevance.model import pairs

    rng = np.random.default_rng(5)
    offsets = rng.uniform(0, 400, (120, 2))
    inputs = [square(x, y) for x, y in offsets]
    references = [square(x + dx, y + dy) for (x, y) in offsets for dx, dy in ((4, 0), (-9, 3))]
    input_layer = memory_layer(to_crs(inputs, "EPSG:3857"), "EPSG:3857", {"name": [str(i) for i in range(120)]})
    reference_layer = memory_layer(to_crs(references, "EPSG:4326"), "EPSG:4326",
                                   {"ref_id": [f"r{i}" for i in range(240)]})
    one_chunk = layer_rows(run(INPUT=input_layer, REFERENCE=reference_layer, REFERENCE_KEY="ref_id"))
    monkeypatch.setattr(pairs, "DEFAULT_CHUNK_VERTICES", 60)  # about six pairs per chunk
    many_chunks = layer_rows(run(INPUT=input_layer, REFERENCE=reference_layer, REFERENCE_KEY="ref_id"))
    assert len(many_chunks) == 120
    # Keys, matches and counts are identical. Scores agree to 1e-6 relative, not bit for bit: the
    # network's matrix products use BLAS kernels chosen by matrix shape, which add in different orders
    # for different chunk sizes on some CPUs (4e-9 apart in float32, measured on an AMD EPYC and on this
    # project's Intel machines; the network runs in float64 now).
    for few, many in zip(one_chunk, many_chunks):
        assert few.keys() == many.keys()
        for key, value in few.items():
            if isinstance(value, float):
                assert many[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (few["name"], key)
            else:
                assert many[key] == value, (few["name"], key)
    assert sum(row["rel_n"] >= 2 for row in one_chunk) > 60  # features with several candidates, across chunks


def test_a_model_file_is_accepted_whatever_its_name(provider, tmp_path, qgis_process_cli):
    """trainmodel's OUTPUT_MODEL=models/mine used to write 'mine', which MODEL then refused for its extension."""
    import shutil

    from overlap_relevance.model.network import BUNDLED_MODEL
    from tools.qgis_process import REPO_ROOT

    mine = tmp_path / "models" / "mine"
    mine.parent.mkdir()
    shutil.copyfile(BUNDLED_MODEL, mine)
    input_layer, reference_layer = layers()
    rows = by_name(run(INPUT=input_layer, REFERENCE=reference_layer, MODEL=str(mine)))
    assert rows["same"]["rel_score"] == pytest.approx(1.0, abs=0.03)
    sample = REPO_ROOT / "resources" / "sample"
    result = qgis_process_cli.run_json(ALGORITHM, {
        "INPUT": sample / "buildings_mapping.gpkg", "REFERENCE": sample / "buildings_cadastre.gpkg",
        "MODEL": mine, "OUTPUT": tmp_path / "scored.gpkg"})
    assert result["results"]["OUTPUT"]
