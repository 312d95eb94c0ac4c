"""The Dask engine and the single process read every geometry QGIS reads: SpatiaLite blobs in a GeoPackage too.

GDAL 3.6's Arrow stream gives NULL for them (the plugin then reads them again by FID, algorithms/ogr_read.py);
pyogrio's feature reading here must give them as they are.
"""

import os

import numpy as np
import pytest
import shapely

from tools.geometry import square
from tools.spatialite import blob_starts, rewrite_as_spatialite

from overlap_relevance.scaleout.cli import read_dask_layer
from overlap_relevance.scaleout.layers import read_layer

GEOMS = [square(0, 0), shapely.MultiPolygon([square(50, 0), square(90, 0)]), None,
         shapely.Polygon(square(200, 0).exterior, [square(205, 5, 5).exterior]), square(300, 0, 7)]
WORLD_MAP = "/usr/share/qgis/resources/data/world_map.gpkg"


def same_parts(geoms, others):
    parts, owner = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    other_parts, other_owner = shapely.get_parts(np.asarray(others, dtype=object), return_index=True)
    assert owner.tolist() == other_owner.tolist()
    assert shapely.equals_exact(parts, other_parts, tolerance=0).all()


def test_spatialite_blobs_are_read_by_both_engines(tmp_path):
    import geopandas
    import pyogrio

    path = tmp_path / "blobs.gpkg"
    frame = geopandas.GeoDataFrame({"name": [f"f{i}" for i in range(len(GEOMS))]},
                                   geometry=geopandas.GeoSeries(GEOMS).apply(
                                       lambda g: None if g is None else shapely.MultiPolygon(
                                           [g] if g.geom_type == "Polygon" else g.geoms)), crs="EPSG:25833")
    pyogrio.write_dataframe(frame, path, layer="blobs", layer_options={"SPATIAL_INDEX": "NO"})
    rewrite_as_spatialite(path, "blobs", {2: GEOMS[1], 4: GEOMS[3]}, 25833)
    assert blob_starts(path, "blobs") == [b"GP", b"\x00\x01", None, b"\x00\x01", b"GP"]
    expected = [g for g in GEOMS if g is not None]
    layer = read_layer(str(path))
    assert layer.fids.tolist() == [1, 2, 3, 4, 5]
    assert shapely.is_missing(layer.geoms).tolist() == [g is None for g in GEOMS]
    same_parts(shapely.get_parts(layer.geoms[~shapely.is_missing(layer.geoms)]), shapely.get_parts(expected))
    dask_frame = read_dask_layer(str(path), npartitions=2, with_fid=True).compute()
    assert dask_frame.index.tolist() == [1, 2, 3, 4, 5]
    present = dask_frame.geometry.notna().to_numpy()
    assert present.tolist() == [g is not None for g in GEOMS]
    same_parts(shapely.get_parts(dask_frame.geometry.values[present]), shapely.get_parts(expected))


@pytest.mark.skipif(not os.path.exists(WORLD_MAP), reason="no QGIS world_map.gpkg here")
def test_world_map_russia_and_ukraine_are_read_by_both_engines():
    layer = read_layer(WORLD_MAP, "countries")
    dask_frame = read_dask_layer(WORLD_MAP, "countries", npartitions=3, with_fid=True).compute()
    assert dask_frame.index.tolist() == layer.fids.tolist() and len(layer) == 240
    assert not shapely.is_missing(layer.geoms).any() and not dask_frame.geometry.isna().any()
    same_parts(layer.geoms, dask_frame.geometry.values)
    names = dict(zip(layer.fids.tolist(), layer.fields["NAME"]))
    for fid, name in ((8, "Russia"), (383, "Ukraine")):
        assert names[fid] == name
        assert shapely.get_num_coordinates(layer.geoms[layer.fids.tolist().index(fid)]) > 900
