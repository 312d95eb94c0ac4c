"""Reading and writing whole layers for the single-process engine, without geopandas or Dask.

pyogrio's raw arrays where pyogrio is installed (``.venv-dask``), else GDAL's own Python bindings
(``osgeo.ogr``, what ``.venv`` has from the distribution). GeoParquet is written with geopandas, so
only where it is installed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ..model.gdal_layer import crs_text


@dataclass
class Layer:
    """One layer read whole.

    fields : {name: (n,) array} in the layer's order; nulls : {name: (n,) bool} where a value is NULL.
    geoms : (n,) shapely geometries or None; fids : (n,) int64 feature ids; crs : WKT or "EPSG:n".
    """

    fields: dict
    geoms: np.ndarray
    fids: np.ndarray
    crs: str
    geometry_type: str = "MultiPolygon"
    nulls: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.geoms)


def split_source(source, layer=None):
    """(path, layer name or None) of "path" or "path|layername=name" (QGIS's form)."""
    path, _, name = str(source).partition("|layername=")
    return path, (layer or name or None)


def is_parquet(path):
    return str(path).lower().rstrip("/").endswith((".parquet", ".geoparquet"))


def read_layer(source, layer=None):
    path, layer = split_source(source, layer)
    if is_parquet(path):
        return _read_parquet(path)
    try:
        import pyogrio.raw  # noqa: F401
    except ImportError:
        return _read_ogr(path, layer)
    return _read_pyogrio(path, layer)


def _read_pyogrio(path, layer):
    from pyogrio.raw import read

    meta, fids, wkb, values = read(path, layer=layer, return_fids=True)
    fields, nulls = {}, {}
    for name, array in zip(meta["fields"], values):
        if isinstance(array, np.ma.MaskedArray):
            nulls[name] = np.ma.getmaskarray(array)
            array = array.filled(0 if array.dtype.kind in "iub" else None)
        elif array.dtype == object:
            nulls[name] = np.array([v is None for v in array], dtype=bool)
        elif array.dtype.kind == "f":
            nulls[name] = np.isnan(array)
        fields[name] = array
    geoms = shapely.from_wkb(wkb) if wkb is not None else np.full(len(fids), None, dtype=object)
    return Layer(fields, np.asarray(geoms, dtype=object), np.asarray(fids, dtype=np.int64), meta["crs"],
                 meta.get("geometry_type") or "MultiPolygon", nulls)


def _read_ogr(path, layer):
    from osgeo import ogr

    ogr.UseExceptions()
    dataset = ogr.Open(str(path))
    source = dataset.GetLayerByName(layer) if layer else dataset.GetLayer(0)
    definition = source.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    kinds = [definition.GetFieldDefn(i).GetType() for i in range(definition.GetFieldCount())]
    rows, fids, wkbs = {name: [] for name in names}, [], []
    for feature in source:
        fids.append(feature.GetFID())
        geometry = feature.GetGeometryRef()
        wkbs.append(bytes(geometry.ExportToIsoWkb()) if geometry is not None else None)
        for i, name in enumerate(names):
            rows[name].append(feature.GetField(i) if feature.IsFieldSetAndNotNull(i) else None)
    fields, nulls = {}, {}
    for name, kind in zip(names, kinds):
        values = rows[name]
        nulls[name] = np.array([v is None for v in values], dtype=bool)
        if kind in (ogr.OFTInteger, ogr.OFTInteger64):
            fields[name] = np.array([0 if v is None else v for v in values], dtype=np.int64)
        elif kind == ogr.OFTReal:
            fields[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            fields[name] = np.array(values, dtype=object)
    crs = crs_text(source.GetSpatialRef())
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object))
    return Layer(fields, np.asarray(geoms, dtype=object), np.asarray(fids, dtype=np.int64), crs,
                 ogr.GeometryTypeToName(source.GetGeomType()).replace(" ", ""), nulls)


def _read_parquet(path):
    import geopandas

    frame = geopandas.read_parquet(path)
    geometry = frame.geometry.name
    fields = {name: frame[name].to_numpy() for name in frame.columns if name != geometry}
    nulls = {name: frame[name].isna().to_numpy() for name in fields}
    crs = frame.crs.to_wkt() if frame.crs is not None else None
    return Layer(fields, np.asarray(frame.geometry.values, dtype=object), np.arange(len(frame), dtype=np.int64),
                 crs, "MultiPolygon", nulls)


def driver_for(path):
    suffix = Path(str(path)).suffix.lower()
    return {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
            ".fgb": "FlatGeobuf", ".sqlite": "SQLite"}.get(suffix, "GPKG")


def write_layer(path, fields, nulls, geoms, crs, geometry_type="MultiPolygon"):
    """Write ``fields`` ({name: (n,) array}, in order), NULL where ``nulls[name]``, and ``geoms`` to ``path``.

    A .parquet path is a GeoParquet file (geopandas needed); anything else goes through OGR.
    """
    path = Path(path)
    if is_parquet(path):
        return _write_parquet(path, fields, nulls, geoms, crs)
    if path.exists():
        path.unlink()
    try:
        import pyogrio.raw  # noqa: F401
    except ImportError:
        return _write_ogr(path, fields, nulls, geoms, crs)
    from pyogrio.raw import write

    names = list(fields)
    data, masks = [], []
    for name in names:
        values = np.asarray(fields[name])
        mask = np.asarray(nulls.get(name, np.zeros(len(values), dtype=bool)))
        if values.dtype == object:
            values = np.array([None if m else v for v, m in zip(values, mask)], dtype=object)
        data.append(values)
        masks.append(mask)
    write(str(path), shapely.to_wkb(np.asarray(geoms, dtype=object)), data, names, field_mask=masks,
          driver=driver_for(path), geometry_type=geometry_type, crs=crs, promote_to_multi=False)


def _write_parquet(path, fields, nulls, geoms, crs):
    try:
        import geopandas
        import pandas as pd
    except ImportError:
        raise SystemExit("Writing GeoParquet needs geopandas: use .venv-dask (make setup-dask), or write a "
                         ".gpkg.") from None
    columns = {}
    for name, values in fields.items():
        columns[name] = _nullable(pd, np.asarray(values), np.asarray(nulls.get(name, np.zeros(len(values), bool))))
    frame = geopandas.GeoDataFrame(columns, geometry=geopandas.GeoSeries(geoms, crs=crs))
    frame.to_parquet(path)


def _nullable(pd, values, mask):
    """A pandas column with NULL (pd.NA) where ``mask``: Int64 / Float64 for numbers, object otherwise."""
    if values.dtype.kind in "iu":
        return pd.arrays.IntegerArray(values.astype(np.int64), mask.copy())
    if values.dtype.kind == "f":
        return pd.arrays.FloatingArray(np.where(mask, 0.0, values).astype(np.float64), mask.copy())
    out = values.astype(object).copy()
    out[mask] = None
    return out


def _write_ogr(path, fields, nulls, geoms, crs):
    from osgeo import ogr, osr

    ogr.UseExceptions()
    dataset = ogr.GetDriverByName(driver_for(path)).CreateDataSource(str(path))
    srs = None
    if crs:
        srs = osr.SpatialReference()
        srs.SetFromUserInput(str(crs))
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = dataset.CreateLayer(path.stem, srs, ogr.wkbUnknown)
    kinds = {}
    for name, values in fields.items():
        kind = np.asarray(values).dtype.kind
        kinds[name] = ogr.OFTInteger64 if kind in "iub" else ogr.OFTReal if kind == "f" else ogr.OFTString
        layer.CreateField(ogr.FieldDefn(name, kinds[name]))
    definition = layer.GetLayerDefn()
    wkbs = shapely.to_wkb(np.asarray(geoms, dtype=object))
    layer.StartTransaction()
    for i, wkb in enumerate(wkbs):
        feature = ogr.Feature(definition)
        for name, values in fields.items():
            if nulls.get(name) is not None and nulls[name][i]:
                feature.SetFieldNull(name)
                continue
            value = values[i]
            if kinds[name] == ogr.OFTInteger64:
                feature.SetField(name, int(value))
            elif kinds[name] == ogr.OFTReal:
                feature.SetField(name, float(value))
            elif value is not None:
                feature.SetField(name, str(value))
        if wkb is not None:
            feature.SetGeometry(ogr.CreateGeometryFromWkb(wkb))
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    dataset = None
