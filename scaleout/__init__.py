"""Scoring beyond one machine: the plugin's core, partition by partition, on Dask (``.venv-dask``).

(Not named ``distributed``: with the repository root on ``sys.path``, as ``python -m`` run from it puts
it, a top-level folder of that name would hide Dask's own ``distributed`` package.)

``score_relevance(input_ddf, reference_ddf, ...)`` returns a lazy dask-geopandas GeoDataFrame with
the fields ``scorerelevance`` writes, ``match(...)`` the two sides with the fields of ``matchfeatures``;
the command line is ``overlap-relevance score`` / ``match`` (:mod:`.cli`).
This package imports ``model/`` only, never QGIS; Dask, pandas and geopandas only inside the
functions that need them, so the single-process engine runs wherever ``model/`` runs.
"""


def score_relevance(input_ddf, reference_ddf, **options):
    """See :func:`.dask_engine.score_relevance`."""
    from .dask_engine import score_relevance as _score

    return _score(input_ddf, reference_ddf, **options)


def match(input_ddf, reference_ddf, **options):
    """See :func:`.dask_match.match`."""
    from .dask_match import match as _match

    return _match(input_ddf, reference_ddf, **options)
