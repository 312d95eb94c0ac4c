"""model/shift_overlap.py: the overlap under a shift against GEOS, its expectation against integration
and randomised QMC, the atoms against the exact kernel at many shifts."""

from pathlib import Path

import numpy as np
import pytest
import shapely

from overlap_relevance.model import shift_overlap
from overlap_relevance.model.shift_overlap import expected_overlap, iou_at_shifts, overlap_at_shifts
from tools.compiled import numba_missing
from tools.geometry import geos_overlap_at_shifts

WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")


def star(rng, n, radius, centre=(0.0, 0.0)):
    angle = (np.arange(n) + rng.uniform(0, 0.8, n)) * (2 * np.pi / n)  # gaps below π: a simple star
    r = radius * rng.uniform(0.5, 1.0, n)
    return shapely.Polygon(np.column_stack([centre[0] + r * np.cos(angle), centre[1] + r * np.sin(angle)]))


def building(rng, centre=(0.0, 0.0)):
    """An L- or box-shaped building, rotated."""
    w, h = rng.uniform(6, 20, 2)
    shape = shapely.box(0, 0, w, h)
    if rng.random() < 0.5:
        shape = shape.difference(shapely.box(w / 2, h / 2, w, h))
    shape = shapely.affinity.rotate(shape, rng.uniform(0, 180), origin="centroid")
    return shapely.affinity.translate(shape, centre[0] - shape.centroid.x, centre[1] - shape.centroid.y)


def mixed_pairs(n=60, seed=1):
    """Stars, stars with holes, multiparts, shared edges (grid-aligned boxes) and buildings."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            pa, pb = star(rng, rng.integers(3, 12), 5), star(rng, rng.integers(3, 12), 5, rng.normal(0, 2, 2))
        elif kind == 1:  # holes in both
            pa = star(rng, 9, 6).difference(star(rng, 5, 1.5))
            pb = star(rng, 9, 6, rng.normal(0, 2, 2)).difference(star(rng, 5, 1.5, (1.0, 0.5)))
        elif kind == 2:  # multipart B
            pa = star(rng, 8, 5)
            pb = shapely.union(star(rng, 7, 4, rng.normal(0, 2, 2)), star(rng, 5, 2, (7.0, 1.0)))
        elif kind == 3:  # shared edges and collinear vertices on a grid
            pa = shapely.union(shapely.box(0, 0, 4, 3), shapely.box(4, 0, 8, 3))
            pb = shapely.union(shapely.box(4, 0, 8, 3), shapely.box(0, 3, 4, 6))
        else:
            pa, pb = building(rng), building(rng, rng.normal(0, 3, 2))
        a.append(pa)
        b.append(pb)
    return np.array(a, dtype=object), np.array(b, dtype=object)


def test_overlap_at_shifts_matches_geos():
    a, b = mixed_pairs()
    rng = np.random.default_rng(2)
    d = rng.normal(0, 2.0, (len(a), 12, 2))
    d[:, 0] = 0.0
    d[3::5, 1] = (4.0, 0.0)  # the grid pairs: B's box moved onto A's other box, edges on edges
    d[3::5, 2] = (0.0, -3.0)
    scale = np.minimum(shapely.area(a), shapely.area(b))[:, None]
    error = np.abs(overlap_at_shifts(a, b, d) - geos_overlap_at_shifts(a, b, d)) / scale
    assert error.max() < 1e-9


def test_overlap_at_zero_shift_is_the_overlap_and_touching_is_zero():
    a = np.array([shapely.box(0, 0, 1, 1), shapely.box(0, 0, 2, 2), None], dtype=object)
    b = np.array([shapely.box(1, 0, 2, 1), shapely.box(0.5, 0.5, 1.5, 1.5), shapely.box(0, 0, 1, 1)], dtype=object)
    d = np.zeros((3, 2, 2))
    d[:, 1] = (-0.25, 0.0)
    out = overlap_at_shifts(a, b, d)
    assert out[0, 0] == 0.0 and out[0, 1] == pytest.approx(0.25, abs=1e-15)
    assert out[1, 0] == pytest.approx(1.0, abs=1e-15) and out[1, 1] == pytest.approx(1.0, abs=1e-15)
    assert np.all(out[2] == 0.0)
    assert np.allclose(iou_at_shifts(a, b, d)[0], [0.0, 0.25 / 1.75], atol=1e-15)


def test_large_pairs_use_the_join_and_find_the_products_edge_pairs(monkeypatch):
    """The join on x (large pairs) keeps exactly the edge pairs the full product keeps, in the same order, so
    the overlaps are the same to the bit; also in runs of a few candidates, and with the grid pairs' shared
    x-coordinates (ties at every interval end)."""
    a, b = mixed_pairs(40, seed=4)
    d = np.random.default_rng(3).normal(0, 2.0, (len(a), 5, 2))
    d[3::5, :, 0] = 0.0  # the grid pairs: x-shifts of 0 and 4 m put x-ends on x-ends
    d[3::5, 0, 0] = 4.0
    edges_a, edges_b = shift_overlap.x_edges(a), shift_overlap.x_edges(b)
    ranges = (len(a), d[..., 0].min(axis=1), d[..., 0].max(axis=1), d[..., 1].max(axis=1))
    product = shift_overlap.edge_pairs(edges_a, edges_b, *ranges)
    dense = overlap_at_shifts(a, b, d)
    monkeypatch.setattr(shift_overlap, "DENSE_PRODUCT", 0)
    for elements in (shift_overlap.JOIN_ELEMENTS, 7):
        monkeypatch.setattr(shift_overlap, "JOIN_ELEMENTS", elements)
        joined = shift_overlap.edge_pairs(edges_a, edges_b, *ranges)
        for mine, theirs in zip(joined, product):
            np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_array_equal(overlap_at_shifts(a, b, d), dense)


def province_pair():
    """The largest-vertex province of world_map (GDAL-readable) and its country, in the pair's local frame."""
    pytest.importorskip("osgeo")
    if not WORLD_MAP.is_file():
        pytest.skip("world_map.gpkg is not installed")
    from overlap_relevance.model.gdal_layer import read_layer
    from overlap_relevance.model.frame import layer_to_lonlat, project_pairs

    provinces, crs_p, _ = read_layer(WORLD_MAP, "states_provinces")
    countries, crs_c, _ = read_layer(WORLD_MAP, "countries")
    lonlat_p, lonlat_c = layer_to_lonlat(provinces, crs_p), layer_to_lonlat(countries, crs_c)
    count = shapely.get_num_coordinates(lonlat_p.geoms)
    count[count > 1500] = 0  # province-sized, and quick
    ip = int(np.argmax(count))
    ic = int(np.argmax(np.nan_to_num(shapely.area(shapely.intersection(lonlat_c.geoms, lonlat_p.geoms[ip])))))
    frames = project_pairs(lonlat_p, lonlat_c, np.array([ip]), np.array([ic]))
    return frames.a, frames.b


def test_province_overlap_matches_geos():
    a, b = province_pair()
    assert shapely.get_num_coordinates(a)[0] > 400
    d = np.random.default_rng(6).normal(0, 20_000.0, (1, 4, 2))
    d[0, 0] = 0.0
    error = np.abs(overlap_at_shifts(a, b, d) - geos_overlap_at_shifts(a, b, d)) / shapely.area(a)[0]
    assert error.max() < 1e-9


def test_expected_overlap_matches_integration_on_a_grid():
    a, b = mixed_pairs(5, seed=7)
    sigma = np.linspace(0.3, 3.0, len(a))
    grid = np.linspace(-8.5, 8.5, 201) + 0.0123  # off the axis-aligned kinks of the grid-drawn pairs
    step = grid[1] - grid[0]
    u = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    weight = np.exp(-0.5 * np.sum(u * u, 1)) / (2 * np.pi) * step * step
    reference = np.array([overlap_at_shifts(a[i:i + 1], b[i:i + 1], sigma[i] * u[None])[0] @ weight
                          for i in range(len(a))])
    scale = np.minimum(shapely.area(a), shapely.area(b))
    # The grid rule is the coarse one here (kinks of the overlap between nodes): about 1e-5.
    assert np.max(np.abs(expected_overlap(a, b, sigma) - reference) / scale) < 1e-4


def test_expected_overlap_quadrature_has_converged(monkeypatch):
    a, b = mixed_pairs(25, seed=8)
    sigma = np.full(len(a), 1.0)
    base = expected_overlap(a, b, sigma)
    x, w = np.polynomial.legendre.leggauss(32)
    monkeypatch.setattr(shift_overlap, "_GL_X", x)
    monkeypatch.setattr(shift_overlap, "_GL_W", w)
    monkeypatch.setattr(shift_overlap, "PIECE_SIGMAS", 2.0)
    scale = np.minimum(shapely.area(a), shapely.area(b))
    assert np.max(np.abs(expected_overlap(a, b, sigma) - base) / scale) < 1e-12


def test_expected_overlap_agrees_with_randomised_qmc_within_its_error():
    from overlap_relevance.model.evaluation.samplers import qmc_displacements

    a, b = mixed_pairs(25, seed=9)
    sigma = np.geomspace(0.2, 4.0, len(a))
    runs = np.array([overlap_at_shifts(a, b, qmc_displacements(sigma, 1024, np.random.default_rng(r))).mean(1)
                     for r in range(12)])
    mean, se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(12)
    scale = np.minimum(shapely.area(a), shapely.area(b))
    error = np.abs(expected_overlap(a, b, sigma) - mean)
    assert np.all(error <= 5.0 * se + 1e-9 * scale)


def test_expected_overlap_limits():
    a, b = mixed_pairs(10, seed=10)
    still = overlap_at_shifts(a, b, np.zeros((len(a), 1, 2)))[:, 0]
    assert np.array_equal(expected_overlap(a, b, 0.0), still)
    assert np.allclose(expected_overlap(a, b, 1e-4), still, rtol=0, atol=1e-3)
    far = np.array([shapely.affinity.translate(g, 1e3, 0) for g in b], dtype=object)
    assert np.all(expected_overlap(a, far, 1.0) == 0.0)


def normal_interval(half_width, sigma):
    from overlap_relevance.model.special import normal_cdf

    return 2.0 * normal_cdf(half_width / sigma) - 1.0


def test_gaussian_measure_of_boxes_rings_and_parts():
    from overlap_relevance.model.special import normal_cdf

    box = shapely.box(-1, -2, 3, 0.5)
    ring = shapely.box(-3, -3, 3, 3).difference(shapely.box(-1, -1, 1, 1))
    parts = shapely.union(shapely.box(-1, -1, 1, 1), shapely.box(2, 2, 4, 5))
    measure = shift_overlap.gaussian_measure(np.array([box, ring, parts, None], dtype=object), 1.0)
    strip = lambda lo, hi: normal_cdf(hi) - normal_cdf(lo)  # noqa: E731
    expected = [strip(-1, 3) * strip(-2, 0.5), normal_interval(3, 1) ** 2 - normal_interval(1, 1) ** 2,
                normal_interval(1, 1) ** 2 + strip(2, 4) * strip(2, 5), 0.0]
    np.testing.assert_allclose(measure, expected, rtol=0, atol=1e-15)


def test_atoms_of_squares_have_their_closed_form():
    unit, big = shapely.box(-0.5, -0.5, 0.5, 0.5), shapely.box(-2, -2, 2, 2)
    a, b = np.array([unit, big, unit, unit], dtype=object), np.array([unit, unit, big, None], dtype=object)
    sigma = np.array([0.7, 0.9, 0.9, 1.0])
    none, contained = shift_overlap.overlap_atoms(a, b, sigma)
    expected_none = [1 - normal_interval(1.0, 0.7) ** 2, 1 - normal_interval(2.5, 0.9) ** 2,
                     1 - normal_interval(2.5, 0.9) ** 2, 1.0]
    expected_contained = [0.0, normal_interval(1.5, 0.9) ** 2, normal_interval(1.5, 0.9) ** 2, 0.0]
    np.testing.assert_allclose(none, expected_none, rtol=0, atol=1e-12)
    np.testing.assert_allclose(contained, expected_contained, rtol=0, atol=1e-12)
    still_none, still_contained = shift_overlap.overlap_atoms(a, b, 0.0)
    assert list(still_none) == [0.0, 0.0, 0.0, 1.0] and list(still_contained) == [1.0, 1.0, 1.0, 0.0]


def test_atoms_agree_with_the_exact_kernel_at_many_shifts():
    """Holes, multiparts, shared edges, buildings: within the randomised QMC's error (6 × 2,048 shifts)."""
    from overlap_relevance.model.evaluation.samplers import qmc_displacements

    a, b = mixed_pairs(10, seed=11)
    big = shapely.box(-30, -30, 30, 30).difference(shapely.box(-5, -5, 5, 5))  # a ring around a small building
    a, b = np.r_[a, [big]], np.r_[b, [shapely.box(-15, -2, -8, 3)]]
    sigma = np.geomspace(0.3, 4.0, len(a))
    none, contained = shift_overlap.overlap_atoms(a, b, sigma)
    smaller = np.minimum(shapely.area(a), shapely.area(b))[:, None]
    runs = []
    for r in range(6):
        inter = overlap_at_shifts(a, b, qmc_displacements(sigma, 2048, np.random.default_rng(r)))
        runs.append([(inter <= 1e-9 * smaller).mean(1), (inter >= (1 - 1e-9) * smaller).mean(1)])
    runs = np.array(runs)  # (6, 2, n)
    mean, se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(6)
    for mine, m, s in ((none, mean[0], se[0]), (contained, mean[1], se[1])):
        assert np.all(np.abs(mine - m) <= 4.5 * s + 3e-4)
    assert 0.05 < contained[-1] < 0.95 and 0 < none[-1] < 1


@pytest.mark.slow
def test_province_expectation_and_atoms_agree_with_randomised_qmc():
    """A world_map province (> 400 vertices) and its country at σ = 2 km: the expected overlap and the atoms
    against 8 × 1,024 exact-kernel shifts."""
    from overlap_relevance.model.evaluation.samplers import qmc_displacements

    a, b = province_pair()
    sigma = np.array([2000.0])
    runs = []
    for r in range(8):
        inter = overlap_at_shifts(a, b, qmc_displacements(sigma, 1024, np.random.default_rng(r)))
        smaller = min(shapely.area(a)[0], shapely.area(b)[0])
        runs.append([inter.mean(), (inter <= 1e-9 * smaller).mean(), (inter >= (1 - 1e-9) * smaller).mean()])
    runs = np.array(runs)
    mean, se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(8)
    expected = expected_overlap(a, b, sigma)[0]
    none, contained = shift_overlap.overlap_atoms(a, b, sigma)
    assert abs(expected - mean[0]) <= 4.5 * se[0] + 1e-9 * shapely.area(a)[0]
    assert abs(none[0] - mean[1]) <= 4.5 * se[1] + 1e-3 and abs(contained[0] - mean[2]) <= 4.5 * se[2] + 1e-3


def test_the_compiled_kernel_gives_the_same_numbers():
    """Bit for bit, where numba imports (Dask workers, a user's venv); never needed in QGIS."""
    from overlap_relevance.model.shift_kernel_numba import compiled_kernel

    a, b = mixed_pairs(40, seed=12)
    d = np.random.default_rng(13).normal(0, 2.0, (len(a), 33, 2))
    if numba_missing(compiled_kernel()):
        with pytest.raises(ImportError):
            overlap_at_shifts(a, b, d, engine="numba")
        assert np.array_equal(overlap_at_shifts(a, b, d, engine="auto"), overlap_at_shifts(a, b, d))
        pytest.skip("numba is not installed here")
    assert np.array_equal(overlap_at_shifts(a, b, d, engine="numba"), overlap_at_shifts(a, b, d))
    with pytest.raises(ValueError):
        overlap_at_shifts(a, b, d, engine="fortran")
