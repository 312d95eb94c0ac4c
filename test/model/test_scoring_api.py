"""The Python API: overlap_relevance.model.load_model(...).predict(...), without QGIS or TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from overlap_relevance.model import load_model
from overlap_relevance.model.mixture import GaussianMixture
from overlap_relevance.model.overlap_head import UnitMixture

UTM = "EPSG:32633"
X0, Y0 = 400_000.0, 5_800_000.0


def utm_squares(offsets, size=20.0):
    return np.array([shapely.box(X0 + dx, Y0 + dy, X0 + dx + size, Y0 + dy + size) for dx, dy in offsets],
                    dtype=object)


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_predict_known_pairs(model):
    a = utm_squares([(0, 0), (0, 0), (0, 0), (0, 0)])
    b = utm_squares([(0, 0), (10, 0), (50, 0), (5, 5)], size=20.0)
    prediction = model.predict(a, b, UTM)
    np.testing.assert_allclose(prediction.iou_mean, [1.0, 1 / 3, 0.0, 225 / 575], atol=0.03)
    np.testing.assert_allclose(prediction.cover_a_mean, [1.0, 0.5, 0.0, 225 / 400], atol=0.03)
    # The overlap at σ > 0 comes from the exact overlap at fixed shifts (SIGMA_PATH "exact", a UnitMixture over
    # u = |A∩B| / min(|A|, |B|)) or from the model file's head; the centroid from the network.
    expected = UnitMixture if model.sigma_path == "exact" or model.network.overlap_head_kind == "unit_atoms" \
        else GaussianMixture
    assert isinstance(prediction.overlap, expected) and isinstance(prediction.centroid, GaussianMixture)
    assert len(prediction) == 4
    # The centroid mixture's mean sits on the exact intersection centroid (frame metres -> UTM).
    mean = prediction.centroid.mean()
    x, y = prediction.centroid_to_crs(mean[:, 0], mean[:, 1], np.arange(4))
    assert x[1] == pytest.approx(X0 + 15.0, abs=0.5) and y[1] == pytest.approx(Y0 + 10.0, abs=0.5)


def test_sigma_scalar_or_array_and_probabilities(model):
    a = utm_squares([(0, 0)] * 3)
    b = utm_squares([(0, 0)] * 3)
    prediction = model.predict(a, b, UTM, sigma=np.array([0.0, 1.0, 5.0]))
    assert prediction.iou_mean[0] > prediction.iou_mean[1] > prediction.iou_mean[2]
    assert prediction.iou_sd[0] < prediction.iou_sd[2]
    p = [prediction.p_iou_at_least(t) for t in (0.2, 0.5, 0.8)]
    assert np.all(p[0] >= p[1]) and np.all(p[1] >= p[2])
    assert np.all((0 <= p[1]) & (p[1] <= 1))


def test_same_pairs_in_another_crs_give_the_same_answer(model):
    a = utm_squares([(0, 0), (3, 4)])
    b = utm_squares([(10, 0), (0, 0)])
    to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)

    def lonlat(geoms):
        return np.array([shapely.transform(g, lambda xy: np.column_stack(to_lonlat.transform(*xy.T)))
                         for g in geoms], dtype=object)

    in_utm = model.predict(a, b, UTM, sigma=0.7)
    mixed = model.predict(lonlat(a), b, "EPSG:4326", sigma=0.7, crs_b=UTM)
    np.testing.assert_allclose(mixed.iou_mean, in_utm.iou_mean, atol=1e-6)
    np.testing.assert_allclose(mixed.iou_sd, in_utm.iou_sd, atol=1e-6)


def test_invalid_and_missing_geometries(model):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0 + 20)])
    a = np.array([bowtie, None, utm_squares([(0, 0)])[0]], dtype=object)
    b = utm_squares([(0, 0), (0, 0), (0, 0)])
    prediction = model.predict(a, b, UTM)
    assert np.all(np.isfinite(prediction.iou_mean))
    assert prediction.iou_mean[1] == pytest.approx(0.0, abs=0.02)
    assert prediction.iou_mean[0] == pytest.approx(0.5, abs=0.05)  # two triangles: half the square
    with pytest.raises(ValueError, match="sigma"):
        model.predict(a, b, UTM, sigma=-1.0)


def test_predicting_needs_neither_qgis_nor_tensorflow():
    code = (
        "import sys, numpy as np, shapely\n"
        "from overlap_relevance.model import load_model\n"
        "m = load_model()\n"
        "p = m.predict(np.array([shapely.box(0, 0, 1, 1)]), np.array([shapely.box(0, 0, 1, 1)]), 'EPSG:3857')\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('qgis', 'tensorflow', 'keras'))\n"
        "assert not bad, bad\n"
        "print(round(float(p.iou_mean[0]), 2))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0"


def test_100k_pairs_in_bounded_memory(model):
    import resource

    rng = np.random.default_rng(0)
    offsets = rng.uniform(0, 20_000, (100_000, 2))
    a = utm_squares(offsets)
    b = utm_squares(offsets + rng.normal(0, 2, offsets.shape))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prediction = model.predict(a, b, UTM, sigma=0.5)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(prediction) == 100_000 and np.all(np.isfinite(prediction.iou_mean))
    assert grown_mb < 2000, grown_mb


def test_shortest_lines_cut_large_pairs_and_find_the_same_line(monkeypatch):
    """The σ > 0 path's nearest line between pairs that never overlap (scoring.shortest_lines): large pairs are cut
    to where they can be nearest first, and the line is GEOS's own up to rounding: wavy rings far apart, a ring
    in another's hole, multiparts whose nearest parts are not the first, and a pair that touches."""
    from overlap_relevance.model import scoring

    def wavy(cx, cy, r, n=600, phase=0.0):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        rr = r * (1 + 0.1 * np.sin(7 * t + phase))
        return shapely.Polygon(np.column_stack([cx + rr * np.cos(t), cy + rr * np.sin(t)]))

    ring = wavy(0, 0, 100).difference(wavy(0, 0, 60, phase=1.0))
    a = np.array([wavy(0, 0, 50), ring, shapely.union(wavy(-500, 0, 40), wavy(300, 40, 40)), wavy(0, 0, 50)],
                 dtype=object)
    b = np.array([wavy(180, 70, 60, phase=2.0), wavy(5, -3, 20), shapely.union(wavy(900, 0, 30), wavy(420, 60, 30)),
                  shapely.box(55, -5, 70, 5)], dtype=object)
    b[3] = shapely.Polygon([(a[3].exterior.coords[0][0], -5.0), (a[3].exterior.coords[0][0] + 20, -5.0),
                            (a[3].exterior.coords[0][0] + 20, 5.0), (a[3].exterior.coords[0][0], 5.0)])
    # A part inside B's box that is not the nearest: the box must be widened by the distance, not less.
    diagonal = shapely.buffer(shapely.LineString([(0, 0), (100, 100)]), 1.0, cap_style="flat")
    a = np.append(a, shapely.union(wavy(-20, -20, 5), wavy(95, 5, 4)))
    b = np.append(b, diagonal)
    assert np.all(shapely.get_num_coordinates(a) * shapely.get_num_coordinates(b) > 4 * 500)
    monkeypatch.setattr(scoring, "NEAREST_CUT_PRODUCT", 1000)  # every pair here is cut
    cut = scoring.shortest_lines(a, b)
    full = shapely.shortest_line(a, b)
    np.testing.assert_allclose(shapely.length(cut), shapely.length(full), rtol=0, atol=1e-9)
    middle = lambda lines: shapely.get_coordinates(lines).reshape(-1, 2, 2).mean(axis=1)
    # Where the nearest points are unique, the same line; the touching pair has many (length 0), any will do.
    unique = [0, 1, 2, 4]
    np.testing.assert_allclose(middle(cut)[unique], middle(full)[unique], rtol=0, atol=1e-6)
    assert shapely.length(cut)[3] == pytest.approx(0.0, abs=1e-9) and shapely.length(full)[0] > 10
    # The inputs are left as they were.
    assert shapely.get_num_coordinates(a[0]) == 601


def test_scores_without_the_centroid_are_the_same_scores(model):
    from overlap_relevance.model.datasets.synthetic import generate_pairs
    from overlap_relevance.model.frame import layer_to_lonlat
    from overlap_relevance.model.preparation import prepare_layer
    from overlap_relevance.model.scoring import score_candidate_pairs

    pairs = generate_pairs(300, 17)
    sigma = np.where(np.arange(300) % 3 == 0, 0.0, pairs.sigma + 0.2)  # σ = 0 and σ > 0 pairs in one batch
    with_centroid = model.predict_frames(pairs.a, pairs.b, sigma)
    overlap, centroid = model.predict_frames(pairs.a, pairs.b, sigma, centroid=False)
    assert centroid is None and with_centroid[1] is not None
    for name in UnitMixture._FIELDS:  # to the bit: the moments are computed beside the areas, not into them
        assert np.array_equal(getattr(overlap, name), getattr(with_centroid[0], name), equal_nan=True), name
    still = sigma == 0
    only_still, none = model.predict_frames(pairs.a[still], pairs.b[still], 0.0, centroid=False)
    assert none is None
    by_network = model.predict_frames(pairs.a[still], pairs.b[still], 0.0)[0]
    for name in UnitMixture._FIELDS:  # σ = 0 alone: the exact overlap, without the network
        assert np.array_equal(getattr(only_still, name), getattr(by_network, name), equal_nan=True), name
    # through the scoring of two layers: the same summaries, no centroid
    layer_a = prepare_layer(layer_to_lonlat(pairs.a[:60], "EPSG:3857"))
    layer_b = prepare_layer(layer_to_lonlat(pairs.b[:60], "EPSG:3857"))
    chunks = [list(score_candidate_pairs(model, layer_a, layer_b, np.full(60, 1.0), centroid=c)) for c in (True, False)]
    assert all(chunk.centroid is None for chunk in chunks[1]) and chunks[0][0].centroid is not None
    for a, b in zip(*chunks):
        assert np.array_equal(a.summary.iou_mean, b.summary.iou_mean)
        assert np.array_equal(a.summary.p_iou, b.summary.p_iou)
