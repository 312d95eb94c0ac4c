"""The model card (MODEL_CARD.md) and evaluation.json, written from the results of :mod:`.measure`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..overlap_head import U_BASELINE_CLIP
from ..scoring import EXACT_SHIFTS, SIGMA_PATH
from .heldout import MODEL_DIR, PACKAGE_ROOT
from .metrics import TARGETS

ARCHITECTURE_RESULTS = MODEL_DIR / "architecture_results.md"


def target_text(key):
    _, kind, bound = TARGETS[key]
    if kind == "max":
        return f"≤ {format_value(key, bound)}"
    if kind == "min":
        return f"≥ {format_value(key, bound)}"
    return f"[{format_value(key, bound[0])}, {format_value(key, bound[1])}]"


# ==========================================================================
# The model card.
# ==========================================================================
def display_path(path):
    try:
        return str(Path(path).resolve().relative_to(PACKAGE_ROOT))
    except ValueError:
        return str(path)


def format_value(key, value):
    if value is None:
        return "—"
    if key in ("matching_agreement", "buildings_agreement", "admin_agreement"):
        return f"{100 * value:.2f} %"
    if key in ("interval_coverage", "pit_coverage"):
        return f"{value:.3f}"
    if key == "centroid_median_pct":
        return f"{value:.3f} %"
    if key == "seed_spread":
        return f"{100 * value:.1f} %"
    if key == "seed_nan_runs":
        return f"{int(value)}"
    return f"{value:.4f}"


def _cell(value, digits=4):
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def _markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _architecture_choice():
    if ARCHITECTURE_RESULTS.is_file():
        return ARCHITECTURE_RESULTS.read_text(encoding="utf-8").strip()
    return "Not measured yet (`model/architecture_results.md` does not exist)."


def _labels_text(training):
    labels = int(training.get("labels_per_pair", 1))
    if labels == 1:
        return "labels after one displacement d ~ N(0, σ²I₂) of B"
    return (f"{labels} labels per pair, after {labels} independent displacements d ~ N(0, σ²I₂) of B (the "
            "generator's and more from their own random stream), so the loss sees each pair's distribution")


def _overlap_head_text(net):
    """The overlap head of the model file's network, in words (``network.overlap_head``; absent: the 2-D head)."""
    residual = ", ".join(net.get("residual_means", []))
    if net.get("overlap_head", "cover_2d") == "unit_atoms":
        return (f"the distribution of u = |A∩B| / min(|A|, |B|) with atoms at 0 and 1 as masses of their own and a "
                f"{net.get('overlap_components')}-component 1-D Gaussian mixture over logit(u) between them "
                f"(`overlap_head.UnitMixture`), whose component means are offsets from logit(max({residual})) "
                f"(clipped to [{U_BASELINE_CLIP:g}, {1 - U_BASELINE_CLIP:g}]), trained on the mixed negative log-likelihood (the atom's log mass for a "
                f"label at 0 or 1, the log density of u otherwise)")
    return (f"a {net.get('overlap_components')}-component 2D Gaussian mixture over (cover_a, cover_b) whose "
            f"component means are offsets from the descriptors {residual}")


def _overlap_nll_note(net):
    if net.get("overlap_head", "cover_2d") == "unit_atoms":
        return "mixed likelihood of u (atoms at 0 and 1, density of u between)"
    return "density over (cover_a, cover_b)"


def sigma_path_section():
    """What the plugin runs at σ > 0, from the scoring module's settings (so the card follows the code)."""
    if SIGMA_PATH != "exact":
        return ("\n**What the plugin runs at σ > 0:** this network's overlap and centroid mixtures "
                f"(`scoring.SIGMA_PATH = \"{SIGMA_PATH}\"`).\n")
    return (
        "\n**What the plugin runs at σ > 0** (`scoring.SIGMA_PATH = \"exact\"`): the overlap distribution is not "
        f"this network's. It is the exact overlap of the pair at {EXACT_SHIFTS} fixed scrambled Sobol' shifts "
        "d = σ·z (`shift_overlap.overlap_at_shifts`, no GEOS), held as a distribution of u = |A∩B| / min(|A|, |B|) "
        "with its atoms at 0 and 1 (`overlap_head.UnitMixture`), from which the IoU and both covers follow "
        "exactly. On the held-out yardstick the exact kernel reaches the network's own accuracy at less cost than the "
        "network on every measure (the ablation table in the yardstick section: issue 29), so it replaced the "
        "network there. The intersection centroid at σ > 0 is not this network's "
        "either: the same kernel gives the first moments ∫x, ∫y of A∩(B+d) at the same shifts "
        "(`shift_overlap.centroids_at_shifts`), and the centroid's distribution, given an overlap, is one "
        "Gaussian with the mean and covariance of the exact centroids at the shifts that overlap, the covariance "
        "widened by σ²/m for m such shifts (`scoring.centroid_from_shifts`); where no shift overlaps it sits on "
        "the middle of the shortest line between the two, with SD σ. So a pair at σ > 0 needs neither the "
        "descriptors (with the boundary sweep) nor the network, and its geometries are never simplified: the "
        "kernel measures the full-detail outlines, as σ = 0 does. The network gives the centroid at σ = 0 "
        "(centred on the exact intersection centroid), where the overlap itself is exact; `OverlapModel.load(path, "
        "sigma_path=\"network\")` gives the network's overlap and centroid at σ > 0 again. The σ > 0 likelihood, "
        "calibration and coverage rows below measure the network's heads.\n")


def render_card(results, yardstick_json=None):
    """The model card (Markdown) for a results dict of :func:`evaluate`.

    The yardstick section comes from ``results["yardstick"]``, else from ``yardstick_json``
    (default ``model/yardstick.json``) when that file exists.
    """
    from ..datasets.synthetic import RECIPE

    m = results["model"]
    net, training = m["network"], m["training"]
    data, s0, sp, unc = results["data"], results["sigma0"], results["sigma_positive"], results["uncertainty"]
    cen, match, timing = results["centroid"], results["matching"], results["timing"]
    settings = results["settings"]
    recipe_note = ""
    if training.get("recipe_hash") and training["recipe_hash"] != data["recipe_hash"]:
        recipe_note = (f"\n\n**Warning:** the model was trained on recipe `{training['recipe_hash'][:12]}`, "
                       f"the held-out set is drawn from recipe `{data['recipe_hash'][:12]}`.")
    kinds = ", ".join(f"{name} {100 * share:.0f} %" for name, share in RECIPE["kind_shares"].items())
    sizes = ", ".join(f"{cls} {lo:g}–{hi:g} m" for cls, (lo, hi) in RECIPE["size_m"].items())
    sigma = RECIPE["sigma"]
    out = []
    out.append("# Model card: overlap_relevance overlap model\n")
    out.append(f"Generated by `make evaluate` (`python -m overlap_relevance.model.evaluation`) for "
               f"`{display_path(m['path'])}` (weights SHA-256 `{(m['weights_sha256'] or '')[:16]}…`). "
               f"Do not edit by hand: rerun `make evaluate`.\n")

    out.append("## Model summary\n")
    out.append(
        "For a pair of polygons (A, B) and a positional uncertainty σ, the model predicts the joint distribution "
        "of the two coverage fractions (cover_a = |A∩B|/|A|, cover_b = |A∩B|/|B|) as a Gaussian mixture, from "
        "which the IoU distribution follows (IoU = ca·cb / (ca + cb − ca·cb)), and the distribution of the "
        "intersection centroid (a second Gaussian mixture, in the pair's local frame, metres).\n\n"
        "**σ** is the standard deviation, per axis and in metres, of a rigid translation of B relative to A: "
        "d ~ N(0, σ²I₂). σ = 0 means the positions are taken as exact; the distributions are then those of the "
        "overlap of the (simplified) model geometries, sharpened around the exact values.\n")
    out.append(sigma_path_section())

    out.append("## Intended use and limitations\n")
    out.append(
        "* Intended use: ranking and thresholding candidate matches between two polygon layers (building "
        "footprints, parcels, administrative units) in QGIS or Python, with an honest spread when the sources "
        "are only known to within σ metres.\n"
        "* Only a **rigid translation** is modelled. Rotation, scale errors and independent vertex noise of the "
        "sources are not part of σ (they are part of the training shapes, as differences between the sources).\n"
        f"* Training covered σ = 0 and σ log-uniform in [{sigma['log_uniform_m'][0]:g}, {sigma['log_uniform_m'][1]:g}] m "
        f"and feature sizes ({sizes}); outside these ranges the model extrapolates.\n"
        f"* Geometries with more than {m['encoding'].get('max_model_vertices', '?')} vertices are simplified before "
        "the network sees them; at σ = 0 the prediction is the overlap of the simplified shapes plus a learned "
        "correction, so very detailed shapes can be off by the simplification error.\n"
        "* Trained on synthetic pairs only; the real-layer checks below are the evidence for transfer. When "
        "exact numbers matter at σ = 0, use the exact overlap algorithm instead.\n")

    out.append("## Training data\n")
    out.append(
        f"Synthetic pairs from `model/training/synthetic.py`, recipe version {RECIPE['version']}, recipe hash "
        f"`{training.get('recipe_hash', '?')}`. Pair kinds: {kinds}. σ = 0 for "
        f"{100 * sigma['zero_share']:.0f} % of pairs, otherwise log-uniform in "
        f"[{sigma['log_uniform_m'][0]:g}, {sigma['log_uniform_m'][1]:g}] m; {_labels_text(training)}. Sizes (longer side): {sizes}. Each side is delivered in its own CRS and brought "
        f"back through the plugin's frame code.\n\n"
        f"Training set: {training.get('train_pairs', '?'):,} pairs (seed {training.get('train_seed', '?')}); "
        f"validation: {training.get('validation_pairs', '?'):,} pairs (seed {training.get('validation_seed', '?')}); "
        f"held-out evaluation: {data['pairs']:,} pairs (seed {data['seed']}), recipe `{data['recipe_hash'][:12]}`."
        f"{recipe_note}\n")

    out.append("## Architecture\n")
    inputs = net.get("inputs", [])
    out.append(
        f"{len(inputs)} pair descriptors (overlap of the model geometries at zero displacement, areas and shape "
        f"measures relative to the pair scale, σ relative to the pair scale and the features, gap and boundary "
        f"rates; where the network reads them, the summary of the boundary-sweep surrogate of the overlap under "
        f"displacement, `model/sweep.py`; see `model/encoding.py`) → standardisation → MLP with hidden layers "
        f"{' × '.join(str(h) for h in net.get('hidden', []))} ({net.get('activation')}) → two mixture-density "
        f"heads: overlap, {_overlap_head_text(net)}; "
        f"centroid, a {net.get('centroid_components')}-component 2D Gaussian mixture in units of the pair scale "
        f"around a reference point. {m['parameters']:,} parameters. Inference is NumPy only "
        f"(`model/network.py`).\n\nDescriptors: `{'`, `'.join(inputs)}`.\n")

    out.append("## Architecture choice\n")
    out.append("<!-- Filled from model/architecture_results.md by make evaluate. -->\n")
    out.append(_architecture_choice() + "\n")

    out.append("## Training\n")
    final = m["final_history"]
    out.append(_markdown_table(["Item", "Value"], [
        ["Epochs × batch size", f"{training.get('epochs', '?')} × {training.get('batch_size', '?')}"],
        ["Displacement labels per pair (loss: their mean NLL)", training.get("labels_per_pair", 1)],
        ["Learning rate (cosine decay)", training.get("learning_rate", "?")],
        ["Data generation", f"{training.get('data_seconds', '?')} s"],
        ["Training (fit)", f"{training.get('fit_seconds', '?')} s"],
        ["Machine", training.get("machine", "?")],
        ["Final training loss", _cell(final.get("loss"))],
        ["Final validation loss (overlap + centroid NLL)", _cell(final.get("val_loss"))],
        ["Final validation overlap NLL", _cell(final.get("val_overlap_loss"))],
        ["Final validation centroid NLL", _cell(final.get("val_centroid_loss"))],
    ]) + "\n")

    out.append("## Metrics against targets\n")
    out.append(f"Held-out synthetic set: {data['pairs']:,} pairs, seed {data['seed']} ({data['sigma0']:,} with σ = 0). "
               "Targets were fixed before measuring; nothing was tuned on this set.\n")
    out.append(_markdown_table(["Metric", "Measured", "Target", "Status"], [
        [row["metric"], format_value(row["key"], row["value"]), row["target"], row["status"]]
        for row in results["targets"]]) + "\n")

    out.append("Reading the σ = 0 rows: the descriptors already hold the exact overlap of the model geometries "
               "(`cover_a0`, `cover_b0`, `iou0`) and the overlap head predicts offsets from it, and the centroid head "
               "is centred on the model geometries' overlap centroid; so at σ = 0 these rows mainly check that this "
               "path is intact and what simplifying shapes with many vertices costs. The learned part is the "
               "σ > 0 distribution, checked against Monte-Carlo truth.\n")
    out.append("### Further measurements\n")
    seeds = results.get("seeds")
    extra = [
        ["σ = 0: MAE of mean cover_a / cover_b", f"{s0['cover_a_mae']:.4f} / {s0['cover_b_mae']:.4f}",
         f"{s0['n']:,} pairs"],
        ["σ = 0: largest IoU error", f"{s0['iou_max_error']:.4f}", ""],
        ["σ > 0: NLL of the overlap mixture at the labels, mean / median",
         f"{sp['nll_mean']:.3f} / {sp['nll_median']:.3f} nats", f"{sp['n']:,} pairs; {_overlap_nll_note(net)}"],
        ["σ = 0: NLL at the labels, mean / median",
         f"{sp['nll_sigma0_mean']:.3f} / {_cell(sp.get('nll_sigma0_median'), 3)} nats",
         "a point mass at the model geometries' exact overlap; a label off it by 1e-10 has a huge NLL"],
        ["σ > 0: NLL averaged over the Monte-Carlo samples", f"{unc['nll_mc']:.3f} nats", f"{unc['n']:,} pairs"],
        ["σ > 0: MAE of mean IoU vs Monte-Carlo mean", f"{unc['iou_mae_vs_mc_mean']:.4f}", ""],
        ["σ > 0: MAE of mean IoU vs the one-displacement label", f"{sp['iou_mae_vs_label']:.4f}",
         "includes the label's own randomness"],
        ["σ > 0: 90 % interval coverage, pairs whose MC IoU varies",
         _cell(unc["interval_coverage_nondegenerate"], 3), f"{unc['n_nondegenerate']:,} of {unc['n']:,} pairs"],
        ["σ > 0: PIT coverage, pairs whose MC IoU varies", _cell(unc["pit_coverage_nondegenerate"], 3), ""],
        ["σ > 0: CRPS of the IoU distribution, model / oracle",
         f"{unc['crps_model']:.4f} / {unc['crps_oracle']:.4f}",
         "oracle: split-half CRPS of the Monte-Carlo sample against itself"],
        ["σ > 0: CRPS of a point forecast at the undisplaced IoU", f"{unc['crps_static']:.4f}",
         "baseline that ignores σ"],
        ["σ = 0: centroid error via the mixture mean, median / p90",
         f"{cen['mean_median_pct']:.3f} % / {cen['mean_p90_pct']:.3f} %", f"{cen['n']:,} overlapping pairs"],
        ["σ = 0: centroid error via the mixture mode, median / p90",
         f"{cen['mode_median_pct']:.3f} % / {cen['mode_p90_pct']:.3f} %", ""],
        ["Matching set: MAE of mean IoU over all candidates", f"{match['iou_mae']:.4f}",
         f"{match['used']:,} groups used of {match['groups']:,}"],
        ["Matching set: mean exact-IoU regret of the predicted best", f"{match['mean_regret']:.5f}", ""],
    ]
    out.append(_markdown_table(["Measurement", "Value", "Note"], extra) + "\n")
    out.append(f"PIT histogram (10 bins, all Monte-Carlo samples; flat when calibrated): "
               f"{', '.join(str(c) for c in unc['pit_histogram'])}.\n")

    out.append("### Throughput\n")
    out.append(f"`OverlapModel.predict_frames` on the {timing['pairs']:,} held-out pairs (descriptors, model "
               f"geometry simplification and the network): {timing['predict_frames_pairs_per_s']:,.0f} pairs/s "
               f"({timing['predict_frames_seconds']} s); with `summarise_overlap` (IoU mean/SD by QMC): "
               f"{timing['predict_and_summarise_pairs_per_s']:,.0f} pairs/s. Machine: {timing['machine']} "
               f"(single process; the machine may have been shared with other jobs).\n")

    out.append(_render_yardstick(results.get("yardstick"), yardstick_json))
    out.append(_render_tables(results["tables"]))
    out.append(_render_matching(match, settings))
    out.append(render_match_features_reliability())
    out.append(render_source_matching())
    out.append(_render_real(results.get("real_layers", {})))
    out.append(_render_seeds(seeds))

    out.append("## How the metrics are computed\n")
    out.append(
        f"* Held-out set: `generate_pairs({settings['pairs']}, seed={settings['held_out_seed']})` (training seed 1, "
        "validation seed 2). Predicted mean IoU and coverages are `summarise_overlap` of the overlap mixture "
        "(256 scrambled-Halton points).\n"
        f"* Monte-Carlo truth: {settings['mc_pairs']:,} pairs with σ > 0 drawn with a seeded generator, "
        f"{settings['mc_samples']} displacements each (`monte_carlo_overlap`). The model's IoU distribution is "
        f"represented by {settings['model_samples']} quasi-random points of the mixture mapped to IoU. Interval "
        "coverage: share of Monte-Carlo IoU samples inside the model's closed [5 %, 95 %] quantile interval, "
        "averaged over pairs (an atom, e.g. IoU = 0 for every displacement, predicted as an atom counts as "
        "covered). PIT coverage: share of randomised PIT values (u = F(y−) + V·(F(y) − F(y−))) in [0.05, 0.95]. "
        "CRPS: exact CRPS of the empirical model distribution averaged over the Monte-Carlo samples; oracle: the "
        "two halves of the Monte-Carlo sample scoring each other.\n"
        "* Centroid error: distance between the centroid mixture's mean (target) or mode and the exact "
        "intersection centroid, divided by the pair scale (larger side of the bounding box of A ∪ B), for σ = 0 "
        "pairs whose intersection has area.\n"
        "* Best match: per input feature, the candidate with the highest predicted mean IoU against the one with "
        f"the highest exact IoU; inputs whose exact best IoU is 0, or whose two best exact IoUs tie within "
        f"{settings['tie_tolerance']:g}, are left out.\n"
        "* Seeds: short trainings of the evaluated architecture on the first pairs of the training data, seeds "
        "11–15; spread = (max − min) / |mean| of the final validation loss (overlap + centroid NLL).\n")

    out.append("## Reproduction\n")
    out.append("```sh\nmake train      # writes model/overlap_mdn.npz and model/overlap_mdn.keras (seeded)\n"
               "make evaluate   # writes model/MODEL_CARD.md and model/evaluation.json\n```\n\n"
               f"Options: `python -m overlap_relevance.model.evaluation --help` (e.g. `--seeds 0` skips the "
               f"convergence runs, `--model PATH` evaluates another model file). Evaluation runtime: "
               f"{results['runtime_seconds']:.0f} s.\n")
    return "\n".join(out)


_TABLE_COLUMNS = [
    ("n", "pairs", 0), ("iou_mae_sigma0", "IoU MAE σ=0", 4), ("cover_mae_sigma0", "cover MAE σ=0", 4),
    ("median_centroid_pct", "centroid median % σ=0", 3), ("iou_mae_sigma_pos_vs_label", "IoU MAE σ>0 (label)", 4),
    ("nll_sigma_pos", "NLL σ>0", 2), ("count_mc", "MC pairs", 0), ("mc_iou_mae_vs_mean", "IoU MAE vs MC mean", 4),
    ("mc_coverage", "90 % coverage", 3), ("mc_pit_coverage", "PIT coverage", 3),
    ("mc_crps_model", "CRPS model", 4), ("mc_crps_oracle", "CRPS oracle", 4),
]


def _render_tables(tables):
    titles = {"kind": "By pair kind", "sigma": "By σ bucket", "vertices": "By vertex count (A + B)"}
    out = ["## Error tables\n", "MAE against the exact labels; the MC columns use the Monte-Carlo subset.\n"]
    for key, title in titles.items():
        rows = [[row["group"]] + [_cell(row[name], digits) if name not in ("n", "count_mc") else _cell(row[name])
                                  for name, _, digits in _TABLE_COLUMNS] for row in tables[key]]
        out.append(f"### {title}\n")
        out.append(_markdown_table(["group"] + [label for _, label, _ in _TABLE_COLUMNS], rows) + "\n")
    return "\n".join(out)


def _render_yardstick(results, path=None):
    from .yardstick import JSON_PATH, load_results, render_section

    results = results or load_results(path or JSON_PATH)
    if not results:
        return ("## Yardstick: the model against exact sampling at equal cost\n\n"
                "Not measured yet (`python -m overlap_relevance.model.evaluation.yardstick`).\n")
    measured = results.get("settings", {}).get("sigma_path", "network")
    note = ("" if measured == SIGMA_PATH else
            f"\n**Measured with the {measured} σ > 0 path**, not the one the plugin runs now ({SIGMA_PATH}): the "
            "`model` row below is the network's overlap until `make evaluate` (or the yardstick) is run again.\n")
    return render_section(results, "##", "../docs/yardstick.png") + note


MATCHING_RESULTS = MODEL_DIR / "matching_results.md"


def render_match_features_reliability(path=MATCHING_RESULTS):
    """The card's section on matchfeatures' probabilities: the held-out reliability table of
    model/matching_results.md (written by ``python -m overlap_relevance.model.evaluation.tune_matching``)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    start = text.find("## Reliability on the test seed")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    body = text[start:end if end >= 0 else None].split("\n", 1)[1].strip()
    return ("## Match decisions (`matchfeatures`): reliability of `m_p`\n\n"
            "From `model/matching_results.md` (known-truth edits, calibration fitted on tuning seed 101, measured "
            "on test seed 202; group and class accuracy, change labels and the thresholds' choice are there too).\n\n"
            + body + "\n")


SOURCE_MATCHING_RESULTS = MODEL_DIR / "source_matching_results.md"


def render_source_matching(path=SOURCE_MATCHING_RESULTS):
    """The card's section on matchfeatures' decisions between two sources that really differ: accuracy per
    class and per σ band, m:n groups found, change labels and the reliability of ``m_p`` and ``m_change_p``
    per σ band on the held-out seed, from model/source_matching_results.md (written by ``python -m
    overlap_relevance.model.evaluation.source_matching report``; not rerun here)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    start = text.find("\n## ")
    if start < 0:
        return ""
    intro = text[:start].split("\n", 1)[1].strip()
    body = "\n".join("#" + line if line.startswith("##") else line for line in text[start:].strip().splitlines())
    return ("## Match decisions between two sources (`matchfeatures`): per class and per σ band\n\n"
            "From `model/source_matching_results.md`. " + intro + "\n\n" + body + "\n")


def _render_matching(match, settings):
    roles = ", ".join(f"{name} {count:,}" for name, count in match["exact_best_roles"].items())
    wrong = ", ".join(f"{name} {count:,}" for name, count in match["mismatch_predicted_roles"].items() if count)
    return (
        "## Synthetic matching set\n\n"
        f"{match['groups']:,} groups of {match['candidates_per_group']} candidates, built from held-out "
        "`same_object` pairs (`evaluate.matching_set`): the true counterpart B, B shifted by 5–50 % of A's size, "
        "a touching or near neighbour, a partial overlap, a shape inside A or around it, and a disjoint shape "
        "(donor shapes of similar size from other held-out pairs, rotated and rescaled). "
        f"{match['used']:,} groups used ({match['excluded_zero']:,} with exact best IoU 0 and "
        f"{match['excluded_tie']:,} ties left out); agreement {100 * match['agreement']:.2f} % "
        f"({match['mismatches']:,} mismatches); on the {match['close_calls']:,} close calls (two best exact IoUs "
        f"within {match['close_margin']:g}): {_percent(match['close_call_agreement'])}. Exact best by role: {roles}. "
        f"Predicted best in mismatches: {wrong or 'none'}.\n"
    )


def _percent(value):
    return "—" if value is None else f"{100 * value:.2f} %"


def _render_real(real):
    out = ["## Real layers\n",
           ("Layers the training recipe never saw, through the plugin's path (`layer_to_lonlat` → "
            "`iter_pair_chunks` → `predict_frames` + `summarise_overlap`, exact from `exact_overlap` on the same "
            "frames), σ = 0. Best match = candidate with the highest IoU per input feature; inputs whose exact best "
            "IoU is 0 (or tied) are left out.\n")]
    rows = []
    for result in real.values():
        if "skipped" in result:
            rows.append([result["label"], "skipped", result["skipped"], "", "", "", "", "", ""])
            continue
        rows.append([result["label"], result["input"], result["reference"], f"{result['search_distance_m']:g} m",
                     f"{result['candidate_pairs']:,}", f"{result['used']:,} of {result['inputs']:,}",
                     f"{100 * result['agreement']:.2f} % ({result['mismatches']} wrong)",
                     (f"{_percent(result['close_call_agreement'])} of {result['close_calls']:,}"
                      if result["close_calls"] else "none"),
                     f"{result['iou_mae']:.4f}"])
    if not rows:
        return "\n".join(out + ["Not run.\n"])
    out.append(_markdown_table(["Layers", "Input", "Reference", "Search distance", "Candidate pairs",
                                "Inputs used", "Agreement", "Close calls", "IoU MAE"], rows) + "\n")
    for result in real.values():
        if result.get("examples_of_mismatch"):
            out.append(f"Mismatches ({result['label']}, first {len(result['examples_of_mismatch'])}):\n")
            out.append(_markdown_table(
                ["Input", "Exact best (IoU, predicted)", "Predicted best (predicted, exact IoU)"],
                [[e["input"], f"{e['exact_best']} ({e['exact_best_iou']:.3g}, {e['exact_best_predicted_iou']:.3g})",
                  f"{e['predicted_best']} ({e['predicted_best_iou']:.3g}, {e['predicted_best_exact_iou']:.3g})"]
                 for e in result["examples_of_mismatch"]]) + "\n")
    return "\n".join(out)


def _render_seeds(seeds):
    out = ["## Convergence across training seeds\n"]
    if not seeds:
        out.append("Not run (`--seeds 0`).\n")
        return "\n".join(out)
    out.append(f"Training data: {seeds['train']}; validation: {seeds['validation']}; {seeds['epochs']} epochs each, "
               f"architecture and optimiser settings of the evaluated model.\n")
    out.append(_markdown_table(["Seed", "Final val. loss", "Overlap NLL", "Centroid NLL", "NaN", "Seconds"], [
        [r["seed"], _cell(r["final_val_loss"]), _cell(r["final_val_overlap_loss"]), _cell(r["final_val_centroid_loss"]),
         "yes" if r["nan"] else "no", r["seconds"]] for r in seeds["runs"]]) + "\n")
    spread = "—" if seeds["spread"] is None else f"{100 * seeds['spread']:.1f} %"
    spread_overlap = "—" if seeds["spread_overlap"] is None else f"{100 * seeds['spread_overlap']:.1f} %"
    out.append(f"Spread (max − min) / |mean| of the final validation loss: {spread} (range {_cell(seeds['range'])} "
               f"nats); of the overlap NLL alone: {spread_overlap}.\n")
    return "\n".join(out)


# ==========================================================================
# Entry point.
# ==========================================================================
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_outputs(results, card_path, json_path, yardstick_json=None):
    """Write the model card and the JSON results."""
    card_path, json_path = Path(card_path), Path(json_path)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=_json_default, allow_nan=True) + "\n",
                         encoding="utf-8")
    card_path.write_text(render_card(results, yardstick_json), encoding="utf-8")
