"""overlaprelevance:trainmodel — fine-tune (or train) the relevance model on the user's own layers.

QGIS's process prepares the data (candidate pairs, exact labels under displacements,
descriptors, synthetic pairs: NumPy and shapely only) and writes it to a temporary
file; TensorFlow runs in a separate Python process (:mod:`.training_process`), whose
epochs stream back to the feedback.
"""

import math
import os
import time
import uuid
from pathlib import Path

from qgis.core import (
    QgsDataSourceUri,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingUtils,
)

from .compat import NUMBER_DOUBLE, NUMBER_INTEGER
from .base import GROUP_MODEL, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import (
    INPUT,
    MODEL,
    POSITIONAL_UNCERTAINTY,
    POSITIONAL_UNCERTAINTY_FIELD,
    REFERENCE,
    add_layer_pair_parameters,
    add_model_file_parameter,
    add_sigma_parameters,
    declare,
    load_model_parameter,
    positional_uncertainty,
    with_suffix,
)

np = lazy_import("numpy")
layers = lazy_import(".layers", __package__)

DISPLACEMENTS = "DISPLACEMENTS"
SYNTHETIC_PAIRS = "SYNTHETIC_PAIRS"
START = "START"
EPOCHS = "EPOCHS"
SEED = "SEED"
LEARNING_RATE = "LEARNING_RATE"
OUTPUT_MODEL = "OUTPUT_MODEL"
LAYER_PAIRS = "LAYER_PAIRS"
TRAINING_SAMPLES = "TRAINING_SAMPLES"
FINAL_VAL_LOSS = "FINAL_VAL_LOSS"

START_OPTIONS = ("Bundled model (fine-tune)", "From scratch")
START_BUNDLED, START_SCRATCH = 0, 1
#: The synthetic pairs mixed in are drawn with seed SYNTHETIC_SEED_BASE + SEED (the bundled model used 1 and 2).
SYNTHETIC_SEED_BASE = 1000
SYNTHETIC_CHUNK = 1024


class TrainModelAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_MODEL
    SHORT_DESCRIPTION = "Fine-tunes (or trains) the relevance model on the exact overlaps of your own layers."
    SUMMARY = (
        "Trains the relevance model on your own data: the exact overlaps of the candidate pairs of an input and a "
        "reference layer, with the positions as they are and under random displacements of σ, mixed with pairs "
        "from the synthetic generator the bundled model was trained on, so that the model keeps what it knows about "
        "shapes your layers lack. By default it fine-tunes the bundled model. The result is one model file for the "
        "Model file parameter of the other algorithms; check it with 'Evaluate relevance model'. TensorFlow runs "
        "in a separate Python process, never inside QGIS: the Processing option Settings ▸ Options ▸ Processing ▸ "
        "Providers ▸ Overlap relevance ▸ 'Python interpreter for training' chooses it (else "
        "<code>OVERLAP_RELEVANCE_PYTHON</code>, else the plugin folder's <code>.venv-train</code>); when it lacks "
        "TensorFlow the algorithm stops and prints the commands that make one.")
    TAGS = ("train", "training", "fine-tune", "machine learning", "neural network", "tensorflow", "model",
            "uncertainty", "match")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "trainmodel"
    DISPLAY_NAME = "Train relevance model"

    def output_help(self):
        return [
            ("Trained model file", "weights plus a record of the data (source layers, σ, numbers of pairs and "
                                   "samples, the synthetic recipe), the starting model, the epochs and loss history, "
                                   "and the SHA-256 of the weights. '.npz' is added to a name without extension."),
            ("Candidate pairs from the layers", "how many pairs of your layers were labelled"),
            ("Training samples", "layer samples plus synthetic pairs"),
            ("Final validation loss", "mixture negative log-likelihood (nats) on the 10 % of pairs held out"),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        add_sigma_parameters(self, default=0.5)
        declare(self, QgsProcessingParameterNumber(
            DISPLACEMENTS, "Displacements per pair (σ > 0)", NUMBER_INTEGER, 4, minValue=1, maxValue=256),
            help_text="How many random displacements d ~ N(0, σ²I₂) of the reference feature each candidate pair is "
                      "labelled under when σ > 0, besides the undisplaced pair.")
        declare(self, QgsProcessingParameterNumber(
            SYNTHETIC_PAIRS, "Synthetic pairs to mix in", NUMBER_INTEGER, 20000, minValue=0, maxValue=1_000_000),
            help_text="Pairs of the bundled model's synthetic generator mixed in (0: your pairs only); about 1.5 ms "
                      "each to generate.")
        declare(self, QgsProcessingParameterEnum(START, "Start from", list(START_OPTIONS), defaultValue=0),
                help_text="Fine-tune the bundled model (or the model file to fine-tune), or train a new network.")
        add_model_file_parameter(self, "Model file to fine-tune (empty: the bundled model)", advanced=True,
                                 help_text="The model whose weights fine-tuning starts from; empty: the bundled "
                                           "model. Not used from scratch.")
        declare(self, QgsProcessingParameterNumber(EPOCHS, "Epochs", NUMBER_INTEGER, 10, minValue=1, maxValue=10_000),
                help_text="Passes over the training data; 10 % of the pairs (all samples of a pair together) are "
                          "held out for the validation loss.")
        declare(self, QgsProcessingParameterNumber(SEED, "Seed", NUMBER_INTEGER, 1, optional=True, minValue=0),
                advanced=True, help_text="Seeds the displacements, the synthetic pairs, the validation split and "
                                         "TensorFlow: the same inputs and seed give the same model on one machine.")
        declare(self, QgsProcessingParameterNumber(
            LEARNING_RATE, "Learning rate (empty: 0.0005 fine-tuning, 0.002 from scratch)", NUMBER_DOUBLE, None,
            optional=True, minValue=1e-7, maxValue=1.0), advanced=True, decimals=6,
            help_text="The Adam optimiser's learning rate.")
        self.addParameter(QgsProcessingParameterFileDestination(OUTPUT_MODEL, "Trained model file",
                                                                "Model files (*.npz)"))
        self.addOutput(QgsProcessingOutputNumber(LAYER_PAIRS, "Candidate pairs from the layers"))
        self.addOutput(QgsProcessingOutputNumber(TRAINING_SAMPLES, "Training samples"))
        self.addOutput(QgsProcessingOutputNumber(FINAL_VAL_LOSS, "Final validation loss"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        from .settings import training_interpreter
        from .training_process import InterpreterError, probe_interpreter

        interpreter, origin = training_interpreter()
        feedback.pushInfo(f"Training interpreter: {interpreter} (from the {origin})")
        feedback.setProgressText("Checking the training interpreter for TensorFlow")
        try:
            report = probe_interpreter(interpreter)
        except InterpreterError as error:
            raise QgsProcessingException(str(error)) from None
        feedback.pushInfo(f"Python {report['version']} with TensorFlow: {report['executable']}")
        if feedback.isCanceled():
            return {}

        start = self.parameterAsEnum(parameters, START, context)
        start_argument, start_record = "scratch", None
        if start == START_SCRATCH and self.parameterAsFile(parameters, MODEL, context):
            feedback.pushWarning("Training from scratch: the model file to fine-tune is not used.")
        if start == START_BUNDLED:
            model = load_model_parameter(self, parameters, context)  # a bad file fails here, before any work
            start_argument = str(model.path)
            start_record = Path(model.path).name
        out_path = with_suffix(self.parameterAsFileOutput(parameters, OUTPUT_MODEL, context), ".npz")
        if not out_path:
            raise QgsProcessingException(self.invalidParameterError(parameters, OUTPUT_MODEL))
        seed = self._seed(parameters, context)

        started = time.perf_counter()
        prepared = self._prepare_data(parameters, context, feedback, seed)
        if prepared is None:
            return {}
        data_path, meta, n_samples = prepared
        feedback.pushInfo(f"Training data: {meta['layer_pairs']} candidate pairs give {meta['layer_samples']} "
                          f"samples, plus {meta['synthetic_pairs']} synthetic pairs "
                          f"({time.perf_counter() - started:.1f} s).")
        try:
            arguments = ["--data", data_path, "--out", out_path, "--start", start_argument, "--seed", seed,
                         "--epochs", self.parameterAsInt(parameters, EPOCHS, context)]
            if parameters.get(LEARNING_RATE) not in (None, ""):
                rate = self.parameterAsDouble(parameters, LEARNING_RATE, context)
                if not math.isfinite(rate) or rate <= 0:
                    raise QgsProcessingException(f"The learning rate must be a positive number; got {rate}.")
                arguments += ["--learning-rate", repr(rate)]
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            done = self._train(interpreter, arguments, out_path, feedback)
        finally:
            try:
                os.remove(data_path)
            except OSError:
                pass
        if done is None:  # cancelled
            return {}

        from ..model.network import ModelFileError
        from ..model.scoring import load_model

        try:
            trained = load_model(out_path)
        except ModelFileError as error:
            raise QgsProcessingException(f"The training process wrote a model that cannot be used: {error}") from None
        feedback.pushInfo(f"Model written: {out_path} (weights SHA-256 {trained.config['weights_sha256'][:16]}…, "
                          f"started from {start_record or 'scratch'}, {time.perf_counter() - started:.1f} s in all).")
        feedback.setProgress(100)
        final = done.get("final_val_loss")
        return {OUTPUT_MODEL: out_path, LAYER_PAIRS: meta["layer_pairs"], TRAINING_SAMPLES: n_samples,
                FINAL_VAL_LOSS: float(final) if final is not None else None, **self._feature_counts}

    def _seed(self, parameters, context):
        if parameters.get(SEED) in (None, ""):
            return 1
        return self.parameterAsInt(parameters, SEED, context)

    # ------------------------------------------------------------------
    # Data, in QGIS's process (NumPy and shapely only).
    # ------------------------------------------------------------------
    def _prepare_data(self, parameters, context, feedback, seed):
        """(data file path, meta, samples) or None when cancelled."""
        from ..model.pairs import iter_pair_chunks
        from ..model.scoring import search_distances
        from ..model.datasets.layer_data import concatenate, layer_pair_arrays, save_training_data, synthetic_arrays
        from ..model.datasets.synthetic import generator_fingerprint, iter_synthetic_chunks, recipe_hash

        sigma_field = self.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
        pair = layers.read_layer_pair(self, parameters, context, feedback,
                               input_value_fields=[sigma_field] if sigma_field else [])
        if pair is None:
            return None
        sigma = positional_uncertainty(self, parameters, context, pair.input, feedback)
        lonlat_input, lonlat_reference = pair.to_lonlat(feedback)
        self._feature_counts = pair.feature_counts()  # results of the run (processAlgorithm)
        displacements = self.parameterAsInt(parameters, DISPLACEMENTS, context)
        n_synthetic = self.parameterAsInt(parameters, SYNTHETIC_PAIRS, context)

        feedback.setProgressText("Labelling the layers' candidate pairs")
        n_input = max(len(pair.input.fids), 1)
        parts, n_pairs = [], 0
        distance = search_distances(pair.search_distance, sigma)
        for k, chunk in enumerate(iter_pair_chunks(lonlat_input, lonlat_reference, distance, *pair.same_layer_ids())):
            if feedback.isCanceled():
                return None
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, k)))
            parts.append(layer_pair_arrays(chunk.frames.a, chunk.frames.b, sigma[chunk.index_a], displacements, rng,
                                           group_offset=n_pairs))
            n_pairs += len(chunk.index_a)
            feedback.setProgress(20 + 15 * (chunk.index_a[-1] + 1) / n_input)
        if feedback.isCanceled():
            return None
        if n_pairs == 0:
            raise QgsProcessingException(
                "The input and reference layers have no candidate pairs, so there is nothing to learn from. Check "
                "that they overlap, or raise the search distance.")
        n_layer_samples = sum(len(part["x"]) for part in parts)

        if n_synthetic:
            feedback.setProgressText(f"Generating {n_synthetic} synthetic pairs")
            synthetic_seed = SYNTHETIC_SEED_BASE + seed
            done = 0
            for batch in iter_synthetic_chunks(n_synthetic, synthetic_seed, chunk_pairs=SYNTHETIC_CHUNK, workers=1):
                if feedback.isCanceled():
                    return None
                parts.append(synthetic_arrays(batch, group_offset=n_pairs + done))
                done += len(batch)
                feedback.setProgress(35 + 15 * done / n_synthetic)
            if feedback.isCanceled():
                return None
        arrays = concatenate(parts)
        meta = {
            "source_layers": {"input": self._layer_record(parameters, INPUT, context, len(pair.input.fids)),
                              "reference": self._layer_record(parameters, REFERENCE, context,
                                                              len(pair.reference.fids))},
            "search_distance_m": pair.search_distance,
            "sigma_m": self.parameterAsDouble(parameters, POSITIONAL_UNCERTAINTY, context),
            "sigma_field": sigma_field or None,
            "sigma_range_m": [float(sigma.min()), float(sigma.max())] if len(sigma) else None,
            "displacements_per_pair": displacements,
            "layer_pairs": n_pairs,
            "layer_samples": n_layer_samples,
            "synthetic_pairs": n_synthetic,
            "synthetic_seed": SYNTHETIC_SEED_BASE + seed if n_synthetic else None,
            "synthetic_recipe_hash": recipe_hash(),
            "synthetic_generator_sha256": generator_fingerprint(),
            "seed": seed,
        }
        path = Path(QgsProcessingUtils.tempFolder()) / f"overlap_relevance_training_{uuid.uuid4().hex}.npz"
        save_training_data(path, arrays, meta)
        return str(path), meta, len(arrays["x"])

    def _layer_record(self, parameters, name, context, n_features):
        source = self.parameterAsSource(parameters, name, context)
        layer = self.parameterAsVectorLayer(parameters, name, context)
        record = {"name": source.sourceName() if source is not None else None, "features": n_features}
        if layer is not None:
            record["source"] = QgsDataSourceUri.removePassword(layer.source())
            record["provider"] = layer.providerType()
            record["crs"] = layer.crs().authid() or layer.crs().toWkt()
        return record

    # ------------------------------------------------------------------
    # Training, in a separate Python process.
    # ------------------------------------------------------------------
    def _train(self, interpreter, arguments, out_path, feedback):
        """The 'done' event of the training process, or None when cancelled; raises when it fails."""
        from .install_advice import training_advice
        from .training_process import InterpreterError, TrainingProcess

        feedback.setProgressText("Training (TensorFlow, separate process)")
        try:
            process = TrainingProcess(interpreter, arguments).start()
        except InterpreterError as error:
            raise QgsProcessingException(str(error)) from None
        done, failure = None, None
        try:
            feedback.pushInfo(f"Training process started (pid {process.pid}).")
            for kind, payload in process.events(feedback.isCanceled):
                if kind == "text":
                    feedback.pushDebugInfo(payload)
                    continue
                event = payload["event"]
                if event == "start":
                    feedback.pushInfo(f"{payload['train_samples']} training and {payload['validation_samples']} "
                                      f"validation samples, {payload['epochs']} epochs, learning rate "
                                      f"{payload['learning_rate']:g}.")
                elif event == "epoch":
                    feedback.pushInfo(self._epoch_line(payload))
                    feedback.setProgress(50 + 50 * payload["epoch"] / max(payload["epochs"], 1))
                elif event == "done":
                    done = payload
                elif event == "error":
                    failure = payload.get("message")
            if feedback.isCanceled():
                process.stop()
                self._remove_partial(out_path)
                if done is not None:  # it finished as the cancel came: a cancelled run leaves no model
                    Path(out_path).unlink(missing_ok=True)
                feedback.pushInfo("Training cancelled; the training process was ended and no model was written.")
                return None
            code = process.wait()
        finally:
            process.stop()  # never leave the process behind, whatever happened here
        if code != 0 or done is None:
            self._remove_partial(out_path)
            details = process.error_text()
            message = f"The training process failed (exit code {code})"
            message += f": {failure}" if failure else "."
            if "ModuleNotFoundError" in details or "ImportError" in details:
                message += "\n" + training_advice(interpreter)
            raise QgsProcessingException(message + (f"\nIts last messages:\n{details}" if details else ""))
        return done

    @staticmethod
    def _epoch_line(event):
        parts = [f"Epoch {event['epoch']}/{event['epochs']}"]
        for key, label in (("loss", "loss"), ("val_loss", "validation loss"),
                           ("val_overlap_loss", "validation overlap NLL")):
            if event.get(key) is not None:
                parts.append(f"{label} {event[key]:.4f}")
        parts.append(f"{event.get('seconds', 0):.1f} s")
        return ", ".join(parts)

    @staticmethod
    def _remove_partial(out_path):
        partial = Path(out_path + ".partial")
        if partial.exists():
            try:
                partial.unlink()
            except OSError:
                pass
