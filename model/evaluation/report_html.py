"""The evaluation report's figures and HTML page (:func:`render_html`), from a :class:`.report.LayerEvaluation`.

The numbers are measured in :mod:`.report` (:func:`.report.evaluate_layers`, :func:`.report.metrics`, the
verdicts of the model card's targets); this module only draws and writes them. matplotlib draws with the Agg
canvas (no GUI, no pyplot state, safe off the main thread); never QGIS or TensorFlow.
"""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass

import numpy as np

from .metrics import INTERVAL_LEVEL, TARGETS
from .report import (
    CALIBRATION_LEVELS,
    SCATTER_POINTS,
    SIGMA0_EXPLANATION,
    _stream,
    grouped_table,
    missing_truth_reason,
    sigma_groups,
    sigma_zero_only,
    target_verdicts,
    verdict_summary,
    vertex_groups,
)


# ==========================================================================
# Figures (matplotlib's Agg canvas: no GUI, no pyplot, safe off the main thread).
# ==========================================================================
TITLE_SCATTER = "Predicted vs true IoU"
TITLE_CALIBRATION = "Calibration"
TITLE_COVERAGE = "Interval coverage by σ"
TITLE_COMPLEXITY = "Error by geometry complexity"


def _figure(width=6.4, height=4.4):
    import warnings

    with warnings.catch_warnings():  # a Debian matplotlib beside a pip one warns about its 3D axes, unused here
        warnings.filterwarnings("ignore", message="Unable to import Axes3D")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _plain_ticks(figure):
    """No hidden offset (“+1e3”) or multiplier (“1e−7”) in an axis corner: every number is in its tick label."""
    from matplotlib.ticker import ScalarFormatter

    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                formatter.set_useOffset(False)
                formatter.set_scientific(False)
    return figure


def _png(figure):
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(axes, text="No pairs with truth"):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def figure_predicted_vs_truth(evaluation, seed=0):
    p = evaluation.pairs
    rows = np.flatnonzero(p["has_truth"])
    if len(rows) > SCATTER_POINTS:
        rows = np.sort(_stream(seed, "scatter").choice(rows, SCATTER_POINTS, replace=False))
    figure = _figure(6.4, 5.6)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.6", lw=1, zorder=1)
    for mask, label, colour in ((~p["monte_carlo"][rows], "σ = 0: exact IoU", "tab:blue"),
                                (p["monte_carlo"][rows], "σ > 0: Monte-Carlo mean IoU", "tab:orange")):
        sel = rows[mask]
        if not len(sel):
            continue
        mean = p["iou_mean"][sel]
        error = np.vstack([np.maximum(mean - p["q_low"][sel], 0), np.maximum(p["q_high"][sel] - mean, 0)])
        axes.errorbar(p["truth_iou"][sel], mean, yerr=error, fmt="o", ms=3, lw=0.6, alpha=0.6, color=colour,
                      ecolor=colour, label=f"{label} ({len(sel)})", zorder=2)
    if not len(rows):
        _no_data(axes)
    axes.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="true IoU", ylabel="predicted mean IoU",
             title="Predicted vs true IoU (bars: central 90 % interval, 5–95 %)")
    axes.set_aspect("equal")
    if len(rows):
        axes.legend(loc="upper left", fontsize=8)
    return _plain_ticks(figure)


def calibration_curve(evaluation, levels=CALIBRATION_LEVELS):
    """Observed share of the Monte-Carlo truth (σ > 0) inside the model's central interval of each nominal level
    (pairs weighted equally, each by the share of its samples), from the randomised PIT. σ = 0 pairs are left
    out: there the model reads the exact overlap, and their PIT says nothing about the uncertainty."""
    if not evaluation.mc_pit.size:
        return levels, np.full(len(levels), np.nan)
    distance = np.abs(evaluation.mc_pit - 0.5)  # (k, m)
    observed = np.mean(distance[None, :, :] <= np.asarray(levels)[:, None, None] / 2, axis=2).mean(axis=1)
    return levels, observed


def pit_histogram(evaluation, bins=10):
    """Density of the randomised PIT values of the Monte-Carlo truth (σ > 0; each pair weighs 1), ``bins``
    equal bins on [0, 1]."""
    pit = evaluation.mc_pit
    if not pit.size:
        return np.zeros(bins), np.linspace(0.0, 1.0, bins + 1)
    counts, edges = np.histogram(pit.ravel(), bins=bins, range=(0.0, 1.0))
    return counts / counts.sum() * bins, edges


def figure_calibration(evaluation):
    figure = _figure(10.0, 4.2)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    levels, observed = calibration_curve(evaluation)
    left.plot([0, 1], [0, 1], color="0.6", lw=1)
    if np.isfinite(observed).any():
        left.plot(levels, observed, "o-", color="tab:blue")
    else:
        _no_data(left, "No Monte-Carlo truth")
    left.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="nominal level of the central interval",
             ylabel="share of the truth inside it", title="Calibration curve (σ > 0)")
    density, edges = pit_histogram(evaluation)
    if density.sum() > 0:
        right.bar(edges[:-1], density, width=np.diff(edges), align="edge", color="tab:blue", edgecolor="white")
    else:
        _no_data(right, "No Monte-Carlo truth")
    right.axhline(1.0, color="0.3", lw=1, ls="--")
    right.set(xlim=(0, 1), xlabel="randomised PIT", ylabel="density",
              title="PIT histogram, σ > 0 (flat when calibrated)")
    return _plain_ticks(figure)


def _bars(axes, labels, values, counts, ylabel, title, colour="tab:blue"):
    x = np.arange(len(labels))
    heights = [np.nan if v is None else v for v in values]
    axes.bar(x, np.nan_to_num(heights), width=0.6, color=colour)
    axes.set_xlim(-0.75 if len(x) > 1 else -1.5, len(x) - 0.25 if len(x) > 1 else 1.5)
    for xi, height, count in zip(x, heights, counts):
        text = f"n={count}" if np.isfinite(height) else "n=0"
        axes.annotate(text, (xi, np.nan_to_num(height)), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 2), textcoords="offset points")
    axes.set_xticks(x)
    axes.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    axes.set(ylabel=ylabel, title=title)


def figure_coverage_by_sigma(evaluation, per_feature):
    codes, labels = sigma_groups(evaluation, per_feature)
    table = grouped_table(evaluation, codes, labels)
    figure = _figure(6.4, 4.4)
    axes = figure.add_subplot()
    low, high = TARGETS["interval_coverage"][2]
    axes.axhspan(low, high, color="tab:green", alpha=0.15, label=f"model card target {low:g}–{high:g}")
    axes.axhline(INTERVAL_LEVEL, color="tab:green", lw=1)
    _bars(axes, [r["group"] for r in table], [r["coverage"] for r in table], [r["n"] for r in table],
          "share of the truth inside the interval", "Coverage of the central 90 % interval by σ")
    axes.set_ylim(0, 1.08)
    axes.legend(loc="lower right", fontsize=8)
    return _plain_ticks(figure)


def figure_error_by_complexity(evaluation):
    codes, labels = vertex_groups(evaluation)
    table = grouped_table(evaluation, codes, labels)
    figure = _figure(6.4, 4.4)
    axes = figure.add_subplot()
    _bars(axes, [r["group"] for r in table], [r["iou_mae"] for r in table], [r["n"] for r in table],
          "MAE of the mean IoU", "Error by geometry complexity (vertices of A + B)", colour="tab:purple")
    return _plain_ticks(figure)


def omitted_plots(evaluation):
    """[(title, reason)] of the plots the report leaves out: those of the uncertainty, without Monte-Carlo truth
    (at σ = 0 they collapse to a spike; with no truth at σ > 0 they are empty)."""
    m = evaluation.metrics
    if m["n_monte_carlo"]:
        return []
    reason = missing_truth_reason("monte_carlo", m, evaluation.settings)
    return [(TITLE_CALIBRATION, reason), (TITLE_COVERAGE, reason)]


def figures(evaluation, per_feature_sigma=False):
    """[(title, caption, base64 PNG)] of the report's plots, less :func:`omitted_plots`."""
    left_out = {title for title, _ in omitted_plots(evaluation)}
    which = "Pairs with Monte-Carlo truth (σ > 0)"
    if evaluation.metrics["n_exact"]:
        which += "; the σ = 0 pairs are left out (there the model reads the exact overlap)"
    which += ". "
    made = [
        (TITLE_SCATTER,
         ("Each point is a candidate pair with truth: the predicted mean IoU against the exact IoU (σ = 0) or "
          "the Monte-Carlo mean IoU (σ > 0); bars span the model's central 90 % interval (5 %–95 % quantiles)."),
         lambda: figure_predicted_vs_truth(evaluation, evaluation.settings.get("seed", 0))),
        (TITLE_CALIBRATION,
         which + "Left: for each nominal level, the share of the truth inside the model's central interval of that level "
         "(on the diagonal when calibrated). Right: histogram of the randomised probability integral transform "
         "of the truth under the predicted distribution (flat when calibrated; a hump means too wide, a U too "
         "narrow).",
         lambda: figure_calibration(evaluation)),
        (TITLE_COVERAGE,
         "Share of the truth inside the central 90 % interval, per positional-uncertainty bucket "
         + ("(per-feature σ field)." if per_feature_sigma else "(one σ for all features)."),
         lambda: figure_coverage_by_sigma(evaluation, per_feature_sigma)),
        (TITLE_COMPLEXITY,
         ("Mean absolute error of the predicted mean IoU per bucket of vertex count (input plus reference "
          "feature, full detail)."),
         lambda: figure_error_by_complexity(evaluation)),
    ]
    return [(title, caption, _png(make())) for title, caption, make in made if title not in left_out]


# ==========================================================================
# HTML.
# ==========================================================================
@dataclass(frozen=True)
class Cell:
    """A table cell with a CSS class."""

    text: str
    css: str = ""


def _fmt(value, digits=4, percent=False):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if percent:
        return f"{100 * value:.2f} %"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def status_cell(status, reason=None):
    """The status cell: class ``status met`` / ``status missed`` / ``status not-measured`` / ``status no-target``."""
    return Cell(f"{status}: {reason}" if reason else status, "status " + status.replace(" ", "-"))


def metric_rows(m, settings=None):
    """(metric, value, pairs, model card target, status :class:`Cell`) rows of the metrics table.

    The rows of a :data:`LAYER_TARGETS` target show the value it is judged on and its status; a row whose
    truth is missing is 'not measured' with the reason; the others have no target.
    """
    settings = settings or {}
    verdicts = {v["key"]: v for v in target_verdicts(m, settings)}
    bm = m["best_match"] or {}
    rows = []

    def add(label, value, pairs, target="", needs="any", present=None):
        present = value != "—" if present is None else present
        reason = None if present else missing_truth_reason(needs, m, settings)
        rows.append((label, value, pairs, target,
                     status_cell("not measured", reason) if reason else status_cell("no target")))

    def judged(key, label, value, pairs, target_note=""):
        v = verdicts[key]
        rows.append((label, value, pairs, v["target"] + target_note, status_cell(v["status"], v["reason"])))

    mixed = m["n_exact"] > 0 and m["n_monte_carlo"] > 0
    add("MAE of the mean IoU vs truth (exact at σ = 0, Monte-Carlo mean at σ > 0)", _fmt(m["iou_mae"]),
        _fmt(m["n_truth"]))
    add("MAE of the mean coverage of the input feature", _fmt(m["cover_a_mae"]), _fmt(m["n_truth"]))
    add("MAE of the mean coverage of the reference feature", _fmt(m["cover_b_mae"]), _fmt(m["n_truth"]))
    judged("iou_mae_sigma0", "σ = 0: MAE of the mean IoU vs exact", _fmt(m["iou_mae_sigma0"]), _fmt(m["n_exact"]))
    add("σ > 0: MAE of the mean IoU vs Monte-Carlo mean", _fmt(m["iou_mae_monte_carlo"]), _fmt(m["n_monte_carlo"]),
        needs="monte_carlo")
    add("Largest IoU error", _fmt(m["iou_max_error"]), _fmt(m["n_truth"]))
    if m["n_monte_carlo"]:
        add("Best-match agreement, all input features with truth (best truth IoU above 0 and untied)",
            _fmt(m["best_match_agreement"], percent=True), f"{bm.get('used', 0):,} features")
    judged("matching_agreement", "σ = 0: best-match agreement (input features whose best exact IoU is above 0 and "
           "untied)", _fmt(m["best_match_agreement_sigma0"], percent=True),
           f"{m['best_match_sigma0_used']:,} features", " (synthetic groups)")
    add("Best match: mean IoU lost by the predicted best", _fmt(bm.get("mean_regret"), 5), "")
    judged("interval_coverage", "σ > 0: coverage of the central 90 % interval (Monte-Carlo truth)",
           _fmt(m["interval_coverage_monte_carlo"], 3), _fmt(m["n_monte_carlo"]))
    judged("pit_coverage", "σ > 0: PIT coverage of the central 90 % (Monte-Carlo truth)",
           _fmt(m["pit_coverage_monte_carlo"], 3), _fmt(m["n_monte_carlo"]))
    if mixed:
        add("Coverage of the central 90 % interval, all pairs with truth", _fmt(m["interval_coverage"], 3),
            _fmt(m["n_truth"]))
        add("PIT coverage of the central 90 %, all pairs with truth", _fmt(m["pit_coverage"], 3), _fmt(m["n_truth"]))
    if m["n_monte_carlo"]:
        add("Coverage of the central 90 % interval, pairs with truth that is not an atom at 0",
            _fmt(m["interval_coverage_varies"], 3), _fmt(m["n_varies"]))
    add("CRPS of the IoU distribution, all pairs with truth", _fmt(m["crps"]), _fmt(m["n_truth"]), "lower is better")
    add("σ > 0: CRPS model / oracle / point forecast at the undisplaced IoU",
        f"{_fmt(m['crps_monte_carlo'])} / {_fmt(m['crps_oracle'])} / {_fmt(m['crps_static'])}",
        _fmt(m["n_monte_carlo"]), "oracle: Monte-Carlo sample against itself", needs="monte_carlo",
        present=m["crps_monte_carlo"] is not None)
    judged("centroid_median_pct", "σ = 0: centroid error, median / p90 (% of pair scale)",
           f"{_fmt(m['centroid_median_pct'], 3)} / {_fmt(m['centroid_p90_pct'], 3)}", _fmt(m["n_centroid"]))
    return rows


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
th[scope="row"] { font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.status.met { color: #1b5e20; background: #e8f5e9; }
td.status.met::before { content: "\\2714\\00a0"; }
td.status.missed { color: #b71c1c; background: #fdecea; font-weight: bold; }
td.status.missed::before { content: "\\2718\\00a0"; }
td.status.not-measured { color: #666; font-style: italic; }
td.status.no-target { color: #999; }
.verdict { border: 2px solid #999; border-radius: 4px; padding: 0.5em 1em; margin: 1em 0 1.5em; background: #f4f4f4; }
.verdict.met { border-color: #2e7d32; background: #e8f5e9; }
.verdict.missed { border-color: #c62828; background: #fdecea; }
.verdict .summary { font-size: 1.1em; font-weight: bold; }
.verdict .fine { color: #555; font-size: 0.9em; }
.sigma0 { border-left: 4px solid #1565c0; background: #e8f0fb; padding: 0.5em 1em; }
.omitted { color: #555; font-style: italic; }
figure { margin: 1.5em 0; } figcaption { color: #555; max-width: 60em; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _cell(tag, cell, css="", extra=""):
    if isinstance(cell, Cell):
        css = " ".join(filter(None, (css, cell.css)))
        cell = cell.text
    attributes = (f' class="{css}"' if css else "") + extra
    return f"<{tag}{attributes}>{html.escape(str(cell))}</{tag}>"


def _table(header, rows, numeric=(), row_headers=False, css=""):
    """An HTML table. header: column titles, or None for none (no empty header row); row_headers: the first cell
    of each row is a ``<th scope="row">``; cells are text or :class:`Cell`."""
    out = [f'<table class="{css}">' if css else "<table>"]
    if header:
        out.append("<tr>" + "".join(_cell("th", h) for h in header) + "</tr>")
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if row_headers and i == 0:
                cells.append(_cell("th", cell, extra=' scope="row"'))
            else:
                cells.append(_cell("td", cell, "num" if i in numeric else ""))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


#: Labels of the stages in ``LayerEvaluation.seconds``.
_STAGES = {"exact_and_model": "exact overlap and model", "monte_carlo": "Monte Carlo"}


def _timings(evaluation):
    """'stage 1.2 s, ...' of the stages that ran (a Monte-Carlo stage without Monte-Carlo pairs did not)."""
    ran = {"monte_carlo": evaluation.metrics["n_monte_carlo"] > 0}
    return ", ".join(f"{_STAGES.get(name, name.replace('_', ' '))} {value:.1f} s"
                     for name, value in evaluation.seconds.items() if ran.get(name, True))


def _truth_text(m, s):
    if m["n_monte_carlo"]:
        return (f"{m['n_truth']:,}: {m['n_exact']:,} exact (σ = 0), {m['n_monte_carlo']:,} Monte-Carlo (σ > 0, "
                f"{s['mc_samples']} displacements each, subset of about {s['mc_pairs']} pairs as whole input "
                f"features, seed {s['seed']})")
    if not m["n_positive"]:
        return f"{m['n_truth']:,}, all exact (σ = 0 for every pair: no Monte Carlo run)"
    why = "Monte-Carlo pairs set to 0" if s.get("mc_pairs", 0) <= 0 else "no pair chosen"
    return (f"{m['n_truth']:,}, exact (σ = 0); no Monte Carlo run ({why}), so the {m['n_positive']:,} pairs at "
            "σ > 0 have no truth")


def _verdict_html(m, settings):
    css, text = verdict_summary(target_verdicts(m, settings))
    return (f'<div class="verdict {css}" id="verdict"><p class="summary">Verdict: {html.escape(text)}</p>'
            '<p class="fine">The targets are those of the model card (<code>model/MODEL_CARD.md</code>), fixed for '
            "its held-out synthetic set: on your layers they are for orientation.</p></div>")


def render_html(evaluation, info, images=None, keys_a=None, keys_b=None):
    """The report as one HTML document.

    info : dict with ``model`` (dict: path, sha256, training summary), ``input`` and
        ``reference`` (layer descriptions), ``sigma`` (text), and optional ``notes`` (list of str).
    images : [(title, caption, base64 PNG)] from :func:`figures` (None: no plots, with a note why
        in ``info['notes']``).
    keys_a, keys_b : feature keys of the two layers (for the mismatch table).

    Structure: the verdict (``div.verdict``, class met / missed / not-measured), at σ = 0 for every pair
    the explanation (``p.sigma0``), the setup table (no header row), the metrics table (its last column
    ``td.status`` met / missed / not-measured / no-target), the plots, the grouped tables, the mismatches.
    """
    m = evaluation.metrics
    p = evaluation.pairs
    s = evaluation.settings
    model = info.get("model", {})
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Relevance model evaluation</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>Relevance model evaluation</h1>",
           f"<p>Generated {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))} by overlap_relevance.</p>",
           _verdict_html(m, s)]
    if sigma_zero_only(m):
        out.append(f'<p class="sigma0">{html.escape(SIGMA0_EXPLANATION)}</p>')
    setup = [
        ("Model file", model.get("path", "")),
        ("Weights SHA-256", model.get("sha256", "")),
        ("Model training", model.get("training", "")),
        ("Input layer", info.get("input", "")),
        ("Reference layer", info.get("reference", "")),
        ("Positional uncertainty σ", info.get("sigma", "")),
        ("Search distance", f"{s['search_distance_m']:g} m (widened to at least 3σ per feature)"),
        ("Candidate pairs", f"{m['n_pairs']:,} of {m['n_input_features']:,} input features"),
        ("Pairs with truth", _truth_text(m, s)),
        ("Model distribution", f"{s['model_samples']} quasi-random points per pair"),
        ("Time", _timings(evaluation)),
    ]
    out.append("<h2>Setup</h2>")
    out.append(_table(None, setup, row_headers=True, css="setup"))
    for note in info.get("notes", []):
        out.append(f"<p><b>Note:</b> {html.escape(note)}</p>")
    out.append("<h2>Metrics</h2>")
    out.append("<p>As in the model card (<code>model/MODEL_CARD.md</code>); the status column says whether a "
               "value meets the card's target (fixed for the held-out synthetic set).</p>")
    out.append(_table(["Metric", "Value", "Pairs", "Model card target", "Status"], metric_rows(m, s),
                      numeric=(1, 2), css="metrics"))
    if images:
        out.append("<h2>Plots</h2>")
        for title, caption, png in images:
            out.append(f'<figure><h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                       f'src="data:image/png;base64,{png}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        shown = {title for title, _, _ in images}
        for title, reason in omitted_plots(evaluation):
            if title not in shown:
                out.append(f'<p class="omitted">{html.escape(title)}: left out ({html.escape(reason)}).</p>')
    for title, (codes, labels) in (("By σ", sigma_groups(evaluation, info.get("per_feature_sigma", False))),
                                   ("By vertex count (A + B)", vertex_groups(evaluation))):
        rows = [[r["group"], f"{r['n']:,}", _fmt(r["iou_mae"]), _fmt(r["coverage"], 3), _fmt(r["crps"])]
                for r in grouped_table(evaluation, codes, labels)]
        out.append(f"<h3>{html.escape(title)}</h3>")
        out.append(_table(["group", "pairs with truth", "IoU MAE", "90 % coverage", "CRPS"], rows,
                          numeric=(1, 2, 3, 4)))
    if m["mismatches"]:
        def key(keys, index):
            return str(keys[index]) if keys is not None else f"feature {index}"

        rows = []
        for mismatch in m["mismatches"]:
            t, q = mismatch["truth_row"], mismatch["predicted_row"]
            rows.append([key(keys_a, p["index_a"][t]),
                         (f"{key(keys_b, p['index_b'][t])} (true {p['truth_iou'][t]:.3f}, predicted "
                          f"{p['iou_mean'][t]:.3f})"),
                         (f"{key(keys_b, p['index_b'][q])} (true {p['truth_iou'][q]:.3f}, predicted "
                          f"{p['iou_mean'][q]:.3f})")])
        out.append(f"<h3>Best-match mismatches (first {len(rows)})</h3>")
        out.append(_table(["Input feature", "True best (IoU)", "Predicted best (IoU)"], rows))
    out.append("<h2>How the metrics are computed</h2><ul>"
               "<li>Truth: the exact overlap of each candidate pair in its local equal-area frame at σ = 0; at "
               "σ &gt; 0 the mean over Monte-Carlo displacements d ~ N(0, σ²I₂) of the reference feature.</li>"
               "<li>Predictions: the model exactly as scoring runs it (model geometries, same frames); mean IoU "
               f"and coverages from {s['model_samples']} quasi-random points of the predicted mixture.</li>"
               "<li>Status: each model card target is judged on the pairs it is for: the σ = 0 targets on the "
               "σ = 0 pairs (exact truth), the σ &gt; 0 ones (interval and PIT coverage) on the pairs with "
               "Monte-Carlo truth; a target without such pairs is not measured. The calibration curve and PIT "
               "histogram use the Monte-Carlo pairs only.</li>"
               "<li>Interval coverage: share of the truth (the exact value, or each Monte-Carlo sample) inside "
               "the closed [5 %, 95 %] interval of the predicted IoU, averaged over pairs; a pair whose truth and "
               "prediction are both an atom at 0 counts as covered, so the table also gives the coverage over "
               "pairs whose truth is not such an atom.</li>"
               "<li>PIT: randomised probability integral transform u = F(y−) + V·(F(y) − F(y−)).</li>"
               "<li>CRPS: exact CRPS of the empirical predicted IoU distribution, averaged over the truth "
               "values.</li>"
               "<li>Best match: per input feature, the candidate with the highest predicted mean IoU against the "
               "one with the highest true IoU; features whose best true IoU is 0 or tied are left out.</li>"
               "<li>Centroid error: distance between the predicted intersection centroid (mixture mean) and the "
               "exact one, relative to the pair scale (the larger side of the bounding box of A ∪ B), σ = 0 pairs "
               "whose intersection has area.</li></ul>")
    out.append("</body></html>")
    return "\n".join(out)
