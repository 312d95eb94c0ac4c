"""Odd layers named before reading (issue 28, item 5): TIN and polyhedral surfaces, undefined CRSs."""

import struct

import pytest
import shapely
from qgis.core import QgsProcessingException

from tools.corpus import ALGORITHMS, BERLIN, NO_CRS, berlin_partner, gpkg_layer, metres_box, write_gpkg


def _tin_wkb(ring, surface_type=16):
    """A TIN (16) or polyhedral surface (15) of one triangle ``ring`` (4 points, closed)."""
    part_type = 17 if surface_type == 16 else 3
    part = struct.pack("<BII", 1, part_type, 1) + struct.pack("<I", len(ring)) + b"".join(
        struct.pack("<dd", x, y) for x, y in ring)
    return struct.pack("<BII", 1, surface_type, 1) + part


def _run(algorithm, layer, role):
    import processing

    partner = berlin_partner()
    inputs = {"INPUT": layer, "REFERENCE": partner} if role == "input" else {"INPUT": partner, "REFERENCE": layer}
    extra = {"OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"} if algorithm == "matchfeatures" else {}
    return processing.run(f"overlaprelevance:{algorithm}", {**inputs, "OUTPUT": "memory:", **extra})


@pytest.fixture
def surfaces(tmp_path):
    folder = tmp_path
    square = metres_box(*BERLIN, 20.0)
    ring = list(square.exterior.coords)[:3] + [square.exterior.coords[0]]
    layers = {name: gpkg_layer(write_gpkg(folder / f"{name}.gpkg", name.upper(), [_tin_wkb(ring, code)]))
              for name, code in (("tin", 16), ("polyhedralsurface", 15))}
    yield layers
    layers.clear()  # the layers go while QGIS is still running (at exit they crash its shutdown)


@pytest.mark.parametrize("role", ["input", "reference"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kind", ["tin", "polyhedralsurface"])
def test_surfaces_that_are_not_polygons_are_named_before_reading(provider, surfaces, kind, algorithm, role):
    layer = surfaces[kind]
    with pytest.raises(QgsProcessingException, match=f"The {role} layer has {'TIN' if kind == 'tin' else 'Poly'}"):
        _run(algorithm, layer, role)


@pytest.fixture
def undefined(tmp_path):
    folder = tmp_path
    lonlat = shapely.to_wkb(metres_box(*BERLIN, 20.0))
    metres = shapely.to_wkb(shapely.box(390_000.0, 5_820_000.0, 390_020.0, 5_820_020.0))
    layers = {
        "cartesian": gpkg_layer(write_gpkg(folder / "cartesian.gpkg", "POLYGON", [lonlat], epsg=-1)),
        "geographic, metres": gpkg_layer(write_gpkg(folder / "geographic_m.gpkg", "POLYGON", [metres], epsg=0)),
        "geographic, lon/lat": gpkg_layer(write_gpkg(folder / "geographic.gpkg", "POLYGON", [lonlat], epsg=0)),
    }
    yield layers
    layers.clear()


@pytest.mark.parametrize("role", ["input", "reference"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_undefined_crs_is_refused_as_a_missing_one(provider, undefined, algorithm, role):
    """GeoPackage's undefined Cartesian SRS, and its undefined geographic SRS holding metres (which gave every
    feature unmatched with one warning), get the message of a missing CRS; lon/lat in srs_id 0 still works."""
    for name in ("cartesian", "geographic, metres"):
        with pytest.raises(QgsProcessingException, match=f"The {role} layer {NO_CRS}.*Undefined"):
            _run(algorithm, undefined[name], role)
    _run(algorithm, undefined["geographic, lon/lat"], role)
