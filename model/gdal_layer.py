"""Reading one vector layer with GDAL's own Python bindings (no QGIS): the core's tools and data read files so."""

import numpy as np
import shapely


def crs_text(srs):
    """An OGR spatial reference as a CRS string pyproj reads: ``AUTHORITY:CODE`` when it has one, else WKT;
    None for None."""
    if srs is None:
        return None
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else srs.ExportToWkt()


def read_layer(path, layer_name=None, name_field=None):
    """(geometries (n,), CRS string, names (n,) or None) of one vector layer, read with GDAL (no QGIS).

    layer_name : None for the first layer; name_field : a field read as ``names``.
    FileNotFoundError when GDAL cannot open ``path``; ImportError without GDAL's bindings.
    """
    from osgeo import ogr

    dataset = ogr.Open(str(path))
    if dataset is None:
        raise FileNotFoundError(f"cannot open {path}")
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    crs = crs_text(layer.GetSpatialRef())
    wkb, names = [], []
    for feature in layer:  # reading features is inherently one call per feature
        geometry = feature.GetGeometryRef()
        wkb.append(None if geometry is None else bytes(geometry.ExportToIsoWkb()))
        if name_field:
            names.append(feature.GetField(name_field))
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    return geoms, crs, (np.asarray(names, dtype=object) if name_field else None)
