"""The pure-Python core of overlap_relevance.

Data flow: geometries in any CRS -> :mod:`.frame` (local metres around each pair)
-> :mod:`.overlap` (exact reference) / the network (:mod:`.mixture` distributions).

Nothing in this package imports ``qgis``; only :mod:`.training` imports TensorFlow.
"""


def load_model(path=None):
    """The bundled overlap model, or the model file at ``path`` (see :mod:`.scoring`)."""
    from .scoring import load_model as _load

    return _load(path)
