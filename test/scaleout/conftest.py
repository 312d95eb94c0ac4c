"""Dask engine tests: .venv-dask (Dask, geopandas), a pytest process of their own without QGIS.

`make test-dask` runs this folder with `-p no:pytest_qgis`; the QGIS-side run skips it (test/conftest.py).
"""

import sys

import pytest

if "qgis.core" in sys.modules:
    pytest.exit("test/scaleout must run without QGIS: pytest -p no:pytest_qgis test/scaleout", returncode=4)

pytest.importorskip("dask_geopandas", reason="needs .venv-dask (make setup-dask)")


@pytest.fixture(scope="session")
def client():
    """A LocalCluster of 2 worker processes, one thread each, as the command line makes by default."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client
