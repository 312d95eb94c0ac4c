"""Processing algorithms: one thin module each (parameters in, core call, sink out)."""

from .exact_overlap import ExactOverlapAlgorithm

ALGORITHMS = (ExactOverlapAlgorithm,)
