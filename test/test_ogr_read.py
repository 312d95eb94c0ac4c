"""Whole OGR layers are read by GDAL in Arrow batches (algorithms/ogr_read.py), everything else through QGIS.

Both readings must give the same ids, keys, values and geometries; anything the GDAL reading
cannot honour (a selection, a subset, edits, another provider, curves) must go through QGIS.
"""

import numpy as np
import pytest
import shapely
from qgis.core import (
    QgsApplication,
    QgsCoordinateTransformContext,
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingFeatureSource,
    QgsProcessingFeatureSourceDefinition,
    QgsProject,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from tools.geometry import square
from tools.layers import layer_rows, memory_layer

from overlap_relevance.algorithms.ogr_read import read_ogr_geometries, whole_ogr_layer
from overlap_relevance.algorithms.sources import read_polygon_source

BOWTIE = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # invalid: GEOS reads it, repair comes later
GEOMS = [square(0, 0), None, shapely.MultiPolygon([square(50, 0), square(90, 0)]), BOWTIE, square(0, 0, 0.5),
         shapely.Polygon(square(200, 0).exterior, [square(205, 5, 5).exterior])]
NAMES = ["a", "b", "ü-é", "d", "", "f"]
SIGMA = [1.0, 2.5, 0.0, 3.0, 4.0, 5.0]
DRIVERS = {"GPKG": "gpkg", "ESRI Shapefile": "shp", "GeoJSON": "geojson"}


def write_layer(tmp_path, driver, geoms=GEOMS, geometry_type="MultiPolygon"):
    layer = memory_layer([None if g is None else shapely.affinity.translate(g, 500000, 5800000) for g in geoms],
                         "EPSG:25833", {"name": NAMES[:len(geoms)], "sigma": SIGMA[:len(geoms)]},
                         geometry_type=geometry_type)
    path = str(tmp_path / f"layer.{DRIVERS[driver]}")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = driver
    options.fileEncoding = "UTF-8"
    error = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, QgsCoordinateTransformContext(), options)
    assert error[0] == QgsVectorFileWriter.NoError, error
    written = QgsVectorLayer(path, "written", "ogr")
    assert written.isValid()
    return path, written


def both_readings(layer):
    context = QgsProcessingContext()
    source = QgsProcessingFeatureSource(layer, context)
    with_gdal = read_polygon_source(source, "input", "name", None, ["sigma"], layer=layer)
    with_qgis = read_polygon_source(source, "input", "name", None, ["sigma"])
    return with_gdal, with_qgis


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_gdal_and_qgis_readings_agree(provider, tmp_path, driver):
    _, layer = write_layer(tmp_path, driver)
    assert read_ogr_geometries(layer) not in (None, False)  # the GDAL reading is really taken here
    with_gdal, with_qgis = both_readings(layer)
    assert with_gdal.fids.tolist() == with_qgis.fids.tolist() == [f.id() for f in layer.getFeatures()]
    assert with_gdal.keys.tolist() == with_qgis.keys.tolist()
    assert with_gdal.crs == with_qgis.crs
    np.testing.assert_array_equal(with_gdal.values["sigma"], with_qgis.values["sigma"])
    assert with_gdal.n_unreadable == with_qgis.n_unreadable == 0
    assert shapely.is_missing(with_gdal.geoms).tolist() == shapely.is_missing(with_qgis.geoms).tolist()
    assert (shapely.is_missing(with_gdal.geoms) | shapely.is_empty(with_gdal.geoms)).sum() == 1  # the null
    # The same polygons vertex for vertex; QGIS may hand a single polygon as a one-part MultiPolygon
    # (a shapefile layer is MultiPolygon to it), which the core treats alike.
    parts_gdal, owner_gdal = shapely.get_parts(with_gdal.geoms, return_index=True)
    parts_qgis, owner_qgis = shapely.get_parts(with_qgis.geoms, return_index=True)
    assert owner_gdal.tolist() == owner_qgis.tolist()
    assert shapely.equals_exact(parts_gdal, parts_qgis, tolerance=0).all()


def test_gdal_reading_without_keys_gives_ids_as_keys(provider, tmp_path):
    _, layer = write_layer(tmp_path, "GPKG")
    source = QgsProcessingFeatureSource(layer, QgsProcessingContext())
    arrays = read_polygon_source(source, "input", layer=layer)
    assert arrays.keys.tolist() == arrays.fids.tolist() == [1, 2, 3, 4, 5, 6]


def whole_layer(parameter, context=None):
    algorithm = QgsApplication.processingRegistry().algorithmById("overlaprelevance:scorerelevance")
    context = context or QgsProcessingContext()
    context.setProject(QgsProject.instance())
    parameters = {"INPUT": parameter}
    source = algorithm.parameterAsSource(parameters, "INPUT", context)
    return whole_ogr_layer(algorithm, parameters, "INPUT", context, source)


def test_file_paths_and_unfiltered_layers_are_read_whole(provider, tmp_path):
    path, layer = write_layer(tmp_path, "GPKG")
    assert whole_layer(path) is not None
    QgsProject.instance().addMapLayer(layer)
    try:
        assert whole_layer(layer.id()) is not None
        assert whole_layer(QgsProcessingFeatureSourceDefinition(layer.id(), False)) is not None
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_selection_subset_edits_and_memory_layers_go_through_qgis(provider, tmp_path):
    path, layer = write_layer(tmp_path, "GPKG")
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.selectByIds([1, 3])
        assert whole_layer(QgsProcessingFeatureSourceDefinition(layer.id(), True)) is None
        limited = QgsProcessingFeatureSourceDefinition(layer.id(), False, 2)
        assert whole_layer(limited) is None
        layer.startEditing()
        assert whole_layer(layer.id()) is None
        layer.rollBack()
        layer.setSubsetString('"sigma" > 1')
        assert whole_layer(layer.id()) is None
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert whole_layer(memory_layer([square(0, 0)], "EPSG:25833")) is None
    assert whole_layer(path + "|subset=\"sigma\" > 1") is None


def test_curved_layers_go_through_qgis(provider, tmp_path):
    layer = QgsVectorLayer("CurvePolygon?crs=EPSG:25833", "curved", "memory")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    path = str(tmp_path / "curved.gpkg")
    assert QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, QgsCoordinateTransformContext(),
                                                     options)[0] == QgsVectorFileWriter.NoError
    assert whole_layer(path) is None


def test_curves_inside_a_multipolygon_layer_go_through_qgis(provider, tmp_path):
    from osgeo import ogr, osr

    path = str(tmp_path / "arcs.gpkg")
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(25833)
    ogr_layer = dataset.CreateLayer("arcs", srs, ogr.wkbMultiPolygon)
    for wkt in ("MULTIPOLYGON (((0 0, 10 0, 10 10, 0 0)))",
                "MULTISURFACE (CURVEPOLYGON (CIRCULARSTRING (0 0, 10 10, 20 0, 10 -10, 0 0)))"):
        feature = ogr.Feature(ogr_layer.GetLayerDefn())
        feature.SetGeometryDirectly(ogr.CreateGeometryFromWkt(wkt))  # GDAL stores the curve, with a warning
        ogr_layer.CreateFeature(feature)
    dataset = None
    layer = QgsVectorLayer(path, "arcs", "ogr")
    assert whole_layer(path) is not None  # the layer says MultiPolygon ...
    source = QgsProcessingFeatureSource(layer, QgsProcessingContext())
    arrays = read_polygon_source(source, "input", layer=layer)  # ... but the curve makes it go through QGIS
    assert arrays.n_unreadable == 0
    assert shapely.get_type_id(arrays.geoms).tolist() == [6, 6]
    assert shapely.area(arrays.geoms[1]) == pytest.approx(np.pi * 100, rel=0.01)  # segmentized, not lost


def test_scores_from_a_file_equal_scores_from_its_copy_in_memory(provider, tmp_path, monkeypatch):
    import processing

    from overlap_relevance.algorithms import sources

    read_by_gdal = []

    def spy(*args, **kwargs):
        rows = read_ogr_geometries(*args, **kwargs)
        read_by_gdal.append(rows not in (None, False))
        return rows

    monkeypatch.setattr(sources, "read_ogr_geometries", spy)

    input_path, input_file = write_layer(tmp_path, "GPKG")
    reference_geoms = [square(5, 0), square(60, 5), square(2, 2), square(200, 0)]
    (tmp_path / "reference").mkdir()
    reference_path, reference_file = write_layer(tmp_path / "reference", "ESRI Shapefile", reference_geoms)
    in_memory = [layer.materialize(QgsFeatureRequest()) for layer in (input_file, reference_file)]
    parameters = {"REFERENCE_KEY": "name", "POSITIONAL_UNCERTAINTY_FIELD": "sigma", "OUTPUT": "memory:"}
    from_files = processing.run("overlaprelevance:scorerelevance",
                                dict(parameters, INPUT=input_path, REFERENCE=reference_path))["OUTPUT"]
    from_memory = processing.run("overlaprelevance:scorerelevance",
                                 dict(parameters, INPUT=in_memory[0], REFERENCE=in_memory[1]))["OUTPUT"]
    assert read_by_gdal == [True, True]  # both files were read by GDAL, the memory layers were not
    rows_files, rows_memory = layer_rows(from_files), layer_rows(from_memory)
    assert len(rows_files) == len(GEOMS)
    assert any(row["rel_match"] is not None for row in rows_files)
    for row_file, row_memory in zip(rows_files, rows_memory):
        assert row_file.keys() == row_memory.keys()
        for key, value in row_file.items():
            if isinstance(value, float):
                assert value == pytest.approx(row_memory[key], rel=1e-9, abs=1e-12), key
            else:
                assert value == row_memory[key], key
