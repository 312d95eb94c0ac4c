"""Synthetic training pairs: reproducibility, recipe proportions, kind semantics, labels, Monte-Carlo truth."""
import copy
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import shapely
from overlap_relevance.model.candidates import boxes_within
from overlap_relevance.model.laea import laea_inverse
from overlap_relevance.model.datasets.shapes import FAMILY_CODES
from overlap_relevance.model.datasets.synthetic import (
    FAMILY_NAMES,
    KIND_CODES,
    KIND_NAMES,
    RECIPE,
    SyntheticPairs,
    generate_pairs,
    recipe_hash,
)
from overlap_relevance.model.overlap import monte_carlo_overlap
from scipy import stats

N_PAIRS = 5000
SEED = 123


@pytest.fixture(scope="module")
def timed_pairs():
    start = time.perf_counter()
    pairs = generate_pairs(N_PAIRS, SEED)
    return pairs, time.perf_counter() - start


@pytest.fixture(scope="module")
def pairs(timed_pairs):
    return timed_pairs[0]


def small_recipe():
    """RECIPE with small blocks, so that a few hundred pairs span several blocks and chunks."""
    recipe = copy.deepcopy(RECIPE)
    recipe["block_size"] = 128
    return recipe


#: Fields drawn from the seeded random generator alone: the same seed gives the same bytes.
DRAWN = ("sigma", "kind", "family_a", "family_b", "displacement", "crs_a", "crs_b")


def assert_identical(p, q):
    """What the generator promises for one (n, seed, recipe): the random draws byte for byte; the geometries
    (through PROJ and GEOS) and the labels computed from them equal to 1e-9 relative (coordinates: of the largest
    one, since a coordinate near 0 once differed by 2.8e-9 m, 31 of 23,782, in a loaded `make test`).

    A bit-identical comparison of the derived values failed once in four loaded runs (issue 28) and could not be
    reproduced (60 runs: in one process, after other seeds, in four processes at once); :func:`test_same_bytes`
    keeps the byte-for-byte check in `make test-slow`.
    """
    for name in SyntheticPairs.__dataclass_fields__:
        x, y = getattr(p, name), getattr(q, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name in DRAWN:
            assert x.tobytes() == y.tobytes(), name
        elif x.dtype == object:
            assert np.array_equal(shapely.get_num_coordinates(x), shapely.get_num_coordinates(y)), name
            coordinates = shapely.get_coordinates(x)
            scale = float(np.abs(coordinates).max(initial=1.0))
            np.testing.assert_allclose(coordinates, shapely.get_coordinates(y), rtol=1e-9, atol=1e-9 * scale,
                                       err_msg=name)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12, err_msg=name)


def assert_same_bytes(p, q):
    for name in SyntheticPairs.__dataclass_fields__:
        x, y = getattr(p, name), getattr(q, name)
        if x.dtype == object:
            assert np.array_equal(shapely.to_wkb(x), shapely.to_wkb(y)), name
        else:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


def within(share, expected, n, sds=4.0):
    return abs(share - expected) <= sds * np.sqrt(expected * (1 - expected) / n)


# --------------------------------------------------------------------------
# Recipe and reproducibility.
# --------------------------------------------------------------------------
def test_recipe_is_json_and_hash_tracks_it():
    text = json.dumps(RECIPE, sort_keys=True)
    assert json.loads(text) == RECIPE
    digest = recipe_hash()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert recipe_hash(copy.deepcopy(RECIPE)) == digest
    changed = copy.deepcopy(RECIPE)
    changed["sigma"]["zero_share"] = 0.4
    assert recipe_hash(changed) != digest
    assert sum(RECIPE["kind_shares"].values()) == pytest.approx(1.0)
    assert set(RECIPE["kind_shares"]) == set(KIND_NAMES)


def test_same_seed_same_pairs_other_seed_differs():
    recipe = small_recipe()
    p = generate_pairs(200, 5, recipe)
    assert_identical(p, generate_pairs(200, 5, recipe))
    q = generate_pairs(200, 6, recipe)
    assert not np.array_equal(p.sigma, q.sigma)
    assert not np.array_equal(shapely.to_wkb(p.a), shapely.to_wkb(q.a))


@pytest.mark.slow  # bit-identity of PROJ/GEOS results under load is not promised in `make test` (issue 28)
def test_same_bytes():
    recipe = small_recipe()
    first = generate_pairs(200, 5, recipe)
    for _ in range(3):
        assert_same_bytes(first, generate_pairs(200, 5, recipe))


def test_recipe_read_back_from_canonical_json_gives_the_same_pairs():
    recipe = small_recipe()
    reordered = json.loads(json.dumps(recipe, sort_keys=True))
    reordered["families"] = dict(reversed(list(reordered["families"].items())))
    assert recipe_hash(reordered) == recipe_hash(recipe)
    assert_identical(generate_pairs(150, 4, recipe), generate_pairs(150, 4, reordered))


def test_unusable_delivery_falls_back_to_lonlat(monkeypatch):
    from overlap_relevance.model.datasets import synthetic

    real = synthetic.layer_to_lonlat

    def broken_web_mercator(geoms, crs):
        layer = real(geoms, crs)
        if crs == "EPSG:3857":
            layer.geoms[:] = None
        return layer

    monkeypatch.setattr(synthetic, "layer_to_lonlat", broken_web_mercator)
    p = generate_pairs(200, 2, small_recipe())
    assert "EPSG:3857" not in set(p.crs_a) | set(p.crs_b)
    assert shapely.is_valid(p.a).all() and (shapely.area(p.b) > 0).all()
    monkeypatch.undo()
    q = generate_pairs(200, 2, small_recipe())
    redone = (q.crs_a == "EPSG:3857") | (q.crs_b == "EPSG:3857")
    assert redone.any()
    assert (p.crs_a[redone] == "EPSG:4326").all() and (p.crs_b[redone] == "EPSG:4326").all()
    np.testing.assert_allclose(p.iou, q.iou, atol=1e-6)  # same pairs, only delivered differently


def test_result_independent_of_chunking_and_workers():
    recipe = small_recipe()
    reference = generate_pairs(300, 9, recipe, chunk_pairs=10_000)
    assert_identical(reference, generate_pairs(300, 9, recipe, chunk_pairs=128))
    assert_identical(reference, generate_pairs(300, 9, recipe, chunk_pairs=128, workers=2))


def test_fields_shapes_and_types(pairs):
    n = len(pairs)
    assert n == N_PAIRS
    for name in ("a", "b", "sigma", "kind", "family_a", "family_b", "cover_a", "cover_b", "iou", "lon0",
                 "lat0", "crs_a", "crs_b", "search_distance"):
        assert getattr(pairs, name).shape == (n,), name
    assert pairs.displacement.shape == pairs.centroid.shape == (n, 2)
    assert pairs.kind.dtype == np.int8 and pairs.kind_name[0] in KIND_NAMES
    assert shapely.is_valid(pairs.a).all() and shapely.is_valid(pairs.b).all()
    assert (shapely.area(pairs.a) > 0).all() and (shapely.area(pairs.b) > 0).all()
    for label in (pairs.cover_a, pairs.cover_b, pairs.iou):
        assert ((label >= 0) & (label <= 1)).all()
    assert np.isfinite(pairs.lon0).all() and (np.abs(pairs.lat0) <= 89.5).all()
    sub = pairs.subset(np.arange(10))
    assert len(sub) == 10 and len(SyntheticPairs.concatenate([sub, sub])) == 20


@pytest.mark.slow  # timed: a loaded machine may take longer (issue 28); `make test-slow` runs it
def test_generation_speed(timed_pairs):
    pairs, seconds = timed_pairs
    # ~1000 pairs/s on one core of the development machine; generous bound for CI.
    assert len(pairs) / seconds > 200


def test_no_tensorflow_import():
    code = ("import sys, overlap_relevance.model.datasets.synthetic, overlap_relevance.model.datasets.shapes;"
            "sys.exit('tensorflow' in sys.modules or 'qgis' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


# --------------------------------------------------------------------------
# Documented proportions.
# --------------------------------------------------------------------------
def test_kind_proportions(pairs):
    for name, share in RECIPE["kind_shares"].items():
        assert within(np.mean(pairs.kind == KIND_CODES[name]), share, len(pairs)), name


def test_sigma_distribution(pairs):
    zero = pairs.sigma == 0
    assert within(zero.mean(), RECIPE["sigma"]["zero_share"], len(pairs))
    lo, hi = RECIPE["sigma"]["log_uniform_m"]
    s = pairs.sigma[~zero]
    assert s.min() >= lo and s.max() <= hi
    u = (np.log(s) - np.log(lo)) / (np.log(hi) - np.log(lo))
    assert np.allclose(np.quantile(u, [0.1, 0.25, 0.5, 0.75, 0.9]), [0.1, 0.25, 0.5, 0.75, 0.9], atol=0.04)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # The displacement is sigma times a standard normal draw per axis.
    assert (pairs.displacement[zero] == 0).all()
    z = pairs.displacement[~zero] / s[:, None]
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05


# --------------------------------------------------------------------------
# Each kind behaves as documented (sigma = 0, where labels are the observed overlap).
# --------------------------------------------------------------------------
def observed(pairs, kind):
    return pairs.subset((pairs.kind == KIND_CODES[kind]) & (pairs.sigma == 0))


def test_containment_both_directions(pairs):
    p = observed(pairs, "containment")
    assert (np.maximum(p.cover_a, p.cover_b) > 1 - 1e-6).all()
    a_in_b = p.cover_a > 1 - 1e-6
    assert 0.35 < a_in_b.mean() < 0.65
    assert (p.iou < 1).all()


def test_disjoint_within_search_distance(pairs):
    p = observed(pairs, "disjoint")
    assert (p.iou == 0).all() and (p.cover_a == 0).all() and np.isnan(p.centroid).all()
    distance = shapely.distance(p.a, p.b)
    assert (distance > 0.2).all()
    assert (distance <= p.search_distance).all()
    assert boxes_within(p.a, p.b, p.search_distance).all()  # the plugin's candidate filter keeps them


def test_search_distance_covers_every_pair(pairs):
    assert (shapely.distance(pairs.a, pairs.b) <= pairs.search_distance).all()
    assert set(np.unique(pairs.search_distance)) <= set(RECIPE["search_distance"]["ladder_m"]) | set(
        np.ceil(pairs.search_distance[pairs.search_distance > RECIPE["search_distance"]["ladder_m"][-1]]))


def test_same_object_overlaps_strongly(pairs):
    p = observed(pairs, "same_object")
    assert np.median(p.iou) > 0.85
    assert np.mean(p.iou > 0.5) > 0.9


def test_neighbours_touch_or_leave_small_gaps(pairs):
    p = observed(pairs, "neighbours")
    assert (p.iou < 1e-6).all()  # touching pairs may overlap by rounding only
    distance = shapely.distance(p.a, p.b)
    assert distance.max() < RECIPE["neighbours"]["gap_m"][1] * 1.05
    touching = distance < 1e-3
    assert 0.35 < touching.mean() < 0.65


def test_partial_overlaps_overlap_without_containment(pairs):
    p = observed(pairs, "partial_overlap")
    partial = (p.iou > 0) & (np.maximum(p.cover_a, p.cover_b) < 1 - 1e-9)
    assert partial.mean() > 0.95
    assert np.quantile(np.maximum(p.cover_a, p.cover_b), 0.9) > 0.5  # not only grazing contacts


# --------------------------------------------------------------------------
# Labels are the exact overlap after the recorded displacement (independent recomputation).
# --------------------------------------------------------------------------
def test_labels_equal_exact_overlap_after_displacement(pairs):
    rng = np.random.default_rng(0)
    moving = np.flatnonzero(pairs.sigma > 0)
    for i in np.r_[rng.choice(moving, 250, replace=False), rng.choice(len(pairs), 50, replace=False)]:
        a = pairs.a[i]
        b = shapely.affinity.translate(pairs.b[i], *pairs.displacement[i])
        inter = a.intersection(b)
        union = a.area + b.area - inter.area
        assert pairs.cover_a[i] == pytest.approx(inter.area / a.area, abs=1e-9)
        assert pairs.cover_b[i] == pytest.approx(inter.area / b.area, abs=1e-9)
        assert pairs.iou[i] == pytest.approx(inter.area / union, abs=1e-9)
        if inter.area > 0:
            c = inter.centroid
            assert pairs.centroid[i] == pytest.approx([c.x, c.y], abs=1e-6 * (1 + np.sqrt(a.area)))
        else:
            assert np.isnan(pairs.centroid[i]).all()


# --------------------------------------------------------------------------
# Locations, CRSs and frame sanity.
# --------------------------------------------------------------------------
def test_antimeridian_pairs_cross_it_and_stay_small(pairs):
    near = np.abs(pairs.lon0) > 179.9
    assert within(near.mean(), RECIPE["location"]["antimeridian_share"], len(pairs), sds=5)
    crosses = []
    for i in np.flatnonzero(near):
        xy = shapely.get_coordinates([pairs.a[i], pairs.b[i]])
        lon, _ = laea_inverse(xy[:, 0], xy[:, 1], pairs.lon0[i], pairs.lat0[i])
        crosses.append(lon.max() > 179.0 and lon.min() < -179.0)
    assert np.mean(crosses) > 0.9
    bounds = shapely.bounds(np.r_[pairs.a[near], pairs.b[near]])
    assert (bounds[:, 2] - bounds[:, 0]).max() < 20e3 and (bounds[:, 3] - bounds[:, 1]).max() < 20e3


def test_high_latitudes_and_plausible_frames(pairs):
    high = np.abs(pairs.lat0) > 70
    assert high.mean() > RECIPE["location"]["high_latitude_share"]
    assert np.abs(pairs.lat0).max() > 88
    assert (pairs.lat0 > 70).any() and (pairs.lat0 < -70).any()
    geoms = np.r_[pairs.a, pairs.b]
    bounds = shapely.bounds(geoms)
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    assert extent.max() < 20e3  # no sliver around the globe, anywhere
    assert (np.abs(bounds) < 30e3).all()  # frames are centred on the pair
    area = shapely.area(geoms)
    assert area.min() > 0.5 and area.max() < 1e8 and (area <= extent**2).all()
    high2 = np.r_[high, high]
    assert np.median(area[high2]) == pytest.approx(np.median(area), rel=0.5)  # no latitude bias in area


def test_delivery_crss(pairs):
    crs = np.r_[pairs.crs_a, pairs.crs_b]
    lat = np.r_[pairs.lat0, pairs.lat0]
    codes = set(crs)
    assert {"EPSG:4326", "EPSG:3857"} <= codes
    assert any(c.startswith("EPSG:326") for c in codes) and any(c.startswith("EPSG:327") for c in codes)
    assert codes & set(RECIPE["crs"]["regional"])
    assert len(codes) > 50
    assert (np.abs(lat[crs == "EPSG:3857"]) < RECIPE["crs"]["web_mercator_max_lat"] + 0.1).all()
    assert (pairs.crs_a != pairs.crs_b).mean() > 0.3


def test_shape_families_present(pairs):
    geoms = np.r_[pairs.a, pairs.b]
    families = np.r_[pairs.family_a, pairs.family_b]
    assert set(np.unique(families)) == set(range(len(FAMILY_NAMES)))
    polygons = shapely.get_parts(geoms)
    assert (shapely.get_num_interior_rings(polygons) > 0).sum() > 50  # courtyards, enclaves
    assert (shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON).sum() > 100
    solidity = shapely.area(geoms) / shapely.area(shapely.convex_hull(geoms))
    assert (solidity < 0.8).sum() > 200  # concave shapes
    vertices = shapely.get_num_coordinates(geoms)
    assert (vertices >= 1000).sum() > 20 and (vertices <= 5).sum() > 1000
    dart = geoms[families == FAMILY_CODES["concave_quad"]]
    assert (shapely.area(dart) < 0.99 * shapely.area(shapely.convex_hull(dart))).mean() > 0.8


# --------------------------------------------------------------------------
# Monte-Carlo truth.
# --------------------------------------------------------------------------
def test_monte_carlo_with_zero_sigma_equals_the_labels(pairs):
    p = pairs.subset(np.flatnonzero(pairs.sigma == 0)[:400])
    mc = monte_carlo_overlap(p.a, p.b, p.sigma, 8, seed=3)
    for name in ("cover_a", "cover_b", "iou"):
        values = getattr(mc, name)
        assert values.shape == (len(p), 8)
        np.testing.assert_allclose(values, np.repeat(getattr(p, name)[:, None], 8, axis=1), rtol=0, atol=1e-12)


def square(size=10.0):
    return shapely.box(-size / 2, -size / 2, size / 2, size / 2)


def test_monte_carlo_iou_decreases_with_sigma():
    sigmas = np.array([0.0, 0.1, 0.3, 1.0, 3.0, 10.0])
    a = np.array([square()] * len(sigmas))
    mc = monte_carlo_overlap(a, a.copy(), sigmas, 2000, seed=1)
    mean_iou = mc.iou.mean(axis=1)
    assert mean_iou[0] == 1.0
    assert (np.diff(mean_iou) < 0).all()
    assert mean_iou[-1] < 0.1


def expected_iou_identical_squares(side, sigma, n_grid=1601, half_width=8.0):
    """E[IoU] of a square and its copy shifted by N(0, sigma^2 I2): tensor trapezoid rule on a grid."""
    t = np.linspace(-half_width * sigma, half_width * sigma, n_grid)  # contains 0, where |d| has its kink
    w = stats.norm.pdf(t, scale=sigma) * np.gradient(t)
    w[[0, -1]] *= 0.5
    overlap = np.clip(side - np.abs(t), 0.0, None)
    inter = np.outer(overlap, overlap)
    iou = inter / (2 * side**2 - inter)
    return float(w @ iou @ w / w.sum() ** 2)


def test_monte_carlo_matches_numeric_integration_for_two_squares():
    reference = expected_iou_identical_squares(10.0, 1.0)
    assert 0.7 < reference < 0.8
    copies = 40
    a = np.array([square()] * copies)
    mc = monte_carlo_overlap(a, a.copy(), 1.0, 512, seed=7)
    samples = mc.iou.ravel()
    standard_error = samples.std() / np.sqrt(samples.size)
    assert abs(samples.mean() - reference) < 4 * standard_error
    assert np.allclose(mc.cover_a, mc.cover_b)  # equal areas


def test_monte_carlo_handles_missing_and_far_pairs():
    a = np.array([square(), None, square(), shapely.Polygon()], dtype=object)
    b = np.array([shapely.affinity.translate(square(), 1000.0, 0.0), square(), None, square()], dtype=object)
    mc = monte_carlo_overlap(a, b, np.array([1.0, 1.0, 0.0, 2.0]), 16, seed=0)
    assert (mc.iou == 0).all() and (mc.cover_a == 0).all() and (mc.cover_b == 0).all()
