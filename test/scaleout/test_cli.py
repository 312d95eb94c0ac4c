"""The command line, as a user runs it: `overlap-relevance score` with either engine, and `match`."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample"
QGIS_SIDE_PYTHON = ROOT / ".venv" / "bin" / "python"
FIELDS = ["map_id", "true_match", "rel_match", "rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd", "rel_n"]
SCORE = ["score", str(SAMPLE / "buildings_mapping.gpkg"), str(SAMPLE / "buildings_cadastre.gpkg"),
         "--reference-key", "building_id", "--sigma", "0.5", "--quiet"]


def run_cli(python, args, cwd):
    return subprocess.run([str(python), "-m", "overlap_relevance.scaleout.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def read(path):
    import geopandas

    return geopandas.read_parquet(path) if str(path).endswith(".parquet") else geopandas.read_file(path)


@pytest.mark.skipif(not QGIS_SIDE_PYTHON.exists(), reason="no .venv (make setup): the QGIS side's Python")
def test_local_engine_runs_in_the_qgis_side_venv_without_dask_or_geopandas(tmp_path):
    output = tmp_path / "local.gpkg"
    code = ("import sys; from overlap_relevance.scaleout.cli import main; rc = main(sys.argv[1:]); "
            "loaded = sorted(m for m in ('dask', 'distributed', 'geopandas', 'pandas') if m in sys.modules); "
            "assert not loaded, loaded; sys.exit(rc)")
    done = subprocess.run([str(QGIS_SIDE_PYTHON), "-c", code, *SCORE, "--engine", "local", "--output", str(output)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    frame = read(output)
    assert [c for c in frame.columns if c != "geometry"] == FIELDS
    assert len(frame) == 248 and frame.crs.to_epsg() == 4326


def test_dask_engine_matches_the_local_engine(tmp_path):
    local, dask_gpkg, dask_parquet = tmp_path / "local.gpkg", tmp_path / "dask.gpkg", tmp_path / "dask.parquet"
    assert run_cli(sys.executable, [*SCORE, "--engine", "local", "--output", str(local)], tmp_path).returncode == 0
    for output in (dask_gpkg, dask_parquet):
        done = run_cli(sys.executable, [*SCORE, "--workers", "2", "--partitions", "3", "--output", str(output)],
                       tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Scored 248 input features" in done.stdout
    assert dask_parquet.is_dir() and len(list(dask_parquet.glob("*.parquet"))) == 3  # a folder of parts
    expected = read(local).set_index("map_id")
    for output in (dask_gpkg, dask_parquet):
        frame = read(output)
        assert [c for c in frame.columns if c != "geometry"] == FIELDS
        frame = frame.set_index("map_id").loc[expected.index]
        assert (frame["rel_match"].fillna("").to_numpy() == expected["rel_match"].fillna("").to_numpy()).all()
        np.testing.assert_allclose(frame["rel_score"].to_numpy(dtype=float), expected["rel_score"].to_numpy(float),
                                   rtol=1e-6, atol=1e-6)
        assert (frame["rel_n"].to_numpy(dtype=int) == expected["rel_n"].to_numpy(dtype=int)).all()
        assert frame.geometry.geom_equals_exact(expected.geometry, 1e-12).all()  # the input's geometry, as read


M_FIELDS = ["m_group", "m_class", "m_key", "m_p", "m_change", "m_change_p"]


def _match_cli(tmp_path, engine, suffix=".gpkg"):
    output, reference_output = tmp_path / f"matched_{engine}{suffix}", tmp_path / f"matched_reference_{engine}{suffix}"
    done = run_cli(sys.executable, ["match", *SCORE[1:], "--input-key", "map_id", "--engine", engine,
                                    "--partitions", "3", "--output", str(output),
                                    "--reference-output", str(reference_output)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return read(output), read(reference_output)


def test_match_in_one_process(tmp_path):
    frame, reference = _match_cli(tmp_path, "local")
    assert [c for c in frame.columns if c != "geometry"] == ["map_id", "true_match", *M_FIELDS]
    assert [c for c in reference.columns if c != "geometry"] == ["building_id", "area_m2", *M_FIELDS]
    one = frame[frame["m_class"] == "1:1"]
    assert len(one) > 0.8 * len(frame)
    assert (one["m_key"] == one["true_match"]).mean() > 0.95  # the generator's truth
    partners = reference.set_index("building_id")["m_key"]
    assert (partners.loc[one["m_key"]].to_numpy() == one["map_id"].to_numpy()).all()  # both sides agree
    assert frame.loc[frame["m_class"] == "unmatched", "m_group"].isna().all()


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_match_on_dask_gives_the_single_process_fields(tmp_path, suffix):
    local = _match_cli(tmp_path, "local")
    dask = _match_cli(tmp_path, "dask", suffix)
    for (expected, got), key in zip(zip(local, dask), ("map_id", "building_id")):
        assert [c for c in got.columns if c != "geometry"] == [c for c in expected.columns if c != "geometry"]
        expected, got = expected.set_index(key), got.set_index(key).loc[expected.set_index(key).index]
        for name in ("m_class", "m_key", "m_change"):
            assert [str(v) for v in got[name].astype(object).where(got[name].notna(), None)] == \
                [str(v) for v in expected[name].astype(object).where(expected[name].notna(), None)], name
        np.testing.assert_allclose(got["m_p"].to_numpy(dtype=float, na_value=np.nan),
                                   expected["m_p"].to_numpy(dtype=float, na_value=np.nan), rtol=1e-6, atol=1e-6)
        assert (got["m_group"].isna() == expected["m_group"].isna()).all()


def test_the_launcher_runs_the_dask_engine(tmp_path):
    """The console script make setup-dask writes: Dask's spawned workers re-run it, so it must be guarded."""
    launcher = Path(sys.executable).parent / "overlap-relevance"
    if not launcher.exists():
        pytest.skip("no overlap-relevance launcher next to this Python (make setup-dask writes it)")
    output = tmp_path / "out.gpkg"
    done = subprocess.run([str(launcher), *SCORE, "--workers", "1", "--partitions", "2", "--output", str(output)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Scored 248 input features" in done.stdout and output.exists()


def test_feature_ids_are_the_default_key_and_a_layer_never_matches_itself(tmp_path):
    cadastre = str(SAMPLE / "buildings_cadastre.gpkg")
    frames = {}
    for engine in ("local", "dask"):
        output = tmp_path / f"{engine}.gpkg"
        done = run_cli(sys.executable, ["score", cadastre, cadastre, "--sigma", "0.5", "--engine", engine,
                                        "--workers", "2", "--partitions", "3", "--quiet", "--output", str(output)],
                       tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        frames[engine] = read(output).set_index("building_id")
    local, dask = frames["local"], frames["dask"].loc[frames["local"].index]
    assert (local["rel_match"].fillna(-1).to_numpy() == dask["rel_match"].fillna(-1).to_numpy()).all()
    fids = np.arange(1, len(local) + 1)  # a GeoPackage's feature ids, in the order read
    assert (local["rel_match"].to_numpy() != fids).all()
