"""Whole OGR layers are read by GDAL in Arrow batches (algorithms/ogr_read.py), everything else through QGIS.

Both readings must give the same ids, keys, values and geometries; anything the GDAL reading
cannot honour (a selection, a subset, edits, another provider, curves) must go through QGIS.
"""

import os

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
from tools.spatialite import blob_starts, rewrite_as_spatialite

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


def spatialite_gpkg(path, geoms, stored_as_spatialite, srid=25833):
    """A GeoPackage of ``geoms`` (None: NULL) whose features at ``stored_as_spatialite`` hold SpatiaLite blobs.

    Written by OGR without a spatial index (its triggers need GDAL's SQL functions), then the chosen
    rows rewritten with plain sqlite3, as files written by older tools hold them.
    """
    from osgeo import ogr, osr

    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(srid)
    ogr_layer = dataset.CreateLayer("blobs", srs, ogr.wkbMultiPolygon, options=["SPATIAL_INDEX=NO"])
    ogr_layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for i, geometry in enumerate(geoms):
        feature = ogr.Feature(ogr_layer.GetLayerDefn())
        feature.SetField("name", f"f{i}")
        if geometry is not None:
            feature.SetGeometry(ogr.ForceToMultiPolygon(ogr.CreateGeometryFromWkb(shapely.to_wkb(geometry))))
        ogr_layer.CreateFeature(feature)
        feature = None
    ogr_layer = dataset = None
    rewrite_as_spatialite(path, "blobs", {i + 1: geoms[i] for i in stored_as_spatialite}, srid)
    return str(path)


def arrow_geometries(path):
    """The geometry column as GDAL's Arrow stream alone gives it (None where it returns NULL)."""
    from osgeo import gdal

    dataset = gdal.OpenEx(path, gdal.OF_VECTOR)
    ogr_layer = dataset.GetLayer(0)
    if not hasattr(ogr_layer, "GetArrowStreamAsNumPy"):
        return None
    batches = list(ogr_layer.GetArrowStreamAsNumPy(options=["USE_MASKED_ARRAYS=NO"]))
    return [w for batch in batches for w in batch[ogr_layer.GetGeometryColumn()]]


BLOB_GEOMS = [shapely.affinity.translate(g, 500000, 5800000) if g is not None else None for g in (
    square(0, 0), shapely.MultiPolygon([square(50, 0), square(90, 0)]), None,
    shapely.Polygon(square(200, 0).exterior, [square(205, 5, 5).exterior]), square(300, 0, 7))]
SPATIALITE_ROWS = [1, 3]  # a multipolygon and a polygon with a hole


def test_spatialite_blobs_are_read_with_the_geometry_qgis_reads(provider, tmp_path):
    from osgeo import gdal

    path = spatialite_gpkg(tmp_path / "blobs.gpkg", BLOB_GEOMS, SPATIALITE_ROWS)
    layer = QgsVectorLayer(path, "blobs", "ogr")
    assert layer.isValid() and layer.featureCount() == len(BLOB_GEOMS)
    assert blob_starts(path, "blobs") == [b"GP", b"\x00\x01", None, b"\x00\x01", b"GP"]  # SpatiaLite's where asked
    arrow = arrow_geometries(path)
    if arrow is not None:  # GDAL 3.6 gives NULL for the SpatiaLite blobs; a later GDAL may decode them itself
        assert [w is None for w in arrow[::2]] == [False, True, False]
        if gdal.VersionInfo().startswith("306"):
            assert arrow[1] is None and arrow[3] is None  # what the re-reading by FID is there for
    fids, wkbs = read_ogr_geometries(layer)
    assert fids.tolist() == [1, 2, 3, 4, 5]
    assert [w is None for w in wkbs] == [g is None for g in BLOB_GEOMS]  # only the true NULL stays NULL
    with_gdal, with_qgis = both_readings_keyed(layer, "name")
    assert with_gdal.keys.tolist() == with_qgis.keys.tolist() == ["f0", "f1", "f2", "f3", "f4"]
    qgis_geoms = [None if not f.hasGeometry() else shapely.from_wkb(bytes(f.geometry().asWkb()))
                  for f in layer.getFeatures()]
    present = [i for i, g in enumerate(BLOB_GEOMS) if g is not None]
    for geoms in (with_gdal.geoms, with_qgis.geoms):
        assert [g is None for g in geoms] == [g is None for g in BLOB_GEOMS]
        # The same polygons vertex for vertex (QGIS may hand a polygon as a one-part MultiPolygon).
        same_parts(geoms[present], np.asarray(qgis_geoms, dtype=object)[present])
        assert shapely.equals(geoms[present], np.asarray(BLOB_GEOMS, dtype=object)[present]).all()
    assert with_gdal.n_unreadable == with_qgis.n_unreadable == 0
    assert with_gdal.unreadable.tolist() == [False] * len(BLOB_GEOMS)


WORLD_MAP = "/usr/share/qgis/resources/data/world_map.gpkg"


@pytest.mark.skipif(not os.path.exists(WORLD_MAP), reason="this QGIS ships no world_map.gpkg")
def test_world_map_russia_and_ukraine_are_read(provider):
    layer = QgsVectorLayer(WORLD_MAP + "|layername=countries", "countries", "ogr")
    assert layer.isValid()
    with_gdal, with_qgis = both_readings_keyed(layer, "NAME")
    assert read_ogr_geometries(layer) not in (None, False)
    assert with_gdal.fids.tolist() == with_qgis.fids.tolist()
    assert not shapely.is_missing(with_gdal.geoms).any() and not shapely.is_missing(with_qgis.geoms).any()
    same_parts(with_gdal.geoms, with_qgis.geoms)
    by_name = dict(zip(with_gdal.keys, with_gdal.geoms))
    for name, fid in (("Russia", 8), ("Ukraine", 383)):
        feature = layer.getFeature(fid)
        assert feature[layer.fields().lookupField("NAME")] == name
        same_parts(np.array([by_name[name]]), np.array([shapely.from_wkb(bytes(feature.geometry().asWkb()))]))
        assert shapely.get_num_coordinates(by_name[name]) > 900


def same_parts(geoms, others):
    parts, owner = shapely.get_parts(geoms, return_index=True)
    other_parts, other_owner = shapely.get_parts(others, return_index=True)
    assert owner.tolist() == other_owner.tolist()
    assert shapely.equals_exact(parts, other_parts, tolerance=0).all()


def both_readings_keyed(layer, key):
    source = QgsProcessingFeatureSource(layer, QgsProcessingContext())
    return (read_polygon_source(source, "reference", key, None, layer=layer),
            read_polygon_source(source, "reference", key, None))
