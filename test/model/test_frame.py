"""Local metric frame: LAEA accuracy, areas, CRS independence, validity report, speed."""
import os
import subprocess
import sys
import time

import numpy as np
import pyproj
import pytest
import shapely

from overlap_relevance.model.frame import (
    InvalidCrsError,
    MissingCrsError,
    NonPolygonalGeometryError,
    geometry_unit_centres,
    layer_to_lonlat,
    project_pairs,
)
from overlap_relevance.model.laea import laea_forward, laea_inverse

GEOD = pyproj.Geod(ellps="WGS84")
RNG_SEED = 20240611


def points_around(lon0, lat0, max_distance_m, n, seed=RNG_SEED):
    """n points at random azimuths and geodesic distances up to max_distance_m from the centre."""
    rng = np.random.default_rng(seed)
    azimuth = rng.uniform(-180.0, 180.0, n)
    distance = rng.uniform(0.0, max_distance_m, n)
    lon, lat, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), azimuth, distance)
    return lon, lat


def star_polygon(lon0, lat0, radius_m=20e3, n_vertices=96):
    """A three-lobed lon/lat polygon, radius_m * (1 +- 0.25) geodesic metres from its centre."""
    azimuth = np.linspace(0.0, 360.0, n_vertices, endpoint=False)
    radius = radius_m * (1.0 + 0.25 * np.cos(np.deg2rad(3.0 * azimuth)))
    lon, lat, _ = GEOD.fwd(np.full(n_vertices, lon0), np.full(n_vertices, lat0), azimuth, radius)
    return shapely.Polygon(np.column_stack([lon, lat]))


def antimeridian_box(lat_mid=20.0):
    """Lon 179.8 .. -179.8 (0.4 deg across the antimeridian), lat_mid +- 0.2, written with wrapped longitudes."""
    lons = np.r_[np.linspace(179.8, 179.95, 4), -180.0, np.linspace(-179.95, -179.8, 4)]
    top = np.column_stack([lons, np.full(lons.size, lat_mid + 0.2)])
    bottom = np.column_stack([lons[::-1], np.full(lons.size, lat_mid - 0.2)])
    return shapely.Polygon(np.vstack([top, bottom]))


def polar_cap_ring(lat=89.8):
    """A cap around the North Pole written the lon/lat way: a parallel cut at the antimeridian, closed via the pole."""
    lons = np.linspace(-180.0, 180.0, 361)
    return shapely.Polygon(
        np.vstack([np.column_stack([lons, np.full(lons.size, lat)]), [[180.0, 90.0], [-180.0, 90.0]]])
    )


def self_frame(geom, crs=4326):
    layer = layer_to_lonlat([geom], crs)
    return project_pairs(layer, layer, [0], [0])


def geodesic_area(geom):
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def transform_geometry(geom, transformer, direction="FORWARD"):
    return shapely.transform(
        geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1], direction=direction))
    )


# --------------------------------------------------------------------------- LAEA
@pytest.mark.parametrize(
    "lon0, lat0",
    [(0, 0), (10, 60), (-120, -45), (179.9, 10), (-180, -30), (-75, 30), (135, -70), (2.35, 48.85),
     (-45, 80), (90, -80), (0, 45), (-179.99, -5)],
)
def test_laea_forward_matches_proj_and_inverts(lon0, lat0):
    lon, lat = points_around(lon0, lat0, 3_000e3, 2000)
    proj_laea = pyproj.Transformer.from_crs(
        4326, f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=WGS84", always_xy=True
    )
    x_ref, y_ref = proj_laea.transform(lon, lat)
    x, y = laea_forward(lon, lat, lon0, lat0)
    assert np.hypot(x - x_ref, y - y_ref).max() < 1e-6

    lon_back, lat_back = laea_inverse(x, y, lon0, lat0)
    dlon = (lon_back - lon + 180.0) % 360.0 - 180.0
    assert np.abs(lat_back - lat).max() < 1e-9
    assert np.abs(dlon).max() < 1e-9


@pytest.mark.parametrize("lon0, lat0", [(45, 89.5), (0, -89.9), (30, 90), (0, -90)])
def test_laea_near_poles_agrees_with_proj_to_its_precision(lon0, lat0):
    # PROJ computes cos(beta) as sqrt(1 - sin^2) and loses ~1e-5 m there; our
    # cancellation-free form is checked to 1e-8 m in the high-precision test.
    lon, lat = points_around(lon0, lat0, 3_000e3, 2000)
    proj_laea = pyproj.Transformer.from_crs(
        4326, f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=WGS84", always_xy=True
    )
    x_ref, y_ref = proj_laea.transform(lon, lat)
    x, y = laea_forward(lon, lat, lon0, lat0)
    assert np.hypot(x - x_ref, y - y_ref).max() < 2e-4

    lon_back, lat_back = laea_inverse(x, y, lon0, lat0)
    dlon = (lon_back - lon + 180.0) % 360.0 - 180.0
    assert np.abs(lat_back - lat).max() < 1e-9
    assert np.abs(dlon * np.cos(np.deg2rad(lat))).max() < 1e-9


@pytest.mark.parametrize("lon0, lat0", [(45, 89.5), (0, -89.9), (100, 89.99999), (5, 1e-9), (10, 60)])
def test_laea_against_50_digit_snyder(lon0, lat0):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    a = mp.mpf(6378137)
    f = 1 / mp.mpf("298.257223563")
    e2 = f * (2 - f)
    e = mp.sqrt(e2)

    def q(phi):
        s = mp.sin(phi)
        return (1 - e2) * (s / (1 - e2 * s * s) + mp.atanh(e * s) / e)

    qp = q(mp.pi / 2)
    rq = a * mp.sqrt(qp / 2)
    phi1 = mp.radians(mp.mpf(lat0))
    b1 = mp.asin(q(phi1) / qp)
    d = a * mp.cos(phi1) / mp.sqrt(1 - e2 * mp.sin(phi1) ** 2) / (rq * mp.cos(b1))

    lon, lat = points_around(lon0, lat0, 3_000e3, 30)
    reference = []
    for lo, la in zip(lon, lat):
        b = mp.asin(q(mp.radians(mp.mpf(la))) / qp)
        dl = mp.radians(mp.mpf(lo) - mp.mpf(lon0))
        big_b = rq * mp.sqrt(2 / (1 + mp.sin(b1) * mp.sin(b) + mp.cos(b1) * mp.cos(b) * mp.cos(dl)))
        reference.append((
            float(big_b * d * mp.cos(b) * mp.sin(dl)),
            float(big_b / d * (mp.cos(b1) * mp.sin(b) - mp.sin(b1) * mp.cos(b) * mp.cos(dl))),
        ))
    reference = np.array(reference)
    x, y = laea_forward(lon, lat, lon0, lat0)
    assert np.hypot(x - reference[:, 0], y - reference[:, 1]).max() < 1e-8


@pytest.mark.parametrize("lon0, lat0", [(0, 0), (10, 60), (-30, -75), (100, 89.99999), (30, 90), (0, -90)])
def test_scale_is_true_at_the_centre_in_every_direction(lon0, lat0):
    azimuth = np.arange(0.0, 360.0, 30.0)
    lon, lat, _ = GEOD.fwd(np.full(azimuth.size, lon0), np.full(azimuth.size, lat0), azimuth, np.full(azimuth.size, 10.0))
    x, y = laea_forward(lon, lat, lon0, lat0)
    np.testing.assert_allclose(np.hypot(x, y), 10.0, rtol=1e-7)


# --------------------------------------------------------------------------- areas
AREA_CASES = {
    "equator": lambda: star_polygon(0.0, 0.0),
    "60N": lambda: star_polygon(10.0, 60.0),
    "antimeridian star 60N": lambda: star_polygon(179.95, 60.0),
    "antimeridian box 179.8..-179.8": antimeridian_box,
    "89.5N (pole outside)": lambda: star_polygon(0.0, 89.5),
    "-89.6S (pole outside)": lambda: star_polygon(-60.0, -89.6, radius_m=15e3),
    "polar cap (pole inside, cut ring)": polar_cap_ring,
}


@pytest.mark.parametrize("case", AREA_CASES)
def test_frame_area_equals_geodesic_area(case):
    polygon = AREA_CASES[case]()
    frames = self_frame(polygon)
    frame_area = shapely.area(frames.a[0])
    relative_error = abs(frame_area - geodesic_area(polygon)) / geodesic_area(polygon)
    assert relative_error < 1e-5, relative_error  # required: 1e-3
    assert shapely.is_valid(frames.a[0]) and frames.a[0].geom_type == "Polygon"


def test_antimeridian_polygon_is_small_not_a_sliver_round_the_globe():
    box = antimeridian_box(lat_mid=20.0)
    frames = self_frame(box)
    xmin, ymin, xmax, ymax = shapely.bounds(frames.a[0])
    true_width = GEOD.inv(179.8, 20.0, -179.8, 20.0)[2]  # along the parallel ~ geodesic here
    true_height = GEOD.inv(180.0, 19.8, 180.0, 20.2)[2]
    assert abs((xmax - xmin) - true_width) / true_width < 2e-3
    assert abs((ymax - ymin) - true_height) / true_height < 2e-3
    assert abs(abs(frames.lon0[0]) - 180.0) < 0.05
    assert frames.n_repaired_a == 0


# --------------------------------------------------------------------------- CRS independence
@pytest.mark.parametrize(
    "crs, lon0, lat0",
    [(3857, 10.0, 60.0), (27700, -1.5, 52.5), (2056, 8.2, 46.8), (32633, 15.0, 50.0),
     ("OGC:CRS84", 3.0, 40.0), (pyproj.CRS(4326).to_wkt(), -70.0, -33.0),
     ("+proj=longlat +datum=WGS84 +no_defs", 120.0, 30.0)],
)
def test_same_geometry_in_any_crs_gives_the_same_frame(crs, lon0, lat0):
    lonlat = star_polygon(lon0, lat0, radius_m=10e3)
    to_crs = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    delivered = transform_geometry(lonlat, to_crs, direction="INVERSE")
    reference = self_frame(lonlat, 4326)
    frames = self_frame(delivered, crs)
    difference = shapely.get_coordinates(frames.a) - shapely.get_coordinates(reference.a)
    assert np.abs(difference).max() < 1e-3


def test_web_mercator_lengths_are_fixed_in_the_frame():
    # A 100 m square in true metres at 60N (built in a LAEA frame), delivered in EPSG:3857.
    corners_x = np.array([-50.0, 50.0, 50.0, -50.0])
    corners_y = np.array([-50.0, -50.0, 50.0, 50.0])
    lon, lat = laea_inverse(corners_x, corners_y, 10.0, 60.0)
    mercator_x, mercator_y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    in_3857 = shapely.Polygon(np.column_stack([mercator_x, mercator_y]))
    mercator_sides = np.hypot(*np.diff(shapely.get_coordinates(in_3857), axis=0).T)
    # ~1 / cos(60 deg); 3857 is spherical Mercator on ellipsoidal latitudes, hence not exactly 2.
    np.testing.assert_allclose(mercator_sides, 200.0, rtol=5e-3)

    frames = self_frame(in_3857, 3857)
    frame_sides = np.hypot(*np.diff(shapely.get_coordinates(frames.a[0]), axis=0).T)
    np.testing.assert_allclose(frame_sides, 100.0, atol=1e-6)
    assert abs(shapely.area(frames.a[0]) - 1e4) < 1e-4


# --------------------------------------------------------------------------- pairs
def test_pair_centre_is_the_spherical_midpoint_and_frames_share_it():
    a = star_polygon(179.99, 0.0, radius_m=5e3)
    b = star_polygon(-179.99, 0.0, radius_m=5e3)
    frames = project_pairs([a], [b], [0], [0])
    centre_a, centre_b = geometry_unit_centres([a, b])
    mid = (centre_a + centre_b) / np.linalg.norm(centre_a + centre_b)
    assert abs(abs(frames.lon0[0]) - 180.0) < 1e-6
    np.testing.assert_allclose(
        [np.cos(np.deg2rad(frames.lat0[0])) * np.cos(np.deg2rad(frames.lon0[0])),
         np.sin(np.deg2rad(frames.lat0[0]))],
        [mid[0], mid[2]], atol=1e-12,
    )
    # Centres 0.02 deg apart: A sits ~1.1 km west of the centre, B as far east.
    centroid_a = shapely.centroid(frames.a[0])
    centroid_b = shapely.centroid(frames.b[0])
    assert centroid_a.x < -1000 and centroid_b.x > 1000
    assert abs(centroid_b.x - centroid_a.x - GEOD.inv(179.99, 0, -179.99, 0)[2]) < 50.0


def test_to_local_and_to_lonlat_match_the_projected_pairs():
    polygons = [star_polygon(lon, lat, radius_m=3e3) for lon, lat in [(5, 45), (-60, -10), (170, 70)]]
    layer = layer_to_lonlat(polygons, 4326)
    index_a = np.array([0, 1, 2, 0])
    index_b = np.array([0, 1, 2, 2])
    frames = project_pairs(layer, layer, index_a, index_b)
    coords, owner = shapely.get_coordinates(layer.geoms[index_a], return_index=True)
    x, y = frames.to_local(coords[:, 0], coords[:, 1], owner)
    np.testing.assert_allclose(np.column_stack([x, y]), shapely.get_coordinates(frames.a), atol=1e-9)
    lon, lat = frames.to_lonlat(x, y, owner)
    np.testing.assert_allclose(lat, coords[:, 1], atol=1e-9)
    np.testing.assert_allclose((lon - coords[:, 0] + 180) % 360 - 180, 0.0, atol=1e-9)


def test_explicit_centres_are_used():
    square = shapely.box(10.0, 50.0, 10.01, 50.01)
    frames = project_pairs([square], [square], [0], [0], centers=([10.0], [50.0]))
    xmin, ymin, _, _ = shapely.bounds(frames.a[0])
    assert abs(xmin) < 1e-6 and abs(ymin) < 1e-6
    assert frames.lon0[0] == 10.0 and frames.lat0[0] == 50.0


@pytest.mark.parametrize("timed", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_ten_thousand_pairs_project_fast_and_inputs_are_untouched(timed):
    """The time bound only in `make test-slow` (timed=True): a loaded machine may take longer (issue 28)."""
    rng = np.random.default_rng(RNG_SEED)
    n_features, n_vertices, n_pairs = 2000, 32, 10_000
    centre_lon = rng.uniform(-180.0, 180.0, n_features)
    centre_lat = rng.uniform(-70.0, 70.0, n_features)
    angle = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    radius_deg = rng.uniform(5e-4, 5e-3, (n_features, 1)) * (1 + 0.2 * rng.random((n_features, n_vertices)))
    lon = centre_lon[:, None] + radius_deg * np.cos(angle) / np.cos(np.deg2rad(centre_lat[:, None]))
    lat = centre_lat[:, None] + radius_deg * np.sin(angle)
    polygons_a = shapely.polygons(np.stack([lon, lat], axis=-1))
    polygons_b = shapely.polygons(np.stack([lon + 1e-3, lat], axis=-1))
    original_a = shapely.get_coordinates(polygons_a).copy()
    layer_a = layer_to_lonlat(polygons_a, 4326)
    layer_b = layer_to_lonlat(polygons_b, 4326)
    index_a = rng.integers(0, n_features, n_pairs)
    index_b = rng.integers(0, n_features, n_pairs)

    project_pairs(layer_a, layer_b, index_a[:10], index_b[:10])  # warm-up (caches centres)
    start = time.perf_counter()
    frames = project_pairs(layer_a, layer_b, index_a, index_b)
    elapsed = time.perf_counter() - start
    assert len(frames) == n_pairs
    assert elapsed < 1.0 or not timed, f"10k pairs took {elapsed:.3f} s"
    assert shapely.is_valid(frames.a).all() and shapely.is_valid(frames.b).all()
    np.testing.assert_array_equal(shapely.get_coordinates(polygons_a), original_a)
    np.testing.assert_array_equal(shapely.get_coordinates(layer_a.geoms), original_a)


# --------------------------------------------------------------------------- validity report
def test_bow_tie_is_repaired_and_counted_once_per_source():
    bow_tie = shapely.Polygon([(10.0, 50.0), (10.01, 50.01), (10.01, 50.0), (10.0, 50.01)])
    good = shapely.box(10.0, 50.0, 10.01, 50.01)
    layer_a = layer_to_lonlat([bow_tie, good], 4326)
    layer_b = layer_to_lonlat([good, bow_tie, bow_tie], 4326)
    frames = project_pairs(layer_a, layer_b, [0, 0, 0, 1], [0, 1, 2, 0])
    assert frames.n_repaired_a == 1  # source 0 used three times
    assert frames.n_repaired_b == 2  # sources 1 and 2
    assert shapely.is_valid(frames.a).all() and shapely.is_valid(frames.b).all()
    assert set(shapely.get_type_id(frames.a)) <= {3, 6}
    # The bow-tie is two triangles, half the box.
    np.testing.assert_allclose(shapely.area(frames.a[0]), shapely.area(frames.a[3]) / 2, rtol=1e-6)


def test_none_and_empty_are_flagged_and_pairs_survive():
    good = shapely.box(10.0, 50.0, 10.01, 50.01)
    layer = layer_to_lonlat([good, None, shapely.Polygon(), shapely.GeometryCollection()], 4326)
    assert layer.missing.tolist() == [False, True, True, True]
    assert layer.n_missing == 3 and layer.n_nonfinite == 0
    assert layer.usable.tolist() == [True, False, False, False]
    assert all(g is None for g in layer.geoms[1:])
    frames = project_pairs(layer, layer, [0, 1, 1], [1, 0, 2])
    assert frames.a[0] is not None and frames.b[0] is None
    assert abs(frames.lat0[0] - 50.005) < 1e-3  # the present side sets the centre
    assert np.isnan(frames.lat0[2])
    assert frames.n_repaired_a == frames.n_repaired_b == 0


def test_nonfinite_coordinates_are_flagged_not_fatal():
    orthographic = "+proj=ortho +lat_0=0 +lon_0=0 +datum=WGS84"
    inside = shapely.box(0.0, 0.0, 1000.0, 1000.0)
    off_the_globe = shapely.box(7.0e6, 0.0, 7.1e6, 1000.0)
    with np.errstate(invalid="ignore"):
        with_nan = shapely.Polygon([(0, 0), (1, 0), (np.nan, 1), (0, 0)])
    layer = layer_to_lonlat([inside, off_the_globe, with_nan], orthographic)
    assert layer.nonfinite.tolist() == [False, True, True]
    assert layer.n_nonfinite == 2 and layer.n_missing == 0
    assert layer.geoms[1] is None and layer.geoms[0] is not None


def test_z_is_dropped_and_collections_keep_their_polygons():
    with_z = shapely.Polygon([(0, 0, 5), (1, 0, 5), (1, 1, 5), (0, 0, 5)])
    collection = shapely.GeometryCollection(
        [shapely.Point(0, 0), shapely.box(2, 2, 3, 3), shapely.MultiPolygon([shapely.box(4, 4, 5, 5)])]
    )
    layer = layer_to_lonlat([with_z, collection], 4326)
    assert not shapely.has_z(layer.geoms).any()
    assert layer.geoms[1].geom_type == "MultiPolygon"
    assert shapely.get_num_geometries(layer.geoms[1]) == 2


def test_lines_and_points_raise_a_clear_error():
    lines = [shapely.LineString([(0, 0), (1, 1)]), shapely.LineString([(0, 1), (1, 2)])]
    with pytest.raises(NonPolygonalGeometryError, match=r"2 of 2 .*LINESTRING"):
        layer_to_lonlat(lines, 4326)
    mixed = [shapely.box(0, 0, 1, 1), shapely.Point(0, 0), shapely.GeometryCollection([shapely.Point(1, 1)])]
    with pytest.raises(NonPolygonalGeometryError, match=r"2 of 3 .*POINT.*index \[1, 2\]") as info:
        layer_to_lonlat(mixed, 4326)
    assert "GEOMETRYCOLLECTION without polygons" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("crs", [None, "", "  "])
def test_missing_crs_raises(crs):
    with pytest.raises(MissingCrsError, match="no coordinate reference system"):
        layer_to_lonlat([shapely.box(0, 0, 1, 1)], crs)


def test_unreadable_crs_raises():
    with pytest.raises(InvalidCrsError):
        layer_to_lonlat([shapely.box(0, 0, 1, 1)], "EPSG:not-a-code")


# --------------------------------------------------------------------------- purity
def test_frame_module_imports_neither_qgis_nor_tensorflow():
    code = (
        "import sys, overlap_relevance.model.frame, overlap_relevance.model.overlap\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qgis', 'tensorflow', 'scipy'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    # The child sees the same import path as this process, however the package got onto it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pairs_centred_on_a_large_feature_measure_the_same_overlap():
    """centre_on_large: the large side is projected once, in its own frame; overlaps are unchanged."""
    from overlap_relevance.model.frame import TRIG_CACHE_MIN_VERTICES
    from overlap_relevance.model.overlap import exact_overlap

    big = shapely.buffer(shapely.Point(12.0, 55.0), 1.5, quad_segs=200)  # ~800 vertices, ~300 km across
    assert shapely.get_num_coordinates(big) > TRIG_CACHE_MIN_VERTICES
    rng = np.random.default_rng(3)
    centres = np.column_stack([12.0 + rng.uniform(-2, 2, 30), 55.0 + rng.uniform(-1.5, 1.5, 30)])
    small = shapely.buffer(shapely.points(centres), 0.2, quad_segs=4)
    lonlat_a = layer_to_lonlat(small, 4326)
    lonlat_b = layer_to_lonlat(np.array([big], dtype=object), 4326)
    index_a, index_b = np.arange(30), np.zeros(30, dtype=int)
    midpoint = project_pairs(lonlat_a, lonlat_b, index_a, index_b, repair=False)
    own = project_pairs(lonlat_a, lonlat_b, index_a, index_b, repair=False, centre_on_large=True)
    assert len({id(g) for g in own.b}) == 1  # one projection of the large feature for every pair
    assert np.allclose(own.lon0, own.lon0[0]) and not np.allclose(midpoint.lon0, midpoint.lon0[0])
    before, after = exact_overlap(midpoint.a, midpoint.b), exact_overlap(own.a, own.b)
    assert np.allclose(after.area_a, before.area_a, rtol=1e-6)
    assert np.allclose(after.area_b, before.area_b, rtol=1e-6)
    assert np.allclose(after.iou, before.iou, atol=1e-5)
    assert 0 < np.count_nonzero(before.iou > 0) < 30
