"""overlaprelevance:evaluatemodel — how well a model does on the user's layers, as an HTML report."""

import time
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from .compat import NUMBER_INTEGER
from .base import GROUP_MODEL, OverlapRelevanceAlgorithm
from .lazy import lazy_import
from .parameters import (
    INPUT,
    POSITIONAL_UNCERTAINTY,
    POSITIONAL_UNCERTAINTY_FIELD,
    REFERENCE,
    add_layer_pair_parameters,
    add_model_file_parameter,
    add_sigma_parameters,
    declare,
    with_suffix,
)

np = lazy_import("numpy")
relevance_run = lazy_import(".relevance_run", __package__)

MC_SAMPLES = "MC_SAMPLES"
MC_PAIRS = "MC_PAIRS"
SEED = "SEED"
OUTPUT = "OUTPUT"
MAE_IOU = "MAE_IOU"
BEST_MATCH_AGREEMENT = "BEST_MATCH_AGREEMENT"
INTERVAL_COVERAGE = "INTERVAL_COVERAGE"
CRPS = "CRPS"
N_PAIRS = "N_PAIRS"
N_TRUTH_PAIRS = "N_TRUTH_PAIRS"

# (output name, description, metrics key)
NUMERIC_OUTPUTS = (
    (MAE_IOU, "MAE of the mean IoU against the truth", "iou_mae"),
    (BEST_MATCH_AGREEMENT, "Best-match agreement (share of input features)", "best_match_agreement"),
    (INTERVAL_COVERAGE, "Coverage of the central 90 % IoU interval", "interval_coverage"),
    (CRPS, "CRPS of the IoU distribution", "crps"),
    (N_PAIRS, "Candidate pairs", "n_pairs"),
    (N_TRUTH_PAIRS, "Pairs with truth (the metrics' pairs)", "n_truth"),
)


class EvaluateModelAlgorithm(OverlapRelevanceAlgorithm):
    GROUP = GROUP_MODEL
    SHORT_DESCRIPTION = "How well a relevance model predicts the overlaps of your layers: an HTML report with a verdict."
    SUMMARY = (
        "Measures how well a relevance model (the bundled one or a trained model file) predicts the overlaps of "
        "your own layers, and writes an HTML report that says, metric by metric, whether the model card's target "
        "is met. The truth is the exact overlap of every candidate pair at σ = 0, and at σ &gt; 0 the distribution "
        "of the overlap under random displacements of the reference feature, estimated by Monte Carlo on a subset "
        "of whole input features. The model runs exactly as the scoring algorithms run it.")
    TAGS = ("evaluate", "validation", "accuracy", "calibration", "report", "metrics", "monte carlo", "model",
            "uncertainty", "match")
    NOTES = ("iou", "model", "frame", "geometry")

    NAME = "evaluatemodel"
    DISPLAY_NAME = "Evaluate relevance model"

    def output_help(self):
        return [("Report", "an HTML file: the verdict against each target, the metrics, plots (embedded) and "
                           "tables by σ and by vertex count; it opens in the Results Viewer (a temporary file unless named)"),
                *((name, description) for name, description, _ in NUMERIC_OUTPUTS),
                ("(numbers)", "outputs of the algorithm, so models and scripts can use them; a metric that cannot "
                              "be measured (e.g. no pair has truth) is empty")]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_layer_pair_parameters(self)
        add_sigma_parameters(self)
        add_model_file_parameter(self, "Model file to evaluate (empty: the bundled model)")
        declare(self, QgsProcessingParameterNumber(
            MC_SAMPLES, "Monte-Carlo displacements per pair (σ > 0)", NUMBER_INTEGER, 128, minValue=8, maxValue=8192),
            help_text="More is a more precise truth, and slower.")
        declare(self, QgsProcessingParameterNumber(
            MC_PAIRS, "Monte-Carlo pairs (about; σ > 0)", NUMBER_INTEGER, 500, minValue=0, maxValue=1_000_000),
            help_text="About how many pairs with σ > 0 get a Monte-Carlo truth; whole input features are taken, "
                      "so that best matches can be compared too.")
        declare(self, QgsProcessingParameterNumber(SEED, "Seed", NUMBER_INTEGER, 3, minValue=0), advanced=True,
                help_text="Seeds the subset of pairs, the displacements and the randomised PIT: the same seed gives "
                          "the same report.")
        # A temporary file unless the user names one, as QGIS's own reports do (qgis_process needs no OUTPUT).
        self.addParameter(QgsProcessingParameterFileDestination(OUTPUT, "Evaluation report", "HTML files (*.html)",
                                                                "TEMPORARY_OUTPUT"))
        for name, description, _ in NUMERIC_OUTPUTS:
            self.addOutput(QgsProcessingOutputNumber(name, description))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS's name)
        """Name the report after what it evaluated, in the dialog that ran it (its Results Viewer entry)."""
        results = super().postProcessAlgorithm(context, feedback)
        origin = getattr(self, "created_from", lambda: None)()
        title = getattr(self, "report_title", None)
        if origin is not None and title:
            output = origin.outputDefinition(OUTPUT)
            if output is not None:
                output.setDescription(title)
        return results

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        from ..model.network import ModelFileError
        from ..model.evaluation.report import evaluate_layers, target_verdicts, verdict_summary
        from ..model.evaluation.report_html import figures, render_html

        out_path = with_suffix(self.parameterAsFileOutput(parameters, OUTPUT, context), ".html")
        if not out_path:
            raise QgsProcessingException(self.invalidParameterError(parameters, OUTPUT))
        started = time.perf_counter()
        try:
            run = relevance_run.prepare_relevance_run(self, parameters, context, feedback)
        except relevance_run.Cancelled:
            return {}
        feedback.setProgress(25)

        def progress(fraction, text=None):
            if text:
                feedback.setProgressText(text)
            feedback.setProgress(25 + 65 * fraction)

        try:
            evaluation = evaluate_layers(
                run.model, run.input, run.reference, run.sigma, run.pair.search_distance, *run.pair.same_layer_ids(),
                mc_pairs=self.parameterAsInt(parameters, MC_PAIRS, context),
                mc_samples=self.parameterAsInt(parameters, MC_SAMPLES, context),
                seed=self.parameterAsInt(parameters, SEED, context), progress=progress,
                cancelled=feedback.isCanceled)
        except ModelFileError as error:  # a model whose outputs turn out unusable on these pairs
            raise QgsProcessingException(str(error)) from None
        if evaluation is None or feedback.isCanceled():
            return {}
        metrics = evaluation.metrics
        if metrics["n_truth"] == 0:
            feedback.pushWarning("No candidate pair has truth (no pairs, or σ > 0 with MC_PAIRS = 0): the metrics "
                                 "are empty.")

        feedback.setProgressText("Writing the report")
        sigma_field = self.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
        notes = []
        images = None
        try:
            images = figures(evaluation, per_feature_sigma=bool(sigma_field))
        except ImportError:
            notes.append("The plots are missing: QGIS's Python has no matplotlib. Install it (for example "
                         "python3 -m pip install --user matplotlib, or your system's python3-matplotlib package) "
                         "and run the algorithm again.")
            feedback.pushWarning(notes[-1])
        if feedback.isCanceled():
            return {}
        info = {
            "model": self._model_info(run.model),
            "input": self._layer_text(parameters, INPUT, context, len(run.pair.input.fids)),
            "reference": self._layer_text(parameters, REFERENCE, context, len(run.pair.reference.fids)),
            "sigma": self._sigma_text(parameters, context, sigma_field, run.sigma),
            "per_feature_sigma": bool(sigma_field),
            "notes": notes,
        }
        document = render_html(evaluation, info, images, run.pair.input.keys, run.pair.reference.keys)
        self.report_title = self._title(parameters, context, run.model)
        try:
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            Path(out_path).write_text(document, encoding="utf-8")
        except OSError as error:  # a full disk, a folder without write permission
            raise QgsProcessingException(f"The evaluation report (OUTPUT) could not be written to {out_path}: "
                                         f"{error.strerror or error}. Free some space or choose another file.") from None
        self._log_metrics(feedback, metrics, time.perf_counter() - started, out_path)
        status, verdict = verdict_summary(target_verdicts(metrics, evaluation.settings))
        (feedback.pushWarning if status == "missed" else feedback.pushInfo)(verdict)
        feedback.setProgress(100)
        results = {OUTPUT: out_path, **run.pair.feature_counts()}
        for name, _, key in NUMERIC_OUTPUTS:
            value = metrics.get(key)
            results[name] = None if value is None or not np.isfinite(value) else value
        return results

    def _title(self, parameters, context, model):
        """'Evaluation of <model> on <input> × <reference>, σ …': what the report evaluated."""
        names = []
        for name in (INPUT, REFERENCE):
            source = self.parameterAsSource(parameters, name, context)
            names.append(source.sourceName() if source is not None else name.lower())
        from ..model.network import BUNDLED_MODEL

        bundled = model.path is not None and Path(str(model.path)).resolve() == BUNDLED_MODEL.resolve()
        model_name = "the bundled model" if bundled else Path(str(model.path)).name
        sigma_field = self.parameterAsString(parameters, POSITIONAL_UNCERTAINTY_FIELD, context)
        sigma = (f"σ from '{sigma_field}'" if sigma_field else
                 f"σ = {self.parameterAsDouble(parameters, POSITIONAL_UNCERTAINTY, context):g} m")
        return f"Evaluation of {model_name} on {names[0]} × {names[1]}, {sigma}"

    @staticmethod
    def _model_info(model):
        config = model.config
        training = config.get("training", {})
        parts = []
        if training.get("kind"):
            parts.append(training["kind"])
        for key, label in (("epochs", "epochs"), ("train_pairs", "synthetic training pairs"),
                           ("train_samples", "training samples")):
            if training.get(key) is not None:
                parts.append(f"{training[key]:,} {label}" if isinstance(training[key], int) else
                             f"{training[key]} {label}")
        data = training.get("data", {})
        layers = data.get("source_layers", {})
        if layers:
            parts.append("layers " + " × ".join(str(layers[side].get("name")) for side in ("input", "reference")
                                                if side in layers))
        if data.get("sigma_m") is not None:
            parts.append(f"σ = {data['sigma_m']:g} m")
        if training.get("final_val_loss") is not None:
            parts.append(f"final validation loss {training['final_val_loss']:.4f}")
        return {"path": str(model.path), "sha256": config.get("weights_sha256", ""),
                "training": ", ".join(parts) or "not recorded"}

    def _layer_text(self, parameters, name, context, n_features):
        source = self.parameterAsSource(parameters, name, context)
        label = source.sourceName() if source is not None else name
        crs = source.sourceCrs().authid() if source is not None else ""
        return f"{label} ({n_features:,} features{', ' + crs if crs else ''})"

    def _sigma_text(self, parameters, context, sigma_field, sigma):
        value = self.parameterAsDouble(parameters, POSITIONAL_UNCERTAINTY, context)
        if not sigma_field:
            return f"{value:g} m"
        low, high = (float(sigma.min()), float(sigma.max())) if len(sigma) else (value, value)
        return f"field '{sigma_field}' ({low:g}–{high:g} m; {value:g} m where empty)"

    @staticmethod
    def _log_metrics(feedback, metrics, seconds, out_path):
        def text(value, percent=False):
            if value is None:
                return "—"
            return f"{100 * value:.2f} %" if percent else f"{value:.4f}"

        feedback.pushInfo(
            f"{metrics['n_pairs']} candidate pairs, {metrics['n_truth']} with truth: MAE of the mean IoU "
            f"{text(metrics['iou_mae'])}, best-match agreement {text(metrics['best_match_agreement'], True)}, "
            f"90 % interval coverage {text(metrics['interval_coverage'])}, CRPS {text(metrics['crps'])}.")
        feedback.pushInfo(f"Report written: {out_path} ({seconds:.1f} s).")
