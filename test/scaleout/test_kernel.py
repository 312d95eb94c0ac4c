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


def test_a_bucket_reads_references_near_runs_of_its_features_not_its_whole_outline():
    """A bucket's one outline is much larger than its features where its key interval straddles a boundary of
    the curve's quadrants; the outlines of runs of its features in key order hold every feature and cover far
    less (issue 28: the worst of 80 buckets read 8 buckets' worth of reference rows)."""
    import pandas as pd

    from overlap_relevance.scaleout.staging import DISTANCE, KEY, MODEL, bucket_areas

    step = 0.01
    x, y = np.meshgrid(np.arange(10.0, 12.0, step), np.arange(50.0, 52.0, step))
    geoms = shapely.box(x.ravel(), y.ravel(), x.ravel() + step / 2, y.ravel() + step / 2)
    keys = hilbert_keys(np.column_stack([x.ravel(), y.ravel()]))
    order = np.argsort(keys)
    buckets = np.array_split(order, 80)
    worst = max(buckets, key=lambda b: shapely.area(shapely.box(*outline(geoms[b]))) / len(b))
    frame = pd.DataFrame({MODEL: geoms[worst], DISTANCE: np.zeros(len(worst)), KEY: keys[worst]})
    areas = bucket_areas(frame)
    whole = outline(geoms[worst])
    assert len(areas) == 16 and np.isfinite(areas).all()
    runs = shapely.union_all(shapely.box(*areas.T))
    assert shapely.covers(runs, shapely.union_all(geoms[worst]))  # every feature (and so its candidates) inside
    assert shapely.area(runs) < 0.5 * shapely.area(shapely.box(*whole)), (shapely.area(runs), whole)
    assert bucket_areas(frame.iloc[:0]) is None
