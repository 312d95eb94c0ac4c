"""Processing algorithms: one thin module each (parameters in, core call, sink out)."""

from .evaluate_model import EvaluateModelAlgorithm
from .exact_overlap import ExactOverlapAlgorithm
from .match_features import MatchFeaturesAlgorithm
from .overlap_location import OverlapLocationAlgorithm
from .relevance_pairs import RelevancePairsAlgorithm
from .score_relevance import ScoreRelevanceAlgorithm
from .train_model import TrainModelAlgorithm

ALGORITHMS = (ScoreRelevanceAlgorithm, MatchFeaturesAlgorithm, RelevancePairsAlgorithm, OverlapLocationAlgorithm, ExactOverlapAlgorithm,
              TrainModelAlgorithm, EvaluateModelAlgorithm)
