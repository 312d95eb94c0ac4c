"""Generate the bundled sample: one district's buildings "from two sources".

Source A (``buildings_cadastre.gpkg``, EPSG:25833, ETRS89 / UTM 33N) is the reference
footprint set. Source B (``buildings_mapping.gpkg``, EPSG:4326) is the same district as
another agency maps it: every building shifted by a common offset plus its own small
positional error, slightly rotated and scaled, its vertices jittered; about 5 % of the
buildings are missing, 5 % are extra (new), and a few neighbours are merged into one.

Run with ``.venv/bin/python test/tools/make_sample_data.py``; it is seeded, so the
files are reproducible.
"""

from pathlib import Path

import numpy as np
import shapely
from osgeo import ogr, osr
from pyproj import Transformer
from shapely import affinity

OUT = Path(__file__).resolve().parents[2] / "resources" / "sample"
SEED = 20261122
ORIGIN = (391_000.0, 5_820_000.0)  # Berlin-Mitte in UTM 33N, metres
BLOCKS = (6, 5)
BLOCK_SIZE = 90.0
STREET = 18.0


def building(rng, x, y, w, h):
    """A rectangle or an L-shaped footprint with its lower-left corner at (x, y)."""
    if rng.random() < 0.3:
        cut_w, cut_h = w * rng.uniform(0.3, 0.6), h * rng.uniform(0.3, 0.6)
        return shapely.Polygon([(x, y), (x + w, y), (x + w, y + h - cut_h), (x + w - cut_w, y + h - cut_h),
                                (x + w - cut_w, y + h), (x, y + h)])
    return shapely.box(x, y, x + w, y + h)


def cadastre(rng):
    footprints = []
    for bx in range(BLOCKS[0]):
        for by in range(BLOCKS[1]):
            x0 = ORIGIN[0] + bx * (BLOCK_SIZE + STREET)
            y0 = ORIGIN[1] + by * (BLOCK_SIZE + STREET)
            x = x0
            while x < x0 + BLOCK_SIZE - 8:  # a row of buildings along the block's south side
                w = min(rng.uniform(8, 22), x0 + BLOCK_SIZE - x)
                footprints.append(building(rng, x, y0 + rng.uniform(0, 3), w, rng.uniform(9, 16)))
                x += w + rng.choice([0.0, rng.uniform(1, 4)])
            for _ in range(rng.integers(2, 5)):  # detached buildings in the block's interior
                cx, cy = x0 + rng.uniform(10, BLOCK_SIZE - 25), y0 + rng.uniform(25, BLOCK_SIZE - 20)
                footprints.append(affinity.rotate(building(rng, cx, cy, rng.uniform(7, 15), rng.uniform(6, 12)),
                                                  rng.uniform(-20, 20)))
    return np.array(footprints, dtype=object)


def second_source(rng, footprints):
    common_shift = np.array([0.8, -0.6])
    keep = rng.random(len(footprints)) > 0.05
    mapped = []
    for index in np.flatnonzero(keep):
        g = footprints[index]
        dx, dy = common_shift + rng.normal(0, 0.5, 2)
        g = affinity.rotate(g, rng.normal(0, 1.5), origin="centroid")
        g = affinity.scale(g, *(1 + rng.normal(0, 0.02, 2)), origin="centroid")
        g = affinity.translate(g, dx, dy)
        coords = shapely.get_coordinates(g)
        coords[:-1] += rng.normal(0, 0.25, coords[:-1].shape)
        coords[-1] = coords[0]
        mapped.append((int(index), shapely.make_valid(shapely.set_coordinates(g, coords))))
    # A few neighbours merged into one footprint, as generalised maps do.
    merged, merged_ids = [], set()
    for (i, a), (j, b) in zip(mapped[::17], mapped[1::17]):
        if a.distance(b) < 2.0:
            merged.append((i, shapely.union(a, b).buffer(0.5).buffer(-0.5)))
            merged_ids |= {i, j}
    result = [(i, g) for i, g in mapped if i not in merged_ids] + merged
    for k in range(int(0.05 * len(footprints))):  # new buildings the cadastre does not have yet
        x = ORIGIN[0] + rng.uniform(0, BLOCKS[0] * (BLOCK_SIZE + STREET))
        y = ORIGIN[1] + rng.uniform(0, BLOCKS[1] * (BLOCK_SIZE + STREET))
        result.append((-1 - k, building(rng, x, y, rng.uniform(5, 10), rng.uniform(5, 10))))
    return result


def write(path, epsg, rows, fields):
    path.unlink(missing_ok=True)
    driver = ogr.GetDriverByName("GPKG")
    dataset = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = dataset.CreateLayer(path.stem, srs, ogr.wkbMultiPolygon)
    for name, kind in fields:
        layer.CreateField(ogr.FieldDefn(name, kind))
    for values, geom in rows:
        feature = ogr.Feature(layer.GetLayerDefn())
        for (name, _), value in zip(fields, values):
            feature.SetField(name, value)
        feature.SetGeometry(ogr.ForceToMultiPolygon(ogr.CreateGeometryFromWkb(shapely.to_wkb(geom))))
        layer.CreateFeature(feature)
    dataset = None


def main():
    rng = np.random.default_rng(SEED)
    footprints = cadastre(rng)
    mapped = second_source(rng, footprints)
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "buildings_cadastre.gpkg", 25833,
          [((f"C{i:04d}", round(float(g.area), 1)), g) for i, g in enumerate(footprints)],
          [("building_id", ogr.OFTString), ("area_m2", ogr.OFTReal)])
    to_lonlat = Transformer.from_crs(25833, 4326, always_xy=True)
    rows = []
    for n, (source_index, g) in enumerate(mapped):
        lonlat = shapely.transform(g, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
        truth = f"C{source_index:04d}" if source_index >= 0 else ""
        rows.append(((f"M{n:04d}", truth), lonlat))
    write(OUT / "buildings_mapping.gpkg", 4326, rows, [("map_id", ogr.OFTString), ("true_match", ogr.OFTString)])
    print(f"{len(footprints)} cadastre and {len(rows)} mapped buildings written to {OUT}")


if __name__ == "__main__":
    main()
