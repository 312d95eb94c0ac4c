"""Outputs never overwrite inputs, and one layer is one layer however it is spelt (issue 28, faults 1 and 4)."""

import hashlib
import os
import shutil

import pytest
from osgeo import ogr, osr
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingOutputLayerDefinition,
    QgsProject,
    QgsVectorLayer,
)

from tools.corpus import ALGORITHMS, BERLIN, metres_box
from tools.layers import layer_rows

#: Every destination of every algorithm that has one, with the parameters it needs besides INPUT/REFERENCE.
OUTPUTS = {
    "scorerelevance": ("OUTPUT",),
    "relevancepairs": ("OUTPUT",),
    "overlaplocation": ("OUTPUT",),
    "exactoverlap": ("OUTPUT",),
    "matchfeatures": ("OUTPUT", "OUTPUT_REFERENCE", "OUTPUT_GROUPS"),
    "evaluatemodel": ("OUTPUT",),
    "trainmodel": ("OUTPUT_MODEL",),
}


def _write_layers(path, names, driver="GPKG", offset=0.0):
    """A file holding polygon layers ``names``, each three squares round Berlin with a unique key k."""
    data = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    for j, name in enumerate(names):
        layer = data.CreateLayer(name, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("k", ogr.OFTInteger))
        for i in range(3):
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("k", 10 * j + i)
            feature.SetGeometry(ogr.CreateGeometryFromWkb(metres_box(*BERLIN, 20.0, dx=15 * i + offset).wkb))
            layer.CreateFeature(feature)
    data = None
    return str(path)


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def two(tmp_path):
    """two.gpkg with layers a and b (the issue's case), and a symbolic link to it."""
    path = _write_layers(tmp_path / "two.gpkg", ["a", "b"])
    os.symlink(path, tmp_path / "link.gpkg")
    (tmp_path / "sub").mkdir()
    return tmp_path


def _check(algorithm, parameters):
    alg = QgsApplication.processingRegistry().createAlgorithmById(f"overlaprelevance:{algorithm}")
    return alg.checkParameterValues(parameters, QgsProcessingContext())


def _base(folder, algorithm):
    parameters = {"INPUT": f"{folder}/two.gpkg|layername=a", "REFERENCE": f"{folder}/two.gpkg|layername=b"}
    for name in OUTPUTS[algorithm]:
        parameters[name] = "TEMPORARY_OUTPUT"
    return parameters


def _spellings(folder):
    """Destinations that are two.gpkg (or its layer a), spelt every way QGIS accepts."""
    return {
        "absolute": f"{folder}/two.gpkg",
        "relative": "two.gpkg",
        "dotted": "sub/../two.gpkg",
        "symlink": f"{folder}/link.gpkg",
        "layername": f"{folder}/two.gpkg|layername=a",
        "layername other case": f"{folder}/two.gpkg|layername=A",
        "ogr uri": f"ogr:dbname='{folder}/two.gpkg' table=\"a\" (geom)",
        "definition": QgsProcessingOutputLayerDefinition(f"{folder}/two.gpkg"),
        "no extension": f"{folder}/two",
    }


@pytest.mark.parametrize("algorithm", sorted(OUTPUTS))
def test_no_output_may_overwrite_an_input(provider, two, monkeypatch, algorithm):
    monkeypatch.chdir(two)
    for output in OUTPUTS[algorithm]:
        for spelling, destination in _spellings(two).items():
            if output in ("OUTPUT_MODEL",) or algorithm == "evaluatemodel":
                if spelling in ("layername", "layername other case", "ogr uri", "definition"):
                    continue  # a file destination takes a plain path
                if spelling == "no extension":
                    continue  # .html / .npz is added: another file
            ok, message = _check(algorithm, {**_base(two, algorithm), output: destination})
            assert not ok, (output, spelling)
            assert "would overwrite" in message and "Choose another file" in message, (output, spelling, message)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_new_layer_in_the_inputs_geopackage_is_allowed(provider, two, algorithm):
    for output in OUTPUTS[algorithm]:
        ok, message = _check(algorithm, {**_base(two, algorithm), output: f"{two}/two.gpkg|layername=new_{output}"})
        assert ok, message


def test_the_model_file_is_an_input(provider, tmp_path):
    from tools.models import numpy_model_file

    _write_layers(tmp_path / "x.gpkg", ["x"])
    numpy_model_file(tmp_path / "m.npz", hidden=(4,), components=1)
    parameters = {"INPUT": str(tmp_path / "x.gpkg"), "REFERENCE": str(tmp_path / "x.gpkg"),
                  "MODEL": str(tmp_path / "m.npz"), "OUTPUT_MODEL": str(tmp_path / "m.npz")}
    ok, message = _check("trainmodel", parameters)
    assert not ok and "model file" in message.lower() and "would overwrite" in message
    ok, message = _check("evaluatemodel", {**parameters, "OUTPUT": str(tmp_path / "m.npz")})
    assert not ok and "would overwrite" in message


def test_a_shapefile_is_all_its_parts(provider, tmp_path):
    """A table sent to x.shp is written as x.dbf: the attribute file of an input shapefile."""
    _write_layers(tmp_path / "x.shp", ["x"], driver="ESRI Shapefile")
    for destination in ("x.shp", "x.dbf", "x.shx"):
        ok, message = _check("exactoverlap", {"INPUT": str(tmp_path / "x.shp"), "REFERENCE": str(tmp_path / "x.shp"),
                                              "OUTPUT": str(tmp_path / destination)})
        assert not ok and "would overwrite" in message, destination


def test_two_outputs_may_not_share_a_file(provider, two, monkeypatch):
    monkeypatch.chdir(two)
    base = _base(two, "matchfeatures")
    for first, second in (("OUTPUT", "OUTPUT_REFERENCE"), ("OUTPUT", "OUTPUT_GROUPS"),
                          ("OUTPUT_REFERENCE", "OUTPUT_GROUPS")):
        for a, b in ((f"{two}/out.gpkg", f"{two}/out.gpkg"), (f"{two}/out.gpkg", "out.gpkg"),
                     (f"{two}/out.gpkg|layername=x", f"ogr:dbname='{two}/out.gpkg' table=\"x\" (geom)"),
                     (f"{two}/out.shp", f"{two}/out.dbf")):
            ok, message = _check("matchfeatures", {**base, first: a, second: b})
            assert not ok and "both write to" in message and "own file" in message, (first, second, a, b)
    ok, message = _check("matchfeatures", {**base, "OUTPUT": f"{two}/out.gpkg|layername=m_in",
                                           "OUTPUT_REFERENCE": f"{two}/out.gpkg|layername=m_ref"})
    assert ok, message


def test_temporary_and_memory_outputs_are_never_refused(provider, two):
    for value in ("TEMPORARY_OUTPUT", "memory:", "memory:result", QgsProcessingOutputLayerDefinition("memory:")):
        base = _base(two, "matchfeatures")
        ok, message = _check("matchfeatures", {**base, "OUTPUT": value, "OUTPUT_REFERENCE": value,
                                               "OUTPUT_GROUPS": value})
        assert ok, message


def _layer_counts(path):
    data = ogr.Open(str(path))
    counts = {data.GetLayer(i).GetName(): data.GetLayer(i).GetFeatureCount() for i in range(data.GetLayerCount())}
    data = None
    return counts


def test_issue_cases_fail_cleanly_and_leave_the_files_whole(provider, two):
    """The three cases of issue 28 through processing.run: each refused, no file touched."""
    import processing

    gpkg = f"{two}/two.gpkg"
    before = _digest(gpkg)
    reference = _write_layers(two / "ref.gpkg", ["ref"])
    reference_before = _digest(reference)
    cases = [
        ("scorerelevance", {"INPUT": f"{gpkg}|layername=a", "REFERENCE": f"{gpkg}|layername=b", "OUTPUT": gpkg}),
        ("matchfeatures", {"INPUT": f"{gpkg}|layername=a", "REFERENCE": reference, "OUTPUT": "memory:",
                           "OUTPUT_REFERENCE": reference, "OUTPUT_GROUPS": "memory:"}),
        ("matchfeatures", {"INPUT": f"{gpkg}|layername=a", "REFERENCE": reference, "OUTPUT": f"{two}/out.gpkg",
                           "OUTPUT_REFERENCE": f"{two}/out.gpkg", "OUTPUT_GROUPS": "memory:"}),
    ]
    for algorithm, parameters in cases:
        with pytest.raises(QgsProcessingException, match="overwrite"):
            processing.run(f"overlaprelevance:{algorithm}", parameters)
    assert _digest(gpkg) == before and _digest(reference) == reference_before
    assert not (two / "out.gpkg").exists()


def test_a_new_layer_in_the_inputs_geopackage_keeps_the_inputs(provider, two):
    """Writing the result as a new layer of the input's GeoPackage (QGIS's "ogr:" destination, which the
    dialog's "Save to GeoPackage" gives) adds it and keeps a and b whole."""
    import processing

    gpkg = f"{two}/two.gpkg"

    def table(path, name):
        return f"ogr:dbname='{path}' table=\"{name}\" (geom)"

    processing.run("overlaprelevance:scorerelevance", {"INPUT": f"{gpkg}|layername=a",
                                                       "REFERENCE": f"{gpkg}|layername=b",
                                                       "OUTPUT": table(gpkg, "scored")})
    processing.run("overlaprelevance:matchfeatures", {"INPUT": f"{gpkg}|layername=a", "REFERENCE": f"{gpkg}|layername=b",
                                                      "OUTPUT": table(two / "m.gpkg", "m_in"),
                                                      "OUTPUT_REFERENCE": table(two / "m.gpkg", "m_ref"),
                                                      "OUTPUT_GROUPS": table(two / "m.gpkg", "groups")})
    assert _layer_counts(gpkg) == {"a": 3, "b": 3, "scored": 3}
    assert _layer_counts(two / "m.gpkg") == {"m_in": 3, "m_ref": 3, "groups": 3}


# --- Fault 4: one layer under several spellings never matches itself -----------------------------------------

def _one_layer_spellings(folder):
    """The single-layer x.gpkg (layer x), spelt every way QGIS accepts as a feature source."""
    path = f"{folder}/x.gpkg"
    layer = QgsVectorLayer(f"{path}|layername=x", "x in the project", "ogr")
    QgsProject.instance().addMapLayer(layer)
    return {
        "path": path,
        "layername": f"{path}|layername=x",
        "layerid": f"{path}|layerid=0",
        "relative": "x.gpkg",
        "dotted": "sub/../x.gpkg",
        "symlink": f"{folder}/link.gpkg",
        "layer object": layer,
        "project layer id": layer.id(),
        "source definition": QgsProcessingFeatureSourceDefinition(f"{path}|layername=x", False),
        "subset": f"{path}|layername=x|subset=\"k\" >= 0",
    }


@pytest.fixture
def one(tmp_path, monkeypatch):
    _write_layers(tmp_path / "x.gpkg", ["x"])
    shutil.copy(tmp_path / "x.gpkg", tmp_path / "copy.gpkg")
    os.symlink(tmp_path / "x.gpkg", tmp_path / "link.gpkg")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    spellings = _one_layer_spellings(tmp_path)
    yield tmp_path, spellings
    QgsProject.instance().removeMapLayer(spellings["layer object"].id())


def _pairs(input_value, reference_value):
    import processing

    output = processing.run("overlaprelevance:exactoverlap", {"INPUT": input_value, "REFERENCE": reference_value,
                                                              "INPUT_KEY": "k", "REFERENCE_KEY": "k",
                                                              "OUTPUT": "memory:"})["OUTPUT"]
    return [(row["in_key"], row["ref_key"]) for row in layer_rows(output)]


def test_one_layer_under_any_two_spellings_never_pairs_a_feature_with_itself(provider, one):
    folder, spellings = one
    names = sorted(spellings)
    for i, first in enumerate(names):
        for second in names[i:]:
            pairs = _pairs(spellings[first], spellings[second])
            assert pairs, (first, second)  # the squares touch their neighbours: there are candidate pairs
            assert all(a != b for a, b in pairs), (first, second, pairs)


def test_a_copy_of_the_file_is_another_layer(provider, one):
    folder, spellings = one
    pairs = _pairs(spellings["path"], f"{folder}/copy.gpkg")
    assert {(k, k) for k in range(3)} <= set(pairs)


def test_two_layers_of_one_file_are_two_layers(provider, two):
    """Layers a and b of two.gpkg share feature ids 1-3, yet are different layers: their pairs are kept."""
    pairs = _pairs(f"{two}/two.gpkg|layername=a", f"{two}/two.gpkg|layername=b")
    assert {(k, 10 + k) for k in range(3)} <= set(pairs)
