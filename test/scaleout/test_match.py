"""Matching on Dask gives the single process's groups, classes, one-to-one partners, probabilities and change
labels on both sides, whatever the partitioning, including groups that reach across buckets."""

from pathlib import Path

import numpy as np
import pytest

from overlap_relevance.model.frame import layer_to_lonlat
from overlap_relevance.model.preparation import prepare_layer
from overlap_relevance.model.matching import match_layers
from overlap_relevance.model.scoring import load_model
from overlap_relevance.scaleout.dask_match import match

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"
WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")


def _single(input_frame, reference_frame, sigma, search_distance=0.0, same=False):
    geoms = [np.asarray(f.geometry.values, dtype=object) for f in (input_frame, reference_frame)]
    layer_a = prepare_layer(layer_to_lonlat(geoms[0], input_frame.crs))
    layer_b = layer_a if same else prepare_layer(layer_to_lonlat(geoms[1], reference_frame.crs))
    ids = (np.arange(len(input_frame)),) * 2 if same else (None, None)
    return match_layers(load_model(), layer_a, layer_b, np.full(len(input_frame), sigma),
                        search_distance, *ids)


def _same_partition(got, expected):
    """The two labelings (-1/NaN: no group) cut the features into the same groups."""
    got = np.where(np.isnan(got), -1, got).astype(np.int64)
    assert np.array_equal(got < 0, expected < 0)
    pairs = np.unique(np.column_stack([got[got >= 0], expected[expected >= 0]]), axis=0)
    assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


def assert_same(out, expected, side, keys_other):
    klass, partner, p, change, group = (getattr(expected, f"{name}_{side}")
                                        for name in ("class", "partner", "p", "change", "group"))
    assert list(out["m_class"]) == list(klass)
    assert list(out["m_change"].astype(object).where(out["m_change"].notna(), None)) == list(change)
    want_key = [str(keys_other[q]) if q >= 0 else "None" for q in partner]
    assert [str(k) for k in out["m_key"].astype(object).where(out["m_key"].notna(), None)] == want_key
    np.testing.assert_allclose(out["m_p"].to_numpy(dtype=float, na_value=np.nan), p, rtol=1e-6, atol=1e-6)
    _same_partition(out["m_group"].to_numpy(dtype=float, na_value=np.nan), group)


def _dask(input_frame, reference_frame, parts, **options):
    import dask_geopandas

    result_a, result_b = match(dask_geopandas.from_geopandas(input_frame, npartitions=parts[0]),
                               dask_geopandas.from_geopandas(reference_frame, npartitions=parts[1]), **options)
    return result_a.compute().loc[input_frame.index], result_b.compute().loc[reference_frame.index]


@pytest.mark.parametrize("parts, buckets, sigma", [((1, 1), 1, 0.5), ((3, 2), 7, 0.5), ((4, 3), 5, 2.0)])
def test_sample_matches_as_one_process(client, parts, buckets, sigma):
    import geopandas

    mapping = geopandas.read_file(SAMPLE / "buildings_mapping.gpkg")
    cadastre = geopandas.read_file(SAMPLE / "buildings_cadastre.gpkg")
    expected = _single(mapping, cadastre, sigma, 1.0)
    out_a, out_b = _dask(mapping, cadastre, parts, reference_key="building_id", sigma=sigma, search_distance=1.0,
                         partitions=buckets)
    assert list(out_a.columns) == [*mapping.columns, "m_group", "m_class", "m_key", "m_p", "m_change", "m_change_p"]
    assert list(out_b.columns) == [*cadastre.columns, "m_group", "m_class", "m_key", "m_p", "m_change", "m_change_p"]
    assert out_a.crs == mapping.crs and out_b.crs == cadastre.crs
    assert_same(out_a, expected, "a", cadastre["building_id"].to_numpy())
    assert_same(out_b, expected, "b", mapping.index.to_numpy())
    assert (out_a["m_class"] == "1:1").mean() > 0.8


@pytest.mark.skipif(not WORLD_MAP.exists(), reason=f"{WORLD_MAP} (QGIS's resources) is not installed")
def test_world_map_groups_reach_across_buckets(client):
    """Countries hold many provinces, so with 6 buckets many groups are joined from pieces of several."""
    import geopandas

    provinces = geopandas.read_file(WORLD_MAP, layer="states_provinces", fid_as_index=True)
    countries = geopandas.read_file(WORLD_MAP, layer="countries", fid_as_index=True)
    expected = _single(provinces, countries, 0.0)
    out_a, out_b = _dask(provinces, countries, (4, 3), sigma=0.0, partitions=6)
    assert_same(out_a, expected, "a", countries.index.to_numpy())
    assert_same(out_b, expected, "b", provinces.index.to_numpy())
    assert (out_a["m_class"] == "n:1").sum() > 1000


def test_same_layer_never_matches_itself(client):
    import geopandas

    cadastre = geopandas.read_file(SAMPLE / "buildings_cadastre.gpkg")
    expected = _single(cadastre, cadastre, 0.5, same=True)
    out_a, out_b = _dask(cadastre, cadastre, (3, 3), reference_key="building_id", input_key="building_id",
                         sigma=0.5, partitions=3, same_layer=True)
    assert_same(out_a, expected, "a", cadastre["building_id"].to_numpy())
    assert_same(out_b, expected, "b", cadastre["building_id"].to_numpy())
