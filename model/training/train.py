"""Train the bundled overlap model: ``python -m overlap_relevance.model.training.train``.

Steps: synthetic pairs (:mod:`.synthetic`, seeded) → descriptors of the model
geometries (:mod:`..encoding`) → the Keras MDN (:mod:`.network_tf`) trained on the
mixed NLL of u = I / min(|A|, |B|) (the u-head, atoms at 0 and 1: :mod:`..overlap_head`; the
2-D head over (cover_a, cover_b) with ``--overlap-head cover_2d``) and, where the displaced pair
overlaps, the mixture NLL of the intersection centroid → the ``.keras`` model and the NumPy model file.

Everything is seeded; ``make train`` runs this on the CPU.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..datasets.layer_data import training_arrays
from ..encoding import DESCRIPTOR_NAMES
from ..preparation import MAX_MODEL_VERTICES, SIMPLIFY_TOLERANCE

DEFAULTS = dict(pairs=240_000, validation_pairs=20_000, epochs=80, batch_size=512, learning_rate=2e-3,
                seed=1, validation_seed=2, hidden=(128, 128, 64), activation="relu", components=3, labels=16,
                overlap_head="unit_atoms")
CACHE = Path(__file__).resolve().parents[2] / "build" / "training-data"
LABEL_STREAM = 4242  # the random stream of the extra displacement labels, apart from the generator's


def dataset(n, seed, chunk=8192, workers=None, progress=True, labels=DEFAULTS["labels"]):
    """Training arrays for ``n`` synthetic pairs with ``seed``, cached under build/.

    labels : displacement labels per pair besides the generator's own: ``overlap`` is then (n, 1 + labels, 2),
        the (cover_a, cover_b) of B displaced by 1 + labels independent d ~ N(0, σ²I₂), so the loss sees
        each pair's distribution rather than one draw of it (0: (n, 2), one label, as before).
    """
    from ..datasets.synthetic import iter_synthetic_chunks
    from ..overlap import monte_carlo_overlap

    path = cache_path(n, seed, labels)
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            return {key: cached[key] for key in cached.files}
    parts = []
    bar = _progress(total=n, desc=f"pairs (seed {seed})", disable=not progress)
    workers = workers or min(2, os.cpu_count() or 1)
    for i, batch in enumerate(iter_synthetic_chunks(n, seed, chunk_pairs=chunk, workers=workers)):
        arrays = training_arrays(batch)
        if labels:
            label_seed = int(np.random.SeedSequence([seed, i, LABEL_STREAM]).generate_state(1)[0])
            extra = monte_carlo_overlap(batch.a, batch.b, batch.sigma, labels, seed=label_seed, threads=workers)
            draws = np.stack([extra.cover_a, extra.cover_b], axis=-1).astype(np.float32)  # (n, labels, 2)
            arrays["overlap"] = np.concatenate([arrays["overlap"][:, None, :], draws], axis=1)
        parts.append(arrays)
        bar.update(len(batch))
    bar.close()
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def cache_path(n, seed, labels=DEFAULTS["labels"]):
    """Where :func:`dataset` caches ``n`` pairs of ``seed`` with ``labels`` extra labels."""
    from ..datasets.synthetic import recipe_hash

    suffix = f"_x{labels}" if labels else ""
    return CACHE / f"pairs_{n}_{seed}_{recipe_hash()[:12]}_{_encoding_hash()}{suffix}.npz"


def _encoding_hash():
    """Changes whenever the code that makes the cached arrays changes, not only the recipe."""
    import hashlib

    from ..datasets.synthetic import generator_fingerprint

    digest = hashlib.sha256(generator_fingerprint().encode())
    model_dir = Path(__file__).resolve().parents[1]
    for source in ("encoding.py", "sweep.py", "quasirandom.py", "datasets/layer_data.py"):  # descriptors, and the arrays made of them
        digest.update((model_dir / source).read_bytes())
    return digest.hexdigest()[:8]


def _progress(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, **kwargs)


def configure_tensorflow(seed, threads=None):
    import keras
    import tensorflow as tf

    threads = threads or os.cpu_count() or 2
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit(train, validation, *, epochs, batch_size, learning_rate, seed, hidden, activation, components,
        verbose="auto", callbacks=(), initial=None, overlap_head=DEFAULTS["overlap_head"]):
    """Train one model; returns (keras model, history dict, input mean, input std).

    initial : optional callable returning (keras model, input mean, input std) to train further
        (fine-tuning) instead of a new model; called after TensorFlow is configured.
    """
    import keras

    from .network_tf import build_model, losses

    configure_tensorflow(seed)
    if initial is not None:
        model, mean, std = initial()
    else:
        mean = train["x"].mean(axis=0)
        std = np.maximum(train["x"].std(axis=0), 1e-3)
        model = build_model(mean, std, hidden=hidden, activation=activation, overlap_components=components,
                            centroid_components=components, seed=seed, overlap_head=overlap_head)
    steps = epochs * int(np.ceil(len(train["x"]) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0), loss=losses(model))

    def targets(arrays):
        return {"overlap": arrays["overlap"], "centroid": arrays["centroid"]}

    def weights(arrays):
        return {"overlap": np.ones(len(arrays["x"]), np.float32), "centroid": arrays["centroid_mask"]}

    history = model.fit(
        train["x"], targets(train), sample_weight=weights(train),
        validation_data=(validation["x"], targets(validation), weights(validation)),
        epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose, callbacks=list(callbacks),
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, mean, std


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=DEFAULTS["pairs"])
    parser.add_argument("--validation-pairs", type=int, default=DEFAULTS["validation_pairs"])
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--validation-seed", type=int, default=DEFAULTS["validation_seed"])
    parser.add_argument("--components", type=int, default=DEFAULTS["components"])
    parser.add_argument("--overlap-head", choices=("cover_2d", "unit_atoms"), default=DEFAULTS["overlap_head"],
                        help="the overlap head: 2-D mixture over the covers, or 1-D over u with atoms at 0 and 1")
    parser.add_argument("--labels", type=int, default=DEFAULTS["labels"],
                        help="extra displacement labels per pair (0: the generator's one label only)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "overlap_mdn.npz")
    parser.add_argument("--keras-out", type=Path, default=None,
                        help="where to save the .keras model (default: next to --out)")
    args = parser.parse_args(argv)
    from ..datasets.synthetic import generator_fingerprint, recipe_hash

    started = time.perf_counter()
    train = dataset(args.pairs, args.seed, labels=args.labels)
    validation = dataset(args.validation_pairs, args.validation_seed, labels=args.labels)
    data_seconds = time.perf_counter() - started
    fit_started = time.perf_counter()
    model, history, mean, std = fit(
        train, validation, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, hidden=DEFAULTS["hidden"], activation=DEFAULTS["activation"], components=args.components,
        overlap_head=args.overlap_head,
    )
    fit_seconds = time.perf_counter() - fit_started
    keras_out = args.keras_out or args.out.with_suffix(".keras")
    keras_out.parent.mkdir(parents=True, exist_ok=True)
    model.save(keras_out)
    training = {
        "recipe_hash": recipe_hash(),
        "generator_sha256": generator_fingerprint(),
        "train_pairs": args.pairs, "train_seed": args.seed,
        "validation_pairs": args.validation_pairs, "validation_seed": args.validation_seed,
        "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "labels_per_pair": 1 + args.labels,
        "data_seconds": round(data_seconds, 1), "fit_seconds": round(fit_seconds, 1),
        "final_loss": history["loss"][-1], "final_val_loss": history["val_loss"][-1],
        "history": history,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    encoding = {"descriptors": list(DESCRIPTOR_NAMES), "max_model_vertices": MAX_MODEL_VERTICES,
                "simplify_tolerance": SIMPLIFY_TOLERANCE}
    from .network_tf import export_model_file

    export_model_file(model, args.out, mean, std, encoding, training)
    print(f"Model written: {args.out} and {keras_out} (data {data_seconds:.0f} s, training {fit_seconds:.0f} s, "
          f"final validation loss {history['val_loss'][-1]:.4f})")


if __name__ == "__main__":
    main()
