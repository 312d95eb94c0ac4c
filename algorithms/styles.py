"""Styles for the provider's outputs when QGIS loads them as results (toolbox, batch, models).

:meth:`..algorithms.base.OverlapRelevanceAlgorithm.postProcessAlgorithm` attaches
``post_processor(kind)`` to every output QGIS will load; QGIS then calls its ``postProcessLayer``
on the main thread once the layer is in the project, and that applies :func:`apply_style`.

Kinds:

* ``relevance`` (scorerelevance): rules on the expected IoU ``<prefix>score`` in four fixed classes
  (red → green), features without a candidate (``<prefix>n`` = 0) hatched grey, features without a
  usable geometry (NULL score) outlined only. The prefix is found from the fields.
* ``pairs`` (relevancepairs): the best match of each input feature (rank 1) as a thick arrow from
  the input to the reference feature, coloured like the relevance classes; other candidates thin,
  light and half transparent, drawn underneath.
* ``location`` (overlaplocation): ellipses graduated by the component weight, translucent fills.
* ``exact`` (exactoverlap): a table; display precision only.
* ``matches``: categories of the ``m_class`` field (matchfeatures) (1:1, 1:n, n:1, m:n, unmatched),
  translucent fills.
* ``reference_matches``: the same categories drawn as coloured outlines without fill (matchfeatures'
  matched reference): loaded with the matched input, both stay visible, whichever lies on top.

Every kind gets a display precision on its numeric (Double) fields: 3 decimals for shares,
scores and probabilities, 1 for areas in m².

The post-processors hold only their kind (everything else is inferred from the layer). QGIS takes
ownership of each one it is given and deletes it with the processing context, so every output gets
a new one, made on the main thread (from a small pool where the request comes from a worker thread);
its Python half is kept in :data:`_KEPT` until QGIS has deleted it (a Python subclass collected
early leaves QGIS holding a bare base object).
"""

import threading

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsEditorWidgetSetup,
    QgsExpression,
    QgsFeatureRequest,
    QgsFillSymbol,
    QgsGraduatedSymbolRenderer,
    QgsLineSymbol,
    QgsMarkerLineSymbolLayer,
    QgsMarkerSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererCategory,
    QgsRendererRange,
    QgsRuleBasedRenderer,
    QgsSimpleFillSymbolLayer,
    QgsSymbol,
    QgsSymbolLayerUtils,
    QgsVectorLayer,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication, QThread
from qgis.PyQt.QtGui import QColor

from ..model.fields import RELEVANCE_FIELDS, RELEVANCE_PREFIX, names
from .compat import field_type

KINDS = ("relevance", "pairs", "location", "exact", "matches", "reference_matches")
#: Opacity (0-255) of the matched input's fills, under or over the matched reference's outlines.
MATCHES_FILL_ALPHA = 165
DEFAULT_PREFIX = RELEVANCE_PREFIX
RELEVANCE_SUFFIXES = tuple(names(RELEVANCE_FIELDS))
MATCH_CLASS_FIELD = "m_class"

#: Expected IoU classes: (lower, upper, words, colour). ColorBrewer RdYlGn, 4 classes: red reads "bad",
#: green "good"; the two ends also differ in lightness from the middle ones.
SCORE_CLASSES = (
    (0.0, 0.25, "unlikely match", "#d7191c"),
    (0.25, 0.5, "weak match", "#fdae61"),
    (0.5, 0.75, "likely match", "#a6d96a"),
    (0.75, 1.0, "strong match", "#1a9641"),
)
NO_CANDIDATE_LABEL = "no candidate (no reference feature nearby)"
NOT_SCORED_LABEL = "not scored (no usable geometry)"
OTHER_CANDIDATES_LABEL = "other candidates (rank 2 and below)"

#: Mixture component weight classes for the ellipses: (lower, upper, words, colour, fill alpha 0-255).
WEIGHT_CLASSES = (
    (0.0, 0.25, "minor component", "#bdd7e7", 50),
    (0.25, 0.5, "moderate component", "#6baed6", 70),
    (0.5, 0.75, "major component", "#3182bd", 90),
    (0.75, 1.0, "dominant component", "#08519c", 110),
)

#: Matching classes: (value, label, colour); the last entry, with an empty value, takes all other values.
MATCH_CATEGORIES = (
    ("1:1", "1:1 (one to one)", "#1a9641"),
    ("1:n", "1:n (one input, several references)", "#2b83ba"),
    ("n:1", "n:1 (several inputs, one reference)", "#fdae61"),
    ("m:n", "m:n (several to several)", "#7b3294"),
    ("unmatched", "unmatched", None),
    ("", "other or not classified", "#ffffff"),
)

AREA_DECIMALS = 1
SHARE_DECIMALS = 3

POOL_SIZE = 8
_POOL = []  # post-processors made on the main thread, not handed out yet (see post_processor)
_KEPT = []  # the Python halves of the post-processors QGIS holds (see post_processor)
_LOCK = threading.Lock()


def _quoted(name):
    return QgsExpression.quotedColumnRef(name)


def _range_text(lower, upper):
    return f"{lower:g}–{upper:g}"


# ---------------------------------------------------------------------------------------------- post-processors


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the style ``kind`` to a result layer once QGIS has loaded it. Holds no per-run state."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.made_on_main_thread = _on_main_thread()

    def postProcessLayer(self, layer, context, feedback):
        _refill()  # on the main thread, where QGIS runs post-processors: replaces the one just used
        try:
            apply_style(layer, self.kind)
        except Exception as error:  # noqa: BLE001 - a style must never break loading a result
            if feedback is not None:
                reason = " ".join(str(error).split()) or type(error).__name__
                feedback.pushWarning(f"The '{self.kind}' style could not be applied: {reason}")


def _on_main_thread():
    application = QCoreApplication.instance()
    return application is not None and QThread.currentThread() == application.thread()


def _prune():
    """Forget the post-processors whose C++ half QGIS has deleted (with the context that held them)."""
    _KEPT[:] = [processor for processor in _KEPT if not sip.isdeleted(processor)]


def _refill():
    """Top the pool up to POOL_SIZE; only on the main thread, where every post-processor is made."""
    if not _on_main_thread():
        return
    with _LOCK:
        _prune()
        while len(_POOL) < POOL_SIZE:
            _POOL.append(StylePostProcessor(None))


def create_post_processors():
    """Get ready on the main thread (the provider's load): fill the pool; idempotent. Returns the kinds.

    Nothing is shared between runs: :func:`post_processor` hands out a new one for every output,
    because QGIS takes ownership of it (``LayerDetails.setPostProcessor`` transfers it) and deletes
    it with the processing context, so an instance cannot outlive one run or serve two outputs.
    """
    _refill()
    return {kind: StylePostProcessor for kind in KINDS}


def post_processor(kind):
    """A new post-processor for ``kind``, to hand to ``setPostProcessor``; None for an unknown kind.

    Every post-processor is made on the main thread. QGIS attaches them where an algorithm's
    postProcessAlgorithm runs: on the main thread for a toolbox or batch run, but on the model's
    worker thread for a model's child on QGIS 3.22. There one is taken from a pool made on the main
    thread at the provider's load and refilled whenever a post-processor runs (always on the main
    thread); with the pool empty, None (the layer loads unstyled).

    Its Python half is kept in :data:`_KEPT` until QGIS has deleted the C++ half: without that
    reference Python collects the subclass and QGIS is left holding a bare base object.
    """
    if kind not in KINDS:
        return None
    if _on_main_thread():
        _refill()
    with _LOCK:
        if not _POOL:
            return None
        processor = _POOL.pop()
        processor.kind = kind
        _KEPT.append(processor)
    return processor


# ---------------------------------------------------------------------------------------------- inference


def relevance_prefix(fields):
    """The prefix P of the relevance fields (P+score, P+p, P+match and P+n all exist), the last such set;
    None when there is none. ``fields``: a QgsFields or a list of names."""
    names = list(fields.names()) if hasattr(fields, "names") else list(fields)
    present = set(names)
    found = None
    for name in names:
        if name.endswith("score"):
            prefix = name[: -len("score")]
            if all(prefix + suffix in present for suffix in ("p", "match", "n")):
                found = prefix
    return found


def _is_double(field):
    return field.type() == field_type("Double")


def _decimals_for(name):
    return AREA_DECIMALS if name.startswith("area") else SHARE_DECIMALS


def _precision_fields(layer, kind):
    """{field index: decimals} for the Double fields of ``layer`` that ``kind`` writes."""
    fields = layer.fields()
    if kind in ("relevance", "matches", "reference_matches"):
        prefix = relevance_prefix(fields)
        names = set()
        if prefix is not None:
            names = {prefix + suffix for suffix in ("score", "p", "cov", "covref", "sd")}
        if kind != "relevance":  # a matching output: its own fields beside the input's, known by name
            names |= {"m_p"}  # matchfeatures: the assignment's probability
        chosen = [i for i, field in enumerate(fields) if field.name() in names]
    else:  # pairs, location, exact: every field is the algorithm's own
        chosen = list(range(fields.count()))
    return {i: _decimals_for(fields.at(i).name()) for i in chosen if _is_double(fields.at(i))}


def precision_setup(decimals):
    """The editor widget setup that makes the attribute table show ``decimals`` decimals."""
    return QgsEditorWidgetSetup("Range", {
        "AllowNull": True, "Precision": decimals, "Step": 10.0 ** -min(decimals, 2), "Style": "SpinBox",
    })


def _set_precision(layer, kind):
    fields = _precision_fields(layer, kind)
    for index, decimals in fields.items():
        layer.setEditorWidgetSetup(index, precision_setup(decimals))
    return bool(fields)


# ---------------------------------------------------------------------------------------------- symbols


def _color(hex_color, alpha=255):
    color = QColor(hex_color)
    color.setAlpha(alpha)
    return QgsSymbolLayerUtils.encodeColor(color)


def _darker(hex_color, factor=150):
    return QgsSymbolLayerUtils.encodeColor(QColor(hex_color).darker(factor))


def _fill_symbol(fill, outline=None, alpha=255, outline_width=0.26):
    return QgsFillSymbol.createSimple({
        "color": _color(fill, alpha), "style": "solid", "outline_color": outline or _darker(fill),
        "outline_width": str(outline_width), "outline_style": "solid", "joinstyle": "round",
    })


def _hatched_symbol():
    """Light grey with a diagonal hatch: 'nothing to say here' without looking like a class."""
    symbol = QgsFillSymbol.createSimple({
        "color": _color("#f0f0f0"), "style": "solid", "outline_color": _color("#969696"),
        "outline_width": "0.26", "outline_style": "solid",
    })
    symbol.appendSymbolLayer(QgsSimpleFillSymbolLayer.create({
        "color": _color("#969696"), "style": "b_diagonal", "outline_style": "no",
    }))
    return symbol


def _outline_only_symbol():
    return QgsFillSymbol.createSimple({
        "color": _color("#ffffff", 0), "style": "no", "outline_color": _color("#737373"),
        "outline_width": "0.4", "outline_style": "dash",
    })


def _outline_symbol(color, dashed=False):
    """No fill, a coloured outline: whatever lies underneath stays visible."""
    return QgsFillSymbol.createSimple({
        "color": _color(color, 0), "style": "no", "outline_color": _color(color), "outline_width": "0.66",
        "outline_style": "dash" if dashed else "solid", "joinstyle": "round",
    })


def _symbol(geometry_type, color, hatched=False, outline=False, alpha=255):
    """A symbol of ``color`` for any geometry type (None for a table); ``outline``: polygons unfilled;
    ``alpha``: the opacity of a polygon's fill (0-255)."""
    template = QgsSymbol.defaultSymbol(geometry_type)
    if isinstance(template, QgsFillSymbol) and outline:
        return _outline_symbol(color, dashed=hatched)
    if isinstance(template, QgsFillSymbol):
        return _hatched_symbol() if hatched else _fill_symbol(color, alpha=alpha)
    if isinstance(template, QgsLineSymbol):
        return QgsLineSymbol.createSimple({"line_color": _color(color), "line_width": "0.5",
                                           "line_style": "dash" if hatched else "solid", "capstyle": "round"})
    if isinstance(template, QgsMarkerSymbol):
        return QgsMarkerSymbol.createSimple({"name": "circle", "color": _color(color), "size": "2.4",
                                             "outline_color": _darker(color), "outline_width": "0.2"})
    return None


def _arrow_symbol(color, width=0.7):
    """A line ending in a filled arrowhead at its last vertex (the reference feature)."""
    symbol = QgsLineSymbol.createSimple({"line_color": _color(color), "line_width": str(width),
                                         "line_style": "solid", "capstyle": "round", "joinstyle": "round"})
    head = QgsMarkerLineSymbolLayer.create({"placement": "lastvertex", "rotate": "1"})
    head.setSubSymbol(QgsMarkerSymbol.createSimple({
        "name": "filled_arrowhead", "color": _color(color), "size": str(3.5 * width + 0.5),
        "outline_color": _color(color), "outline_width": "0",
    }))
    symbol.appendSymbolLayer(head)
    return symbol


def _faint_line_symbol():
    symbol = QgsLineSymbol.createSimple({"line_color": _color("#737373"), "line_width": "0.2",
                                         "line_style": "solid", "capstyle": "round"})
    symbol.setOpacity(0.45)
    return symbol


# ---------------------------------------------------------------------------------------------- renderers


def _score_condition(score, lower, upper, first, last):
    """Filter for one score class: lower ≤ score < upper; the first class takes everything below, the last
    everything from its lower bound."""
    if first:
        return f"{score} < {upper}"
    if last:
        return f"{score} >= {lower}"
    return f"{score} >= {lower} AND {score} < {upper}"


def _rule(symbol, filter_expression, label):
    return QgsRuleBasedRenderer.Rule(symbol, 0, 0, filter_expression, label)


def relevance_renderer(layer, prefix):
    """Rules on the expected IoU; no candidate and not scored in classes of their own."""
    score, n = _quoted(prefix + "score"), _quoted(prefix + "n")
    geometry_type = layer.geometryType()
    root = QgsRuleBasedRenderer.Rule(None)
    last = len(SCORE_CLASSES) - 1
    for i, (lower, upper, words, color) in enumerate(SCORE_CLASSES):
        condition = _score_condition(score, lower, upper, i == 0, i == last)
        root.appendChild(_rule(_symbol(geometry_type, color), f"{n} > 0 AND {condition}",
                               f"{words} (expected IoU {_range_text(lower, upper)})"))
    root.appendChild(_rule(_symbol(geometry_type, "#bdbdbd", hatched=True),
                           f"{score} IS NOT NULL AND coalesce({n}, 0) = 0", NO_CANDIDATE_LABEL))
    not_scored = _outline_only_symbol() if isinstance(QgsSymbol.defaultSymbol(geometry_type), QgsFillSymbol) \
        else _symbol(geometry_type, "#737373", hatched=True)
    root.appendChild(_rule(not_scored, f"{score} IS NULL", NOT_SCORED_LABEL))
    return QgsRuleBasedRenderer(root)


def pairs_renderer(layer):
    """The best match (rank 1) as a thick arrow coloured by its class; the other candidates faint, below."""
    rank, score = _quoted("rank"), f"coalesce({_quoted('rel_score')}, 0)"
    root = QgsRuleBasedRenderer.Rule(None)
    last = len(SCORE_CLASSES) - 1
    for i, (lower, upper, words, color) in enumerate(SCORE_CLASSES):
        condition = _score_condition(score, lower, upper, i == 0, i == last)
        root.appendChild(_rule(_arrow_symbol(color), f"{rank} = 1 AND {condition}",
                               f"best match: {words} (expected IoU {_range_text(lower, upper)})"))
    root.appendChild(_rule(_faint_line_symbol(), f"coalesce({rank}, 0) <> 1", OTHER_CANDIDATES_LABEL))
    renderer = QgsRuleBasedRenderer(root)
    # Draw the high ranks first, so the best matches lie on top of the faint lines.
    renderer.setOrderBy(QgsFeatureRequest.OrderBy([QgsFeatureRequest.OrderByClause(rank, False, True)]))
    renderer.setOrderByEnabled(True)
    return renderer


def location_renderer(layer):
    """Ellipses graduated by their component's weight; translucent fills so that overlaps stay readable."""
    ranges = []
    for lower, upper, words, color, alpha in WEIGHT_CLASSES:
        symbol = _fill_symbol(color, outline=_darker(color, 120), alpha=alpha, outline_width=0.4)
        ranges.append(QgsRendererRange(lower, upper, symbol, f"{words} (weight {_range_text(lower, upper)})"))
    renderer = QgsGraduatedSymbolRenderer("weight", ranges)
    renderer.setOrderBy(QgsFeatureRequest.OrderBy([QgsFeatureRequest.OrderByClause(_quoted("weight"), True)]))
    renderer.setOrderByEnabled(True)  # the likelier components on top
    return renderer


def matches_renderer(layer, outline=False):
    geometry_type = layer.geometryType()
    categories = []
    for value, label, color in MATCH_CATEGORIES:
        # The input's fills are translucent: whichever way QGIS stacks the two results (it depends on the
        # layer selected when the run started), the reference's outlines show through.
        symbol = _symbol(geometry_type, color or ("#737373" if outline else "#bdbdbd"), hatched=color is None,
                         outline=outline, alpha=MATCHES_FILL_ALPHA)
        categories.append(QgsRendererCategory(value, symbol, label))
    return QgsCategorizedSymbolRenderer(MATCH_CLASS_FIELD, categories)


def _renderer_for(layer, kind):
    """The renderer for ``kind``, or None when the layer has no geometry or lacks the fields it needs."""
    if not layer.isSpatial():
        return None
    names = set(layer.fields().names())
    if kind == "relevance":
        prefix = relevance_prefix(layer.fields())
        return None if prefix is None else relevance_renderer(layer, prefix)
    if kind == "pairs" and {"rank", "rel_score"} <= names:
        return pairs_renderer(layer)
    if kind == "location" and "weight" in names:
        return location_renderer(layer)
    if kind in ("matches", "reference_matches") and MATCH_CLASS_FIELD in names:
        return matches_renderer(layer, outline=kind == "reference_matches")
    return None


def apply_style(layer, kind):
    """Give ``layer`` the renderer and display precision of ``kind``; True when anything was styled."""
    if not isinstance(layer, QgsVectorLayer) or not layer.isValid() or kind not in KINDS:
        return False
    styled = _set_precision(layer, kind)
    renderer = _renderer_for(layer, kind)
    if renderer is not None:
        layer.setRenderer(renderer)
        layer.triggerRepaint()
        styled = True
    return styled
