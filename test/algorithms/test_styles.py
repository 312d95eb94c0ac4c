"""Result styles: what QGIS shows when it loads an output (algorithms/styles.py and its post-processors)."""

import gc
import threading
import weakref

import pytest
from overlap_relevance.algorithms import styles
from overlap_relevance.algorithms.compat import SOURCE_POLYGON
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsFeature,
    QgsGraduatedSymbolRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProject,
    QgsRenderContext,
    QgsRuleBasedRenderer,
    QgsVectorLayer,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt
from test_score_relevance import layers
from tools.layers import memory_layer

SCORE = "overlaprelevance:scorerelevance"
PAIRS = "overlaprelevance:relevancepairs"
LOCATION = "overlaprelevance:overlaplocation"
EXACT = "overlaprelevance:exactoverlap"
CLASS_WORDS = ["unlikely match", "weak match", "likely match", "strong match"]


CRITICAL = getattr(Qgis, "MessageLevel", Qgis).Critical


@pytest.fixture
def project(provider):
    """The project results are loaded into, emptied again afterwards; a critical log message (a Python
    error QGIS caught in postProcessAlgorithm or in a post-processor) fails the test."""
    project = QgsProject.instance()
    before = set(project.mapLayers())
    critical = []

    def collect(message, tag, level):
        if level == CRITICAL and "Traceback" in message:
            critical.append(message)

    QgsApplication.messageLog().messageReceived.connect(collect)
    try:
        yield project
    finally:
        QgsApplication.messageLog().messageReceived.disconnect(collect)
        project.removeMapLayers([layer_id for layer_id in project.mapLayers() if layer_id not in before])
    assert critical == []


def run_and_load(project, algorithm, parameters):
    """Run as the toolbox does (results loaded, post-processors called); the one layer it added."""
    import processing

    parameters = {"OUTPUT": "TEMPORARY_OUTPUT", **parameters}
    before = set(project.mapLayers())
    processing.runAndLoadResults(algorithm, parameters)
    added = [layer for layer_id, layer in project.mapLayers().items() if layer_id not in before]
    assert len(added) == 1, added
    return added[0]


def legend_labels(layer, feature):
    """Labels of the legend entries that ``feature`` is drawn with, asked of the renderer itself."""
    renderer = layer.renderer().clone()  # rendering changes a renderer's state; the layer's stays as it is
    context = QgsRenderContext()
    expression_context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    context.setExpressionContext(expression_context)
    labels = {item.ruleKey(): item.label() for item in renderer.legendSymbolItems()}
    if isinstance(renderer, QgsRuleBasedRenderer):
        labels[renderer.rootRule().ruleKey()] = None  # the root rule matches everything and draws nothing
    renderer.startRender(context, layer.fields())
    try:
        context.expressionContext().setFeature(feature)
        keys = renderer.legendKeysForFeature(feature, context)
    finally:
        renderer.stopRender(context)
    return sorted(labels[key] for key in keys if labels[key] is not None)


def drawn_colors(layer, feature):
    """Colours of the symbols the renderer draws ``feature`` with."""
    renderer = layer.renderer().clone()
    context = QgsRenderContext()
    context.setExpressionContext(QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer)))
    renderer.startRender(context, layer.fields())
    try:
        context.expressionContext().setFeature(feature)
        return [symbol.color().name() for symbol in renderer.symbolsForFeature(feature, context)]
    finally:
        renderer.stopRender(context)


def labels_by(layer, field):
    return {feature[field]: legend_labels(layer, feature) for feature in layer.getFeatures()}


def shown(layer, field_name, value):
    """``value`` as the attribute table shows it in ``field_name``."""
    index = layer.fields().indexOf(field_name)
    setup = layer.editorWidgetSetup(index)
    formatter = QgsApplication.fieldFormatterRegistry().fieldFormatter(setup.type())
    return formatter.representValue(layer, index, setup.config(), None, value)


def rule_labels(layer):
    return [rule.label() for rule in layer.renderer().rootRule().children()]


# ---------------------------------------------------------------------------------------------- relevance


def test_relevance_is_ruled_by_expected_iou_with_classes_for_no_candidate_and_not_scored(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer})
    renderer = layer.renderer()
    assert isinstance(renderer, QgsRuleBasedRenderer)
    labels = rule_labels(layer)
    assert len(labels) == 6
    assert [label.split(" (")[0] for label in labels[:4]] == CLASS_WORDS
    assert "0.75–1" in labels[3] and "0–0.25" in labels[0]
    assert labels[4] == styles.NO_CANDIDATE_LABEL and labels[5] == styles.NOT_SCORED_LABEL
    # Each feature falls in exactly one class, the right one: identical (IoU 1), a third (IoU 1/3), nothing
    # nearby, no geometry.
    caught = labels_by(layer, "name")
    assert caught == {"same": [labels[3]], "half": [labels[1]], "far": [styles.NO_CANDIDATE_LABEL],
                      "none": [styles.NOT_SCORED_LABEL]}
    # Colours read low -> high: red, ..., green; the no-candidate class is a hatch.
    colors = [rule.symbol().color() for rule in renderer.rootRule().children()]
    assert colors[0].red() > colors[0].green() and colors[3].green() > colors[3].red()
    hatch = renderer.rootRule().children()[4].symbol()
    assert hatch.symbolLayerCount() == 2 and hatch.symbolLayer(1).properties()["style"] == "b_diagonal"


def test_relevance_precision_in_the_attribute_table(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer})
    setup = layer.editorWidgetSetup(layer.fields().indexOf("rel_score"))
    assert setup.type() == "Range" and setup.config()["Precision"] == 3
    for name in ("rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd"):
        assert shown(layer, name, 0.794378) == "0.794"
    assert layer.editorWidgetSetup(layer.fields().indexOf("name")).type() != "Range"  # the input's own


def test_a_custom_field_prefix_is_found_and_styled(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer, "FIELD_PREFIX": "m_"})
    assert isinstance(layer.renderer(), QgsRuleBasedRenderer)
    assert all('"m_' in rule.filterExpression() for rule in layer.renderer().rootRule().children())
    assert labels_by(layer, "name")["far"] == [styles.NO_CANDIDATE_LABEL]
    assert shown(layer, "m_p", 0.794378) == "0.794"


def test_prefix_inference_takes_the_last_complete_set():
    assert styles.relevance_prefix(["name", "rel_score", "rel_p", "rel_match", "rel_n"]) == "rel_"
    assert styles.relevance_prefix(["rel_score", "rel_p", "rel_match", "rel_n",
                                    "b_match", "b_score", "b_p", "b_cov", "b_covref", "b_sd", "b_n"]) == "b_"
    assert styles.relevance_prefix(["x_score", "x_p", "x_match"]) is None  # x_n missing
    assert styles.relevance_prefix(["score", "p", "match", "n"]) == ""


# ---------------------------------------------------------------------------------------------- pairs


def test_pairs_draw_the_best_match_bold_and_the_others_faint(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, PAIRS, {"INPUT": input_layer, "INPUT_KEY": "name", "REFERENCE": reference_layer,
                                          "REFERENCE_KEY": "ref_id", "SEARCH_DISTANCE": 100.0, "GEOMETRY": 1})
    renderer = layer.renderer()
    assert isinstance(renderer, QgsRuleBasedRenderer)
    rules = renderer.rootRule().children()
    assert [r.label() for r in rules][-1] == styles.OTHER_CANDIDATES_LABEL and len(rules) == 5
    best, other = rules[3].symbol(), rules[4].symbol()
    assert best.width() >= 3 * other.width()
    assert best.symbolLayerCount() == 2  # line + arrowhead at the reference end
    assert other.opacity() < 0.6
    assert renderer.orderByEnabled() and not renderer.orderBy().list()[0].ascending()  # rank 1 drawn last, on top
    ranks = {}
    for feature in layer.getFeatures():
        caught = legend_labels(layer, feature)
        assert len(caught) == 1
        ranks.setdefault(feature["rank"] == 1, set()).add(caught[0])
    assert ranks[False] == {styles.OTHER_CANDIDATES_LABEL}
    assert ranks[True] and all(label.startswith("best match") for label in ranks[True])
    assert shown(layer, "rel_score", 0.794378) == "0.794"


def test_pairs_as_a_table_get_precision_and_no_renderer(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, PAIRS, {"INPUT": input_layer, "REFERENCE": reference_layer, "GEOMETRY": 0,
                                          "COMPUTE_EXACT": True})
    assert not layer.isSpatial()
    assert not isinstance(layer.renderer(), QgsRuleBasedRenderer)
    assert shown(layer, "rel_p", 0.794378) == "0.794" and shown(layer, "ex_iou", 0.794378) == "0.794"


# ---------------------------------------------------------------------------------------------- location, exact


def test_location_ellipses_are_graduated_by_weight_and_translucent(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, LOCATION, {"INPUT": input_layer, "REFERENCE": reference_layer})
    renderer = layer.renderer()
    assert isinstance(renderer, QgsGraduatedSymbolRenderer) and renderer.classAttribute() == "weight"
    ranges = renderer.ranges()
    assert [(r.lowerValue(), r.upperValue()) for r in ranges] == [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]
    assert "dominant" in ranges[-1].label()
    alphas = [r.symbol().symbolLayer(0).color().alpha() for r in ranges]
    assert all(a < 128 for a in alphas) and alphas == sorted(alphas)
    assert layer.featureCount() > 0
    for feature in layer.getFeatures():
        assert len(legend_labels(layer, feature)) == 1
    assert shown(layer, "weight", 0.794378) == "0.794"


def test_exact_table_gets_precision_only(project):
    input_layer, reference_layer = layers()
    layer = run_and_load(project, EXACT, {"INPUT": input_layer, "REFERENCE": reference_layer})
    assert not layer.isSpatial()
    assert shown(layer, "iou", 0.794378) == "0.794"
    assert shown(layer, "area_in", 123.456) == "123.5"


# ---------------------------------------------------------------------------------------------- matches


def test_matches_are_categorized_by_class(provider):
    values = ["1:1", "1:n", "n:1", "m:n", "unmatched", "odd"]
    from tools.geometry import square

    layer = memory_layer([square(30 * i, 0) for i in range(len(values))], "EPSG:25833",
                         {"m_class": values, "m_p": [0.5] * len(values)})
    assert styles.apply_style(layer, "matches")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "m_class"
    categories = renderer.categories()  # copies: keep them while their symbols are used
    assert [c.value() for c in categories][:5] == values[:5]
    caught = {f["m_class"]: legend_labels(layer, f) for f in layer.getFeatures()}
    assert caught["unmatched"] == ["unmatched"] and caught["1:n"] == [categories[1].label()]
    # A value without a category is drawn with the empty-valued one (the legend keys do not say so).
    drawn = {f["m_class"]: drawn_colors(layer, f) for f in layer.getFeatures()}
    colors = [c.symbol().color().name() for c in categories]
    assert drawn["odd"] == [colors[-1]] != drawn["1:1"]
    assert len(set(colors)) == len(categories)
    assert shown(layer, "m_p", 0.794378) == "0.794"


# ---------------------------------------------------------------------------------------------- when it applies


def test_processing_run_attaches_nothing_and_keeps_the_default_renderer(provider):
    import processing

    input_layer, reference_layer = layers()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    kept = len(styles._KEPT)
    result = processing.run(SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer, "OUTPUT": "TEMPORARY_OUTPUT"},
                            context=context)
    assert all(d.postProcessor() is None for d in context.layersToLoadOnCompletion().values())
    assert len(styles._KEPT) == kept  # postProcessAlgorithm asked for no post-processor
    assert result["OUTPUT"].renderer().type() == "singleSymbol"


def test_every_output_gets_a_new_post_processor_made_on_the_main_thread(provider):
    first, second = styles.post_processor("relevance"), styles.post_processor("relevance")
    assert first is not second and first.kind == second.kind == "relevance"
    assert styles.post_processor("no such kind") is None
    assert set(styles.create_post_processors()) == set(styles.KINDS) == set(styles.create_post_processors())
    assert first.made_on_main_thread and second.made_on_main_thread

    def from_a_worker():
        found = []
        worker = threading.Thread(target=lambda: found.append(styles.post_processor("pairs")))
        worker.start()
        worker.join()
        return found[0]

    # A worker thread (a model's child on QGIS 3.22) gets one made on the main thread, from the pool ...
    pooled = from_a_worker()
    assert isinstance(pooled, styles.StylePostProcessor) and pooled.kind == "pairs" and pooled.made_on_main_thread
    # ... and none when the pool is empty: nothing is ever made off the main thread.
    saved = list(styles._POOL)
    styles._POOL.clear()
    try:
        assert from_a_worker() is None
    finally:
        styles._POOL.extend(saved)


def test_qgis_owns_the_post_processor_and_python_keeps_its_half_until_then(provider):
    """setPostProcessor transfers ownership: the context deletes it; until then Python must keep it."""
    context = QgsProcessingContext()
    context.addLayerToLoadOnCompletion("x", QgsProcessingContext.LayerDetails("x", QgsProject.instance()))
    processor = styles.post_processor("location")
    context.layerToLoadOnCompletionDetails("x").setPostProcessor(processor)
    alive = weakref.ref(processor)
    del processor
    gc.collect()
    held = context.layerToLoadOnCompletionDetails("x").postProcessor()
    assert isinstance(held, styles.StylePostProcessor) and held is alive()  # not a bare C++ base object
    del held, context
    gc.collect()
    assert sip.isdeleted(alive())
    styles.post_processor("pairs")  # forgets the deleted ones
    assert alive() is None or alive() not in styles._KEPT
    assert not any(sip.isdeleted(p) for p in styles._KEPT)


def test_consecutive_runs_are_all_styled(project):
    for prefix in ("rel_", "r2_"):
        input_layer, reference_layer = layers()
        layer = run_and_load(project, SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer,
                                              "FIELD_PREFIX": prefix})
        assert isinstance(layer.renderer(), QgsRuleBasedRenderer), prefix


def test_a_failing_style_warns_and_does_not_raise(provider, monkeypatch):
    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings = []

        def pushWarning(self, text):
            self.warnings.append(text)

    def broken(layer, kind):
        raise RuntimeError("no\nrenderer today")

    monkeypatch.setattr(styles, "apply_style", broken)
    feedback = Feedback()
    styles.post_processor("relevance").postProcessLayer(QgsVectorLayer("Point", "p", "memory"),
                                                        QgsProcessingContext(), feedback)
    assert feedback.warnings == ["The 'relevance' style could not be applied: no renderer today"]


def test_apply_style_leaves_unrelated_layers_alone(provider):
    table = memory_layer([None], None, {"other": [1.5]}, geometry_type="None")
    assert not styles.apply_style(table, "relevance")  # no relevance fields: nothing is touched
    assert table.editorWidgetSetup(0).type() != "Range"
    assert not styles.apply_style(None, "relevance")
    polygons = memory_layer([None], "EPSG:4326", {"other": ["text"]})
    renderer_type = polygons.renderer().type()
    for kind in styles.KINDS:
        assert not styles.apply_style(polygons, kind), kind
    assert polygons.renderer().type() == renderer_type


# ---------------------------------------------------------------------------------------------- models


def _scoring_model(prefixes=("rel_",)):
    """input, reference -> scorerelevance (one child per prefix), each child's OUTPUT a model output."""
    model = QgsProcessingModelAlgorithm("styled relevance", "tests", "tests")
    for name in ("input", "reference"):
        model.addModelParameter(QgsProcessingParameterFeatureSource(name, name, [SOURCE_POLYGON]),
                                QgsProcessingModelParameter(name))
    for i, prefix in enumerate(prefixes):
        child = QgsProcessingModelChildAlgorithm(SCORE)
        child.setChildId(f"score{i}")
        child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("input")])
        child.addParameterSources("REFERENCE",
                                  [QgsProcessingModelChildParameterSource.fromModelParameter("reference")])
        child.addParameterSources("FIELD_PREFIX", [QgsProcessingModelChildParameterSource.fromStaticValue(prefix)])
        output = QgsProcessingModelOutput(f"relevance{i}", f"Relevance {prefix}")
        output.setChildOutputName("OUTPUT")
        child.setModelOutputs({f"relevance{i}": output})
        model.addChildAlgorithm(child)
    return model


def _model_parameters(model):
    input_layer, reference_layer = layers()
    parameters = {"input": input_layer, "reference": reference_layer}
    parameters.update({d.name(): "TEMPORARY_OUTPUT" for d in model.destinationParameterDefinitions()})
    return parameters


def test_a_model_whose_output_is_scorerelevance_gets_the_style(project):
    model = _scoring_model()
    layer = run_and_load(project, model, _model_parameters(model))
    assert isinstance(layer.renderer(), QgsRuleBasedRenderer)
    assert labels_by(layer, "name")["far"] == [styles.NO_CANDIDATE_LABEL]
    assert shown(layer, "rel_score", 0.794378) == "0.794"


def test_two_outputs_of_one_kind_in_one_context_each_get_their_own_post_processor(project):
    """One instance shared by both would be deleted twice when the context goes (a crash), or be gone."""
    import processing

    model = _scoring_model(("a_", "b_"))
    before = set(project.mapLayers())
    kept = list(styles._KEPT)
    processing.runAndLoadResults(model, _model_parameters(model))
    made = [p for p in styles._KEPT if not any(p is k for k in kept)]
    added = [layer for layer_id, layer in project.mapLayers().items() if layer_id not in before]
    assert len(added) == 2
    for layer in added:
        assert isinstance(layer.renderer(), QgsRuleBasedRenderer)
        prefix = styles.relevance_prefix(layer.fields())
        assert prefix in ("a_", "b_") and f'"{prefix}score"' in layer.renderer().rootRule().children()[0].filterExpression()
    gc.collect()
    assert len(made) == 2 and made[0] is not made[1]
    assert all(sip.isdeleted(p) for p in made)  # QGIS deleted both with the run's context, once each


def _run_as_task(algorithm, parameters, project):
    """As the toolbox dialog runs it: a task on a worker thread, postProcess on this (the main) thread,
    then Processing's handleAlgorithmResults. Returns the layers it added to ``project``."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import QgsProcessingAlgRunnerTask, QgsProcessingOutputLayerDefinition
    from qgis.PyQt.QtCore import QCoreApplication, QElapsedTimer

    for definition in algorithm.destinationParameterDefinitions():
        parameters[definition.name()] = QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", project)
    context = QgsProcessingContext()
    context.setProject(project)
    feedback = QgsProcessingFeedback()
    task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
    finished = []
    task.executed.connect(lambda ok, results: finished.append(ok))
    before = set(project.mapLayers())
    QgsApplication.taskManager().addTask(task)
    timer = QElapsedTimer()
    timer.start()
    while not finished and timer.elapsed() < 20000:
        QCoreApplication.processEvents()
    assert finished == [True]
    handleAlgorithmResults(algorithm, context, feedback)
    return [layer for layer_id, layer in project.mapLayers().items() if layer_id not in before]


def test_toolbox_dialog_path_on_a_worker_thread_styles_algorithm_and_model_outputs(project):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(PAIRS)
    input_layer, reference_layer = layers()
    (pairs,) = _run_as_task(algorithm, {"INPUT": input_layer, "REFERENCE": reference_layer, "GEOMETRY": 1,
                                        "SEARCH_DISTANCE": 100.0}, project)
    assert isinstance(pairs.renderer(), QgsRuleBasedRenderer)
    model = _scoring_model()
    (relevance,) = _run_as_task(model, _model_parameters(model), project)
    assert isinstance(relevance.renderer(), QgsRuleBasedRenderer)


def test_only_the_output_is_queued_for_loading(project):
    """Nothing but the sink itself is queued to load; an extra entry makes QGIS say after every toolbox run
    'The following layers were not correctly generated'."""
    import processing
    from processing.core.Processing import Processing
    from qgis.core import QgsProcessingOutputLayerDefinition

    queued = []
    input_layer, reference_layer = layers()
    Processing.runAlgorithm(SCORE, {"INPUT": input_layer, "REFERENCE": reference_layer,
                                    "OUTPUT": QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", project)},
                            onFinish=lambda alg, context, feedback: queued.extend(context.layersToLoadOnCompletion()))
    assert len(queued) == 1, f"queued to load: {queued}"
    assert processing is not None


def test_legend_labels_can_tell_classes_apart(provider):
    """The helper the tests rely on really distinguishes classes (a guard against vacuous passes)."""
    layer = memory_layer([None, None], "EPSG:4326", {"rel_match": ["a", "b"], "rel_score": [0.9, 0.1],
                                                     "rel_p": [0.9, 0.1], "rel_n": [1, 0]})
    styles.apply_style(layer, "relevance")
    features = {f["rel_match"]: f for f in layer.getFeatures()}
    assert legend_labels(layer, features["a"]) != legend_labels(layer, features["b"])
    assert isinstance(features["a"], QgsFeature)


def test_matched_reference_is_drawn_as_outlines_over_the_matched_input(provider):
    """matchfeatures loads both sides, the reference above: unfilled, it leaves the input visible."""
    from tools.geometry import square

    values = ["1:1", "1:n", "n:1", "m:n", "unmatched"]
    layer = memory_layer([square(30 * i, 0) for i in range(len(values))], "EPSG:25833",
                         {"m_class": values, "m_p": [0.5] * len(values)})
    assert styles.apply_style(layer, "reference_matches")
    categories = layer.renderer().categories()
    filled = styles.matches_renderer(layer).categories()
    for outlined, solid in zip(categories, filled):
        fill = outlined.symbol().symbolLayer(0)
        assert fill.brushStyle() == Qt.BrushStyle.NoBrush and fill.strokeWidth() > 0.26, outlined.label()
        assert fill.strokeColor().name() == solid.symbol().color().name() or outlined.value() == "unmatched"
        if outlined.value() != "unmatched":  # the input's fill, over the outlines or under them, lets them show
            assert solid.symbol().color().alpha() < 200, solid.label()
    assert shown(layer, "m_p", 0.794378) == "0.794"
