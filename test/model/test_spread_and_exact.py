"""Plain Python: features spread over the globe are scored on what can meet; σ = 0 writes exact numbers.

World_map is read feature by feature through OGR (as QGIS reads it), so these tests do not depend on
the plugin's fast reading path.
"""

from pathlib import Path

import numpy as np
import pytest
import shapely

from overlap_relevance.model.candidates import spans_every_longitude
from overlap_relevance.model.frame import layer_to_lonlat, project_pairs
from overlap_relevance.model.preparation import MAX_MODEL_VERTICES, prepare_layer
from overlap_relevance.model.overlap import exact_overlap_of_frames
from overlap_relevance.model.pairs import full_detail
from overlap_relevance.model.scoring import BestMatches, load_model, score_candidate_pairs

WORLD = Path("/usr/share/qgis/resources/data/world_map.gpkg")
needs_world = pytest.mark.skipif(not WORLD.exists(), reason="QGIS's world_map.gpkg is not installed")


def read_world(layer_name, field, keep=None):
    """(keys, geometries) of a world_map layer, feature by feature through OGR; ``keep``: keys to keep."""
    from osgeo import ogr

    dataset = ogr.Open(str(WORLD))
    keys, geoms = [], []
    for feature in dataset.GetLayerByName(layer_name):
        key = feature.GetField(field)
        if keep is None or key in keep:
            keys.append(key)
            geoms.append(shapely.from_wkb(bytes(feature.GetGeometryRef().ExportToIsoWkb())))
    dataset = None
    return np.array(keys, dtype=object), np.array(geoms, dtype=object)


def best_at_sigma0(geoms_a, geoms_b, crs="EPSG:4326"):
    """(best reference position per input, written IoU, the chunks) of the plugin's core at σ = 0."""
    model_a = prepare_layer(layer_to_lonlat(geoms_a, crs)).model
    model_b = prepare_layer(layer_to_lonlat(geoms_b, crs)).model
    best = BestMatches(len(geoms_a))
    chunks = []
    for chunk in score_candidate_pairs(load_model(), model_a, model_b, np.zeros(len(geoms_a))):
        best.add(chunk)
        chunks.append(chunk)
    return best, chunks, model_a, model_b


def geodesic_area(geom):
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0])


@needs_world
def test_norway_with_bouvet_scores_against_its_own_states():
    countries = {"NOR", "SWE", "FIN", "RUS", "DNK"}
    state_keys, states = read_world("states_provinces", "adm0_a3", keep={"NOR", "SWE"})
    country_keys, country_geoms = read_world("countries", "ISO_A3", keep=countries)
    lonlat = layer_to_lonlat(country_geoms, "EPSG:4326")
    norway = np.flatnonzero(country_keys == "NOR")[0]
    assert lonlat.usable[norway] and lonlat.spread[norway]  # Bouvet Island, 54° S, is one of its parts
    best, _, _, model_b = best_at_sigma0(states, country_geoms)
    assert (best.index_b >= 0).all()
    assert (country_keys[best.index_b] == state_keys).all()
    # IoU and coverages use Norway's whole area, Bouvet Island included.
    assert model_b.full_detail.true_area[norway] == pytest.approx(geodesic_area(country_geoms[norway]), rel=1e-5)
    norwegian = state_keys == "NOR"
    assert best.values[norwegian, 2].min() > 0.99  # cover of the state by Norway
    assert best.values[norwegian, 3].sum() == pytest.approx(1.0, abs=0.01)  # the states make up Norway


def square(lon, lat, size):
    return shapely.box(lon, lat, lon + size, lat + size)


def test_scattered_multipart_over_both_hemispheres():
    """One feature with parts in Europe, the South Pacific and across the antimeridian: each reference
    near one part sees that part, against the whole feature's area."""
    parts = [square(10.0, 60.0, 1.0), square(-150.0, -50.0, 1.0),
             shapely.Polygon([(179.5, 10.0), (180.0, 10.0), (180.0, 11.0), (179.5, 11.0)]),
             shapely.Polygon([(-180.0, 10.0), (-179.5, 10.0), (-179.5, 11.0), (-180.0, 11.0)])]
    spread = shapely.MultiPolygon(parts)
    references = np.array([square(10.0, 60.0, 1.0), square(-150.0, -50.0, 1.0),
                           shapely.Polygon([(179.5, 10.0), (-179.5, 10.0), (-179.5, 11.0), (179.5, 11.0)]),
                           square(100.0, 0.0, 1.0)], dtype=object)
    lonlat_a = layer_to_lonlat(np.array([spread], dtype=object), "EPSG:4326")
    lonlat_b = layer_to_lonlat(references, "EPSG:4326")
    assert lonlat_a.spread[0]
    frames = project_pairs(lonlat_a, lonlat_b, np.zeros(4, int), np.arange(4))
    overlap = exact_overlap_of_frames(frames)
    areas = overlap.area_b[:3]  # each reference is one of the parts
    whole = areas.sum()
    assert whole == pytest.approx(sum(geodesic_area(g) for g in references[:3]), rel=1e-4)  # straight vs geodesic
    # Each part measured in its own frame, the references in the pairs': 111 km edges bend a little differently.
    assert overlap.area_a[:3] == pytest.approx(np.full(3, whole), rel=1e-5)
    # The reference across the antimeridian has 1° edges where the part has two of 0.5°: straight in the
    # frame, they differ by a sagitta of ~40 m.
    assert overlap.cover_b[:3] == pytest.approx(np.ones(3), abs=1e-3)
    assert overlap.iou[:3] == pytest.approx(areas / whole, rel=1e-3)
    assert overlap.iou[3] == 0.0
    best, _, _, _ = best_at_sigma0(references, np.array([spread], dtype=object))
    assert (best.index_b[:3] == 0).all() and best.index_b[3] == -1
    assert best.values[:3, 0] == pytest.approx(areas / whole, rel=1e-3)


def test_features_round_a_pole_and_across_the_antimeridian():
    # A cap round the north pole cut along the antimeridian, densely drawn, and a square inside it.
    lon = np.linspace(-180.0, 180.0, 721)
    cap = shapely.Polygon(np.r_[np.column_stack([lon, np.full_like(lon, 80.0)]), [[180.0, 90.0], [-180.0, 90.0]]])
    inside = square(30.0, 84.0, 2.0)
    across = shapely.Polygon([(179.0, 82.0), (-179.0, 82.0), (-179.0, 83.0), (179.0, 83.0)])
    best, chunks, _, _ = best_at_sigma0(np.array([inside, across], dtype=object), np.array([cap], dtype=object))
    assert (best.index_b == 0).all()
    cap_area = geodesic_area(cap)
    expected = np.array([geodesic_area(inside), geodesic_area(shapely.Polygon(
        [(179.0, 82.0), (181.0, 82.0), (181.0, 83.0), (179.0, 83.0)]))]) / cap_area
    assert best.values[:, 0] == pytest.approx(expected, rel=1e-3)  # geodesic against straight edges
    assert best.values[:, 2] == pytest.approx(np.ones(2), abs=1e-6)  # each square lies inside the cap


@needs_world
def test_sigma0_writes_the_exact_iou_of_full_detail_geometries():
    state_keys, states = read_world("states_provinces", "adm0_a3", keep={"NOR", "SWE", "FIN"})
    country_keys, countries = read_world("countries", "ISO_A3", keep={"NOR", "SWE", "FIN", "RUS"})
    assert shapely.get_num_coordinates(countries).max() > MAX_MODEL_VERTICES
    best, chunks, model_a, model_b = best_at_sigma0(states, countries)
    written = np.concatenate([c.summary.iou_mean for c in chunks])
    index_a = np.concatenate([c.index_a for c in chunks])
    index_b = np.concatenate([c.index_b for c in chunks])
    # The exact overlay of the full-detail geometries, in the frames the plugin measures pairs in.
    full = project_pairs(full_detail(model_a), full_detail(model_b), index_a, index_b, repair=False,
                         centre_on_large=True, reach_m=0.0)
    exact = exact_overlap_of_frames(full).iou
    assert np.abs(written - exact).max() <= 1e-6
    # ... which the simplified geometries do not give: this test can fail.
    simplified = project_pairs(model_a, model_b, index_a, index_b, repair=False, centre_on_large=True)
    assert np.abs(exact_overlap_of_frames(simplified).iou - exact).max() > 1e-5
    assert (country_keys[best.index_b] == state_keys).all()
    # The Python API at σ = 0 gives the same exact numbers.
    first = np.unique(index_a, return_index=True)[1][:40]
    predicted = load_model().predict(states[index_a[first]], countries[index_b[first]], "EPSG:4326", sigma=0.0)
    assert np.abs(predicted.iou_mean - exact[first]).max() <= 1e-6


@needs_world
@pytest.mark.slow
def test_world_map_every_state_takes_its_exact_best_country():
    """Every state of world_map takes the country with the highest exact IoU (exact ties aside)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import exact_baseline

    source = f"{WORLD}|layername="
    _, _, index_a, index_b, iou = exact_baseline.exact_pairs(source + "states_provinces", source + "countries")
    state_keys, states = read_world("states_provinces", "adm0_a3")
    _, countries = read_world("countries", "ISO_A3")
    exact_best, best_iou, second = exact_baseline.best_per_input(index_a, iou, len(states))
    best, _, _, _ = best_at_sigma0(states, countries)
    decided = (best_iou > 0) & (best_iou - second > 1e-6)
    truth = index_b[np.maximum(exact_best, 0)]
    assert (best.index_b[decided] == truth[decided]).all()
    assert decided.sum() >= 4500
    # Russian, Ukrainian and Norwegian states among them.
    for key in ("RUS", "UKR", "NOR"):
        assert (best.index_b[state_keys == key] >= 0).all()


def test_long_lonlat_edges_are_counted():
    """A 4-vertex lon/lat box round a pole has edges thousands of km long: flagged, so the run warns."""
    geoms = np.array([shapely.box(-180.0, 80.0, 180.0, 90.0), square(10.0, 10.0, 0.1), None], dtype=object)
    assert layer_to_lonlat(geoms, "EPSG:4326").long_edges.tolist() == [True, False, False]


def test_whole_world_and_polar_box_polygons():
    """A whole-world box and a 4-vertex lon/lat box round the north pole: every small feature inside them is
    a candidate and lies wholly inside, against their whole areas."""
    world = shapely.box(-180.0, -90.0, 180.0, 90.0)
    cap = shapely.box(-180.0, 80.0, 180.0, 90.0)
    across = shapely.Polygon([(179.0, 82.0), (-179.0, 82.0), (-179.0, 83.0), (179.0, 83.0)])
    small = np.array([square(10.0, 84.0, 2.0), across, square(-150.0, -50.0, 1.0), square(-10.0, -89.0, 20.0)],
                     dtype=object)
    best, chunks, _, model_b = best_at_sigma0(small, np.array([world, cap], dtype=object))
    lonlat_b = layer_to_lonlat(np.array([world, cap], dtype=object), "EPSG:4326")
    assert lonlat_b.true_area[0] == pytest.approx(5.10065622e14, rel=1e-5)  # the WGS84 ellipsoid's area
    cap_area = 2 * np.pi * 6371007.2**2 * (1 - np.sin(np.deg2rad(80.0)))  # on the authalic sphere
    assert lonlat_b.true_area[1] == pytest.approx(cap_area, rel=1e-2)
    index_a = np.concatenate([c.index_a for c in chunks])
    index_b = np.concatenate([c.index_b for c in chunks])
    cover_a = np.concatenate([c.summary.cover_a_mean for c in chunks])
    pairs = dict(zip(zip(index_a.tolist(), index_b.tolist()), cover_a))
    assert set(pairs) == {(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (3, 0)}
    assert np.array(list(pairs.values())) == pytest.approx(np.ones(6), abs=1e-6)
    assert best.index_b.tolist() == [1, 1, 0, 0]  # the cap is the better match where both hold a feature


@pytest.mark.parametrize("step", [None, 1.0, 7.0])
def test_a_whole_world_polygon_with_vertices_along_its_edges_still_spans_every_longitude(step):
    """A whole-world box drawn with vertices along the meridians ±180 and the poles (as densified data is)
    has no single edge from -180 to 180: it must still reach every longitude and contain every feature."""
    world = shapely.box(-180.0, -90.0, 180.0, 90.0)
    if step is not None:
        world = shapely.segmentize(world, step)
    assert spans_every_longitude(np.array([world, shapely.box(170, 0, 180, 1), None], dtype=object)).tolist() == [
        True, False, False]
    small = np.array([square(10.0, 40.0, 1.0), square(-179.5, -10.0, 1.0), square(60.0, 88.0, 1.0)], dtype=object)
    best, chunks, _, _ = best_at_sigma0(small, np.array([world], dtype=object))
    cover_a = np.concatenate([c.summary.cover_a_mean for c in chunks])
    assert len(cover_a) == 3 and cover_a == pytest.approx(np.ones(3), abs=1e-6)
    best_w, chunks_w, _, _ = best_at_sigma0(np.array([world], dtype=object), small)
    assert sorted(np.concatenate([c.index_b for c in chunks_w]).tolist()) == [0, 1, 2]
