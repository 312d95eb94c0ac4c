"""Same numbers at scale (`make test-slow`): a generated 1M x 1M building set, scored and matched by the Dask
engine and by the single process, agree feature by feature."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
N = int(os.environ.get("OVERLAP_RELEVANCE_SCALE_N", 1_000_000))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    sys.path.insert(0, str(BENCHMARKS))
    import bench_dask

    folder = tmp_path_factory.mktemp("scale")
    mapping, cadastre = bench_dask.generate(N, 100_000, folder)
    return mapping, cadastre


def _read_whole(folder):
    import geopandas
    import pandas as pd

    return pd.concat([geopandas.read_parquet(p) for p in sorted(Path(folder).glob("*.parquet"))], ignore_index=True)


def test_one_million_scored_alike(client, layers, tmp_path):
    import dask_geopandas

    from overlap_relevance.scaleout import score_relevance
    from overlap_relevance.scaleout.local import score_layers

    mapping, cadastre = (_read_whole(p) for p in layers)
    values, null, info = score_layers(np.asarray(mapping.geometry.values, dtype=object), mapping.crs,
                                      np.asarray(cadastre.geometry.values, dtype=object), cadastre.crs,
                                      cadastre["building_id"].to_numpy(), np.full(len(mapping), 0.5))
    result = score_relevance(dask_geopandas.read_parquet(layers[0], gather_spatial_partitions=False),
                             dask_geopandas.read_parquet(layers[1], gather_spatial_partitions=False),
                             reference_key="building_id", sigma=0.5, partitions=8, workdir=tmp_path)
    out = result.compute().set_index("map_id").loc[mapping["map_id"]]
    assert len(out) == len(mapping)
    match = out["rel_match"].astype(object).where(out["rel_match"].notna(), None).to_numpy()
    expected = np.where(null["match"], None, values["match"]).astype(object)
    assert np.mean([str(m) == str(e) for m, e in zip(match, expected)]) == 1.0
    np.testing.assert_allclose(out["rel_score"].to_numpy(dtype=float), values["score"], rtol=1e-6, atol=1e-6)
    assert (out["rel_n"].to_numpy(dtype=int) == values["n"]).all()


def test_one_million_matched_alike(client, layers, tmp_path):
    import dask_geopandas

    from overlap_relevance.model.frame import layer_to_lonlat
    from overlap_relevance.model.matching import match_layers
    from overlap_relevance.model.preparation import prepare_layer
    from overlap_relevance.model.scoring import load_model
    from overlap_relevance.scaleout.dask_match import match

    mapping, cadastre = (_read_whole(p) for p in layers)
    layer_a = prepare_layer(layer_to_lonlat(np.asarray(mapping.geometry.values, dtype=object), mapping.crs))
    layer_b = prepare_layer(layer_to_lonlat(np.asarray(cadastre.geometry.values, dtype=object), cadastre.crs))
    expected = match_layers(load_model(), layer_a, layer_b, np.full(len(mapping), 0.5))
    out, _ = match(dask_geopandas.read_parquet(layers[0], gather_spatial_partitions=False),
                   dask_geopandas.read_parquet(layers[1], gather_spatial_partitions=False),
                   input_key="map_id", reference_key="building_id", sigma=0.5, partitions=8, workdir=tmp_path)
    out = out.compute().set_index("map_id").loc[mapping["map_id"]]
    assert list(out["m_class"]) == list(expected.class_a)
    keys = cadastre["building_id"].to_numpy()
    want = [str(keys[q]) if q >= 0 else "None" for q in expected.partner_a]
    assert [str(k) for k in out["m_key"].astype(object).where(out["m_key"].notna(), None)] == want
    assert list(out["m_change"].astype(object).where(out["m_change"].notna(), None)) == list(expected.change_a)
    np.testing.assert_allclose(out["m_p"].to_numpy(dtype=float, na_value=np.nan), expected.p_a, rtol=1e-6, atol=1e-6)
