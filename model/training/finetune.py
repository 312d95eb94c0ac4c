"""Train a model on prepared data: ``python -m overlap_relevance.model.training.finetune``.

The training process of ``overlaprelevance:trainmodel``. QGIS prepares the data
(descriptors and exact targets, :mod:`.layer_data`) in its own process, writes them
to a data file and runs this module with a Python that has TensorFlow, in a process
of its own: TensorFlow never shares a process with QGIS.

It starts from a model file (fine-tuning: the Keras model is rebuilt from the file's
config and weights, :func:`.network_tf.model_from_file`) or from scratch, trains for
``--epochs`` epochs and writes one model file (:mod:`..network` format) to ``--out``.

Progress goes to stdout as one JSON document per line (the parent reads them):

* ``{"event": "start", "pid": ..., "train_samples": ..., "validation_samples": ..., "epochs": ...}``
* ``{"event": "epoch", "epoch": k, "epochs": n, "loss": ..., "val_loss": ..., "seconds": ...}`` per epoch
* ``{"event": "done", "out": ..., "seconds": ..., "final_loss": ..., "final_val_loss": ...}``
* ``{"event": "error", "message": ...}`` before a non-zero exit.

The model file is first written next to ``--out`` with a ``.partial`` suffix and then
renamed, so ``--out`` never holds a half-written model.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..datasets.layer_data import load_training_data, split_by_group
from ..encoding import DESCRIPTOR_NAMES
from ..preparation import MAX_MODEL_VERTICES, SIMPLIFY_TOLERANCE
from .train import DEFAULTS

FINE_TUNE_LEARNING_RATE = 5e-4
VALIDATION_SHARE = 0.1


def emit(event, **values):
    """One JSON line on stdout, flushed at once."""
    print(json.dumps(dict(event=event, **values), allow_nan=False, default=_plain), flush=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="training data file (layer_data format)")
    parser.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--start", default="bundled",
                        help="'bundled' (the bundled model), 'scratch', or the path of a model file to fine-tune")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help=f"default {FINE_TUNE_LEARNING_RATE:g} when fine-tuning, "
                             f"{DEFAULTS['learning_rate']:g} from scratch")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--validation-share", type=float, default=VALIDATION_SHARE)
    return parser.parse_args(argv)


def _start_model(start):
    """(config, weights, path) of the model to fine-tune, or None for 'scratch'."""
    if start == "scratch":
        return None
    from ..network import BUNDLED_MODEL, load_model_file

    path = BUNDLED_MODEL if start == "bundled" else Path(start)
    config, weights = load_model_file(path)
    return config, weights, path


def run(args):
    started = time.perf_counter()
    arrays, meta = load_training_data(args.data)
    train_rows, validation_rows = split_by_group(arrays["group"], args.validation_share, args.seed)

    def take(rows):
        return {key: arrays[key][rows] for key in ("x", "overlap", "centroid", "centroid_mask")}

    train, validation = take(train_rows), take(validation_rows)
    start = _start_model(args.start)
    learning_rate = args.learning_rate or (DEFAULTS["learning_rate"] if start is None else FINE_TUNE_LEARNING_RATE)
    emit("start", pid=os.getpid(), train_samples=len(train_rows), validation_samples=len(validation_rows),
         epochs=args.epochs, start="scratch" if start is None else str(start[2]), learning_rate=learning_rate)

    import keras  # noqa: F401  (TensorFlow from here on: this is the training process)

    from .network_tf import export_model_file, model_from_file
    from .train import fit

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            emit("epoch", epoch=epoch + 1, epochs=args.epochs,
                 seconds=round(time.perf_counter() - self.epoch_started, 2),
                 **{key: _finite(value) for key, value in logs.items()
                    if key in ("loss", "val_loss", "overlap_loss", "val_overlap_loss", "centroid_loss",
                               "val_centroid_loss")})

    def start_model():
        config, weights, _ = start
        return model_from_file(config, weights, seed=args.seed), weights["input_mean"], weights["input_std"]

    initial = None if start is None else start_model

    hidden = tuple(start[0]["network"]["hidden"]) if start is not None else DEFAULTS["hidden"]
    fit_started = time.perf_counter()
    model, history, mean, std = fit(
        train, validation, epochs=args.epochs, batch_size=args.batch_size, learning_rate=learning_rate,
        seed=args.seed, hidden=hidden, activation=DEFAULTS["activation"], components=DEFAULTS["components"],
        verbose=0, callbacks=[EpochLines()], initial=initial)
    fit_seconds = time.perf_counter() - fit_started

    from ..datasets.synthetic import generator_fingerprint, recipe_hash

    training = {
        "kind": "scratch" if start is None else "fine-tune",
        "started_from": None if start is None else {
            "file": Path(start[2]).name, "weights_sha256": start[0].get("weights_sha256"),
            "recipe_hash": start[0].get("training", {}).get("recipe_hash")},
        "recipe_hash": recipe_hash(),
        "generator_sha256": generator_fingerprint(),
        "data": {key: value for key, value in meta.items() if key not in ("format", "format_version", "descriptors")},
        "samples": int(len(arrays["x"])),
        "layer_samples": int(np.sum(arrays["source"] == 0)),
        "synthetic_samples": int(np.sum(arrays["source"] == 1)),
        "train_samples": int(len(train_rows)), "validation_samples": int(len(validation_rows)),
        "validation_share": args.validation_share,
        "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": learning_rate, "seed": args.seed,
        "fit_seconds": round(fit_seconds, 1),
        "final_loss": history["loss"][-1] if history.get("loss") else None,
        "final_val_loss": history["val_loss"][-1] if history.get("val_loss") else None,
        "history": history,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    encoding = {"descriptors": list(DESCRIPTOR_NAMES), "max_model_vertices": MAX_MODEL_VERTICES,
                "simplify_tolerance": SIMPLIFY_TOLERANCE}
    partial = args.out.with_name(args.out.name + ".partial")
    export_model_file(model, partial, mean, std, encoding, training)
    os.replace(partial, args.out)
    emit("done", out=str(args.out), seconds=round(time.perf_counter() - started, 1), fit_seconds=round(fit_seconds, 1),
         final_loss=_finite(training["final_loss"]) if training["final_loss"] is not None else None,
         final_val_loss=_finite(training["final_val_loss"]) if training["final_val_loss"] is not None else None)


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except Exception as error:  # the parent shows this message; the traceback goes to stderr
        import traceback

        traceback.print_exc(file=sys.stderr)
        emit("error", message=f"{type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
