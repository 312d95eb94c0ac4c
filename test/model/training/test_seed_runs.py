"""The model card's convergence runs: TensorFlow in a child process, summarised by the evaluation."""

import sys

from overlap_relevance.model.evaluation.measure import convergence_across_seeds
from overlap_relevance.model.network import load_model_file
from overlap_relevance.model.scoring import BUNDLED_MODEL


def test_convergence_runs_train_in_a_child_and_are_summarised():
    config, _ = load_model_file(BUNDLED_MODEL)
    config = {**config, "training": {**config.get("training", {}), "train_pairs": 0, "validation_pairs": 0}}
    seeds = convergence_across_seeds(config, 2, 200, 80, 1, progress=False, python=sys.executable)
    assert seeds["seeds"] == [11, 12] and len(seeds["runs"]) == 2
    assert seeds["nan_runs"] == 0 and seeds["spread"] is not None and seeds["spread"] >= 0
    assert seeds["train"] == "200 pairs (seed 1)" and seeds["epochs"] == 1
