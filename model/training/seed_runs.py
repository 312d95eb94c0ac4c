"""Short trainings over several seeds, for the model card's convergence check (TensorFlow).

``python -m overlap_relevance.model.training.seed_runs`` reads a JSON request on stdin
(``config`` of the evaluated model, ``seeds``, ``n_pairs``, ``n_validation``, ``epochs``,
``progress``) and prints one JSON line: the runs and where their data came from. The
evaluation (:func:`..evaluation.measure.convergence_across_seeds`) starts it in the
training environment, so TensorFlow never enters the evaluating process.
"""

import json
import sys
import time

import numpy as np

from . import train as T


def _training_rows(n, seed, full_n):
    """The first ``n`` rows of the cached training arrays of ``full_n`` pairs (seed ``seed``) or, without that
    cache, ``train.dataset(n, seed)`` (generated and cached)."""
    cached = T.cache_path(full_n, seed)
    if full_n and full_n >= n and cached.is_file():
        arrays = T.dataset(full_n, seed)
        return {key: value[:n] for key, value in arrays.items()}, f"first {n:,} of the cached {full_n:,} (seed {seed})"
    return T.dataset(n, seed), f"{n:,} pairs (seed {seed})"


def seed_runs(config, seeds, n_pairs, n_validation, epochs, progress=True):
    """(runs, train source, validation source): the final losses of one short training per seed."""
    training = config.get("training", {})
    network = config["network"]
    train, train_source = _training_rows(n_pairs, training.get("train_seed", T.DEFAULTS["seed"]),
                                         training.get("train_pairs", 0))
    validation, validation_source = _training_rows(
        n_validation, training.get("validation_seed", T.DEFAULTS["validation_seed"]),
        training.get("validation_pairs", 0))
    runs = []
    for seed in T._progress(iterable=seeds, desc="convergence seeds", disable=not progress):
        started = time.perf_counter()
        _, history, _, _ = T.fit(
            train, validation, epochs=epochs, batch_size=training.get("batch_size", T.DEFAULTS["batch_size"]),
            learning_rate=training.get("learning_rate", T.DEFAULTS["learning_rate"]), seed=seed,
            hidden=tuple(network["hidden"]), activation=network["activation"],
            components=network["overlap_components"], overlap_head=network.get("overlap_head", "cover_2d"),
            verbose=0)
        values = np.concatenate([np.asarray(v, float) for v in history.values()])
        runs.append({"seed": seed, "final_val_loss": history["val_loss"][-1],
                     "final_val_overlap_loss": history.get("val_overlap_loss", [None])[-1],
                     "final_val_centroid_loss": history.get("val_centroid_loss", [None])[-1],
                     "nan": bool(not np.all(np.isfinite(values))),
                     "seconds": round(time.perf_counter() - started, 1)})
    return runs, train_source, validation_source


def main():
    request = json.loads(sys.stdin.read())
    runs, train_source, validation_source = seed_runs(request["config"], request["seeds"], request["n_pairs"],
                                                      request["n_validation"], request["epochs"],
                                                      request.get("progress", True))
    print(json.dumps({"runs": runs, "train": train_source, "validation": validation_source}, default=float))


if __name__ == "__main__":
    main()
