"""The benchmark data sets, made or located on demand under ``build/bench``.

* ``sample``: the bundled two-source buildings (``resources/sample``).
* ``buildings_100k``: a generated city of about 100,000 buildings as two sources, made
  the way the bundled sample is (a cadastre in EPSG:25833 and a mapping agency's version
  in EPSG:4326: every building shifted by a common offset plus its own error, slightly
  rotated and scaled, vertices jittered, 5 % missing, 5 % new), but vectorised so that
  100,000 features take seconds. Seeded, so every run measures the same data.
* ``world_map``: QGIS's own ``resources/data/world_map.gpkg``, ``states_provinces``
  against ``countries``, which ships with every QGIS install.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from osgeo import ogr, osr
from pyproj import Transformer

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DATA = REPO_ROOT / "build" / "bench" / "data"
SAMPLE = REPO_ROOT / "resources" / "sample"
WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")
SEED = 20261122
ORIGIN = (380_000.0, 5_800_000.0)  # around Berlin, UTM 33N metres
BLOCK = 90.0
STREET = 18.0
PER_BLOCK = (4, 5)  # buildings per block along x and y


@dataclass(frozen=True)
class DataSet:
    name: str
    input: str  # a QGIS/OGR layer source: path or "path|layername=..."
    reference: str
    description: str

    @property
    def input_path(self):
        return _path_and_layer(self.input)

    @property
    def reference_path(self):
        return _path_and_layer(self.reference)


def _path_and_layer(source):
    path, _, layer = source.partition("|layername=")
    return Path(path), (layer or None)


def sample():
    return DataSet("sample", str(SAMPLE / "buildings_mapping.gpkg"), str(SAMPLE / "buildings_cadastre.gpkg"),
                   "bundled sample: mapped buildings (EPSG:4326) × cadastre (EPSG:25833)")


def world_map():
    return DataSet("world_map", f"{WORLD_MAP}|layername=states_provinces", f"{WORLD_MAP}|layername=countries",
                   "QGIS world_map.gpkg: states_provinces × countries (EPSG:4326)")


def generated_buildings(n_target=100_000, folder=BENCH_DATA, seed=SEED, name=None):
    """Two sources of about ``n_target`` buildings each; files are made once per size and seed."""
    name = name or (f"buildings_{n_target // 1000}k" if n_target >= 1000 else f"buildings_{n_target}")
    folder = Path(folder)
    cadastre = folder / f"{name}_cadastre.gpkg"
    mapping = folder / f"{name}_mapping.gpkg"
    if not (cadastre.exists() and mapping.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        footprints, mapped, source_index = two_sources(n_target, np.random.default_rng(seed))
        _write(cadastre, 25833, footprints, {"building_id": np.arange(len(footprints))})
        to_lonlat = Transformer.from_crs(25833, 4326, always_xy=True)
        coords = shapely.get_coordinates(mapped)
        lon, lat = to_lonlat.transform(coords[:, 0], coords[:, 1])
        mapped = shapely.set_coordinates(mapped.copy(), np.column_stack([lon, lat]))
        _write(mapping, 4326, mapped, {"map_id": np.arange(len(mapped)), "true_match": source_index})
    return DataSet(name, str(mapping), str(cadastre),
                   f"generated two-source buildings: {name} mapped (EPSG:4326) × cadastre (EPSG:25833)")


def cadastre_footprints(n_target, rng):
    """About ``n_target`` rectangles and L-shapes in city blocks, (n,) polygons in UTM 33N metres."""
    per_block = PER_BLOCK[0] * PER_BLOCK[1]
    n_blocks = int(np.ceil(n_target / per_block))
    side = int(np.ceil(np.sqrt(n_blocks)))
    block = np.arange(n_blocks)
    block_x = ORIGIN[0] + (block % side) * (BLOCK + STREET)
    block_y = ORIGIN[1] + (block // side) * (BLOCK + STREET)
    cell = np.array([BLOCK / PER_BLOCK[0], BLOCK / PER_BLOCK[1]])
    slot = np.arange(per_block)
    x0 = (block_x[:, None] + (slot % PER_BLOCK[0]) * cell[0]).ravel()[:n_target]
    y0 = (block_y[:, None] + (slot // PER_BLOCK[0]) * cell[1]).ravel()[:n_target]
    n = len(x0)
    # Row houses nearly fill their cell along x (neighbours almost touch); others stand free.
    width = np.where(rng.random(n) < 0.5, cell[0] - rng.uniform(0.0, 1.5, n), rng.uniform(8.0, cell[0] - 2.0, n))
    height = rng.uniform(8.0, cell[1] - 2.0, n)
    x = x0 + (cell[0] - width) * rng.random(n)
    y = y0 + (cell[1] - height) * rng.random(n)
    rect = np.stack([x, y, x + width, y, x + width, y + height, x, y + height, x, y], axis=1).reshape(n, 5, 2)
    # Cut a corner from 30 % of them (an L-shape): 7 vertices.
    cut_w = width * rng.uniform(0.3, 0.6, n)
    cut_h = height * rng.uniform(0.3, 0.6, n)
    ell = np.stack([x, y, x + width, y, x + width, y + height - cut_h, x + width - cut_w, y + height - cut_h,
                    x + width - cut_w, y + height, x, y + height, x, y], axis=1).reshape(n, 7, 2)
    is_ell = rng.random(n) < 0.3
    geoms = np.empty(n, dtype=object)
    geoms[~is_ell] = shapely.polygons(rect[~is_ell])
    geoms[is_ell] = shapely.polygons(ell[is_ell])
    return geoms


def _rotate_scale_shift(geoms, angle_deg, scale_xy, shift_xy, jitter_sd, rng):
    """Each geometry rotated and scaled about its centroid, shifted, and its vertices jittered."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    centre = shapely.get_coordinates(shapely.centroid(geoms))[owner]
    angle = np.radians(angle_deg)[owner]
    local = (coords - centre) * scale_xy[owner]
    cos, sin = np.cos(angle), np.sin(angle)
    moved = centre + np.column_stack([cos * local[:, 0] - sin * local[:, 1],
                                      sin * local[:, 0] + cos * local[:, 1]]) + shift_xy[owner]
    moved += rng.normal(0.0, jitter_sd, moved.shape)
    # Close every ring again: its last vertex is its first.
    ring_start = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    ring_end = np.r_[ring_start[1:], len(owner)] - 1
    moved[ring_end] = moved[ring_start]
    return shapely.make_valid(shapely.set_coordinates(geoms.copy(), moved))


def two_sources(n_target, rng):
    """(cadastre (n,), mapped (m,), source index of each mapped building, -1 for new ones)."""
    footprints = cadastre_footprints(n_target, rng)
    n = len(footprints)
    keep = np.flatnonzero(rng.random(n) > 0.05)
    k = len(keep)
    mapped = _polygonal(_rotate_scale_shift(
        footprints[keep], rng.normal(0.0, 1.5, k), 1.0 + rng.normal(0.0, 0.02, (k, 2)),
        np.array([0.8, -0.6]) + rng.normal(0.0, 0.5, (k, 2)), 0.25, rng))
    # New buildings the cadastre does not have yet: small sheds anywhere in the city.
    extra = int(0.05 * n)
    low, high = shapely.total_bounds(footprints).reshape(2, 2)
    corner = rng.uniform(low, high, (extra, 2))
    size = rng.uniform(5.0, 10.0, (extra, 2))
    new = shapely.box(corner[:, 0], corner[:, 1], corner[:, 0] + size[:, 0], corner[:, 1] + size[:, 1])
    return footprints, np.concatenate([mapped, new]), np.r_[keep, np.full(extra, -1)]


def _polygonal(geoms):
    """make_valid can turn a jittered L-shape into a collection; keep its polygonal part."""
    other = ~np.isin(shapely.get_type_id(geoms), (3, 6))
    if other.any():
        parts, owner = shapely.get_parts(geoms[other], return_index=True)
        polygon = shapely.get_type_id(parts) == 3
        fixed = np.full(int(other.sum()), None, dtype=object)
        shapely.multipolygons(parts[polygon], indices=owner[polygon], out=fixed)
        geoms = geoms.copy()
        geoms[other] = fixed
    return geoms


def _write(path, epsg, geoms, fields):
    """A GeoPackage layer named after the file with integer ``fields`` ({name: (n,) ints})."""
    path.unlink(missing_ok=True)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = dataset.CreateLayer(path.stem, srs, ogr.wkbMultiPolygon)
    for field in fields:
        layer.CreateField(ogr.FieldDefn(field, ogr.OFTInteger64))
    definition = layer.GetLayerDefn()
    wkbs = shapely.to_wkb(shapely.multipolygons(shapely.get_parts(geoms, return_index=True)[0],
                                                indices=shapely.get_parts(geoms, return_index=True)[1]))
    layer.StartTransaction()
    for i, wkb in enumerate(wkbs):
        feature = ogr.Feature(definition)
        for field, values in fields.items():
            feature.SetField(field, int(values[i]))
        feature.SetGeometry(ogr.CreateGeometryFromWkb(wkb))
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    dataset = None


def read_layer(source):
    """(fids (n,), shapely geometries (n,), CRS as WKT) of an OGR source "path[|layername=name]".

    Reading goes feature by feature through OGR, as a script would; geometries come as ISO WKB.
    """
    path, layer_name = _path_and_layer(source)
    dataset = ogr.Open(str(path))
    if dataset is None:
        raise FileNotFoundError(f"OGR cannot open {path}")
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    srs = layer.GetSpatialRef()
    if srs is None:
        raise ValueError(f"{source} has no CRS")
    fids, wkbs = [], []
    for feature in layer:
        geometry = feature.GetGeometryRef()
        fids.append(feature.GetFID())
        wkbs.append(bytes(geometry.ExportToIsoWkb()) if geometry is not None else None)
    wkt = srs.ExportToWkt()
    dataset = None
    present = np.array([w is not None for w in wkbs], dtype=bool)
    geoms = np.full(len(wkbs), None, dtype=object)
    if present.any():
        geoms[present] = shapely.from_wkb(np.array(wkbs, dtype=object)[present], on_invalid="fix")
    return np.asarray(fids, dtype=np.int64), geoms, wkt
