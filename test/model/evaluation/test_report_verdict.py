"""The evaluation report (model/evaluation/report.py, drawn by report_html.py) gives its verdict: met / missed /
not measured per target, the σ = 0 explanation, no stage that did not run, no empty header row, no hidden axis
multipliers.

A few evaluations of the bundled building sample (40 input features) with the tiny NumPy model; about a second."""

import dataclasses
import re

import numpy as np
import pytest
from overlap_relevance.model.evaluation import heldout, report, report_html
from overlap_relevance.model.evaluation.metrics import TARGETS
from overlap_relevance.model.frame import layer_to_lonlat
from overlap_relevance.model.gdal_layer import read_layer
from overlap_relevance.model.preparation import prepare_layer
from overlap_relevance.model.scoring import load_model
from test_evaluate import tiny_model_file

pytest.importorskip("matplotlib")

N_INPUT = 40
INFO = {"model": {"path": "tiny.npz", "sha256": "0" * 64, "training": "test"}, "input": "mapping",
        "reference": "cadastre", "sigma": "test"}
FIGURES = (report_html.figure_predicted_vs_truth, report_html.figure_calibration,
           lambda e: report_html.figure_coverage_by_sigma(e, True), report_html.figure_error_by_complexity)


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    model = load_model(tiny_model_file(tmp_path_factory.mktemp("model") / "tiny.npz"))
    geoms_a, crs_a, _ = read_layer(heldout.SAMPLE_DIR / "buildings_mapping.gpkg", "buildings_mapping")
    geoms_b, crs_b, _ = read_layer(heldout.SAMPLE_DIR / "buildings_cadastre.gpkg", "buildings_cadastre")
    layer_a = prepare_layer(layer_to_lonlat(geoms_a[:N_INPUT], crs_a))
    return model, layer_a, prepare_layer(layer_to_lonlat(geoms_b, crs_b))


def evaluate(layers, sigma, mc_pairs=20):
    sigma = np.resize(np.asarray(sigma, float), N_INPUT)
    evaluation = report.evaluate_layers(*layers, sigma, 5.0, mc_pairs=mc_pairs, mc_samples=32, model_samples=64)
    assert evaluation is not None and evaluation.n_pairs > N_INPUT
    return evaluation


@pytest.fixture(scope="module")
def at_zero(layers):
    return evaluate(layers, 0.0)


@pytest.fixture(scope="module")
def at_half(layers):
    return evaluate(layers, 0.5)


@pytest.fixture(scope="module")
def mixed(layers):
    return evaluate(layers, [0.0, 0.5])


def with_coverage(evaluation, coverage, pit):
    """The evaluation with the Monte-Carlo pairs' interval and PIT coverage set, its metrics recomputed."""
    pairs = dict(evaluation.pairs)
    mc = pairs["monte_carlo"]
    pairs["coverage"] = np.where(mc, coverage, pairs["coverage"])
    pairs["pit_coverage"] = np.where(mc, pit, pairs["pit_coverage"])
    changed = dataclasses.replace(evaluation, pairs=pairs)
    changed.metrics = report.metrics(changed)
    return changed


def html_of(evaluation, images=None):
    return report_html.render_html(evaluation, INFO, images)


def verdict_of(document):
    return re.search(r'<div class="verdict ([a-z-]+)" id="verdict"><p class="summary">Verdict: (.*?)</p>', document).groups()


def status_of(document, label):
    """(css class, text) of the status cell of the metrics row that starts with ``label``."""
    row = re.search(r"<tr><td>" + re.escape(label) + r"[^<]*</td>.*?</tr>", document)
    assert row, label
    return re.search(r'<td class="status ([a-z-]+)">([^<]*)</td></tr>$', row.group(0)).groups()


INTERVAL_ROW = "σ &gt; 0: coverage of the central 90 % interval"
PIT_ROW = "σ &gt; 0: PIT coverage of the central 90 %"


# --------------------------------------------------------------------------
# Verdict.
# --------------------------------------------------------------------------
def test_a_missed_target_is_flagged_with_value_and_target(at_half):
    low, high = TARGETS["interval_coverage"][2]
    evaluation = with_coverage(at_half, low - 0.011, low - 0.03)
    document = html_of(evaluation)
    css, text = verdict_of(document)
    assert css == "missed"
    assert "0 of 2 measured targets met (3 not measured)" in text
    assert f"coverage of the central 90 % IoU interval {low - 0.011:.3f} (target {low:g}–{high:g})" in text
    assert f"PIT coverage of the central 90 % {low - 0.03:.3f}" in text
    assert "no σ = 0 pairs" in text  # why the σ = 0 targets are not measured
    assert status_of(document, INTERVAL_ROW) == ("missed", "missed")
    assert status_of(document, PIT_ROW) == ("missed", "missed")
    assert status_of(document, "σ = 0: MAE of the mean IoU vs exact")[0] == "not-measured"


def test_met_targets_are_marked_met(at_half, at_zero):
    low, high = TARGETS["interval_coverage"][2]
    document = html_of(with_coverage(at_half, (low + high) / 2, (low + high) / 2))
    css, text = verdict_of(document)
    assert css == "met" and text.startswith("2 of 2 measured targets met") and "missed" not in text
    assert status_of(document, INTERVAL_ROW) == ("met", "met")
    assert status_of(document, PIT_ROW) == ("met", "met")
    # σ = 0: the tiny model reads the overlap of the model geometries, nearly exact.
    document = html_of(at_zero)
    css, text = verdict_of(document)
    assert css == "met" and text.startswith("3 of 3 measured targets met (2 not measured)")
    assert status_of(document, "σ = 0: MAE of the mean IoU vs exact") == ("met", "met")
    assert document.count('class="status met"') == 3
    assert 'class="status missed"' not in document


def test_target_text_comes_from_the_targets():
    for key in report.LAYER_TARGETS:
        _, kind, bound = TARGETS[key]
        text = report.target_text(key)
        assert text.startswith({"max": "≤", "min": "≥", "range": ""}[kind])
        for value in np.atleast_1d(bound):
            assert f"{100 * value:g}" in text or f"{value:g}" in text


# --------------------------------------------------------------------------
# σ = 0.
# --------------------------------------------------------------------------
def test_sigma_zero_is_explained_and_its_collapsing_plots_left_out(at_zero, at_half):
    images = report_html.figures(at_zero)
    assert [title for title, _, _ in images] == [report_html.TITLE_SCATTER, report_html.TITLE_COMPLEXITY]
    document = html_of(at_zero, images)
    assert '<p class="sigma0">' in document
    assert "the model reads the exact overlap here, because its descriptors contain the overlap" in document
    assert "check that reading, not the model&#x27;s uncertainty" in document
    assert len(re.findall(r"<img ", document)) == 2
    for title in (report_html.TITLE_CALIBRATION, report_html.TITLE_COVERAGE):
        assert f'alt="{title}"' not in document
        assert f'<p class="omitted">{html_title(title)}: left out (σ = 0 for every pair' in document
    # The σ > 0 metrics are not measured, with the reason, and show no value.
    for label in (INTERVAL_ROW, PIT_ROW, "σ &gt; 0: MAE of the mean IoU vs Monte-Carlo mean"):
        css, text = status_of(document, label)
        assert css == "not-measured" and text.startswith("not measured: σ = 0 for every pair")
        assert re.search(r"<tr><td>" + re.escape(label) + r'[^<]*</td><td class="num">—</td>', document)
    # σ > 0: no explanation, every plot.
    images = report_html.figures(at_half)
    assert len(images) == 4
    assert '<p class="sigma0">' not in html_of(at_half, images)


def html_title(title):
    return title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_with_sigma_varying_the_calibration_uses_the_monte_carlo_pairs_only(mixed):
    assert mixed.metrics["n_exact"] and mixed.metrics["n_monte_carlo"]
    assert len(report_html.figures(mixed, per_feature_sigma=True)) == 4
    assert '<p class="sigma0">' not in html_of(mixed)
    levels, observed = report_html.calibration_curve(mixed)
    expected = [np.mean(np.abs(mixed.mc_pit - 0.5) <= level / 2) for level in levels]
    np.testing.assert_allclose(observed, expected)
    density, _ = report_html.pit_histogram(mixed)
    spiked = dataclasses.replace(mixed, pit_exact=np.where(np.isfinite(mixed.pit_exact), 0.5, np.nan))
    np.testing.assert_allclose(report_html.calibration_curve(spiked)[1], observed)  # σ = 0 PIT does not enter
    np.testing.assert_allclose(report_html.pit_histogram(spiked)[0], density)
    # The σ > 0 targets are judged on the Monte-Carlo pairs, not on all pairs with truth.
    m = mixed.metrics
    mc = mixed.pairs["monte_carlo"]
    assert m["interval_coverage_monte_carlo"] == pytest.approx(mixed.pairs["coverage"][mc].mean())
    assert m["n_truth"] > m["n_monte_carlo"]


# --------------------------------------------------------------------------
# Setup table: stages that ran, no empty header row.
# --------------------------------------------------------------------------
def time_row(document):
    return re.search(r'<th scope="row">Time</th><td>([^<]*)</td>', document).group(1)


def test_no_monte_carlo_timing_when_none_ran(layers, at_zero, at_half):
    assert "monte_carlo" not in at_zero.seconds
    assert "Monte Carlo" not in time_row(html_of(at_zero))
    no_mc = evaluate(layers, 0.5, mc_pairs=0)
    assert no_mc.metrics["n_monte_carlo"] == 0 and "monte_carlo" not in no_mc.seconds
    document = html_of(no_mc)
    assert "Monte Carlo" not in time_row(document)
    assert "no Monte Carlo run (Monte-Carlo pairs set to 0)" in document
    css, text = verdict_of(document)
    assert css == "not-measured" and text.startswith("No target measured; not measured (no σ = 0 pairs")
    # An evaluation made elsewhere with a Monte-Carlo timing but no Monte-Carlo pair: not shown either.
    stale = dataclasses.replace(at_zero, seconds=dict(at_zero.seconds, monte_carlo=0.1))
    assert "Monte Carlo" not in time_row(html_of(stale))
    # When it ran, it is shown.
    assert "monte_carlo" in at_half.seconds and "Monte Carlo" in time_row(html_of(at_half))


def test_setup_table_starts_with_a_row_that_has_content(at_zero):
    document = html_of(at_zero)
    table = re.search(r'<table class="setup">(.*?)</table>', document, re.DOTALL).group(1)
    first = re.search(r"<tr>(.*?)</tr>", table, re.DOTALL).group(1)
    assert re.sub(r"<[^>]+>", "", first).strip()
    assert first.startswith('<th scope="row">Model file</th>')
    assert "<th></th>" not in document


# --------------------------------------------------------------------------
# Plots: every number on an axis is in its tick labels.
# --------------------------------------------------------------------------
def tiny_errors(evaluation):
    """The evaluation with IoU errors of about 1e-7: an axis that matplotlib would label with a '1e-7' multiplier."""
    pairs = dict(evaluation.pairs)
    pairs["iou_mean"] = np.where(pairs["has_truth"], pairs["truth_iou"] + 1e-7 * (1 + pairs["vertices"] % 3),
                                 pairs["iou_mean"])
    changed = dataclasses.replace(evaluation, pairs=pairs)
    changed.metrics = report.metrics(changed)
    return changed


def offset_texts(figure):
    figure.canvas.draw()
    return [axis.get_offset_text().get_text() for axes in figure.axes for axis in (axes.xaxis, axes.yaxis)]


def test_no_figure_axis_has_an_offset_or_multiplier(at_zero, mixed):
    evaluations = (tiny_errors(at_zero), mixed, tiny_errors(mixed))
    # The check can see one: the same bars without the report's tick settings get a corner multiplier.
    codes, labels = report.vertex_groups(evaluations[0])
    maes = [r["iou_mae"] or 0.0 for r in report.grouped_table(evaluations[0], codes, labels)]
    bare = report_html._figure()
    bare.add_subplot().bar(np.arange(len(maes)), maes)
    assert any(offset_texts(bare))
    for evaluation in evaluations:
        for make in FIGURES:
            figure = make(evaluation)
            assert offset_texts(figure) == [""] * 2 * len(figure.axes), make
