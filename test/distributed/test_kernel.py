"""The per-partition helpers: the Hilbert grid and the partition outlines (antimeridian included)."""

import numpy as np
import shapely

from overlap_relevance.scaleout.kernel import hilbert_keys, outline, outlines_meet


def test_hilbert_keys_are_a_curve_over_the_whole_world():
    order = 3
    side = 1 << order
    cells = (np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) + 0.5)
    lonlat = cells * [360.0 / side, 180.0 / side] - [180.0, 90.0]
    keys = hilbert_keys(lonlat, order)
    assert sorted(keys.tolist()) == list(range(side * side))  # every cell once
    walk = cells[np.argsort(keys)]
    assert np.all(np.abs(np.diff(walk, axis=0)).sum(axis=1) == 1)  # each step to a neighbouring cell
    assert hilbert_keys(np.array([[np.nan, 0.0]]))[0] == np.iinfo(np.int64).max


def test_outlines_meet_across_the_antimeridian():
    east = outline(np.array([shapely.box(179.0, 0.0, 179.999, 1.0)]), 1000.0)
    west = outline(np.array([shapely.box(-179.999, 0.0, -179.0, 1.0)]))
    far = outline(np.array([shapely.box(0.0, 0.0, 1.0, 1.0)]))
    assert outlines_meet(east, west)[0, 0] and outlines_meet(west, east)[0, 0]
    assert not outlines_meet(east, far)[0, 0]
    assert not outlines_meet(np.full(4, np.nan), west)[0, 0]  # an empty partition meets nothing


def test_the_outline_widens_by_the_search_distance_in_metres():
    box = np.array([shapely.box(10.0, 50.0, 10.001, 50.001)])
    near = outline(np.array([shapely.box(10.003, 50.0, 10.004, 50.001)]))  # about 140 m east
    assert not outlines_meet(outline(box, 0.0), near)[0, 0]
    assert outlines_meet(outline(box, 200.0), near)[0, 0]
    assert outlines_meet(outline(box, np.array([200.0])), near)[0, 0]
