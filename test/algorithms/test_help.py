"""Findable, explained once, with a Help button that opens a page that exists."""

import html
from pathlib import Path

import pytest
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QUrl

from tools.qgis_process import REPO_ROOT

PROVIDER_ID = "overlaprelevance"
MAIN = "overlaprelevance:scorerelevance"


def _algorithms():
    return sorted(QgsApplication.processingRegistry().providerById(PROVIDER_ID).algorithms(), key=lambda a: a.id())


def test_help_pages_are_current_and_the_help_button_opens_them(provider):
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        from make_help import pages
    finally:
        sys.path.remove(str(REPO_ROOT / "tools"))
    help_dir = REPO_ROOT / "resources" / "help"
    for name, text in pages().items():
        shipped = help_dir / name
        assert shipped.is_file() and shipped.read_text(encoding="utf-8") == text, f"run `make help`: {name} is stale"
    for algorithm in _algorithms():
        url = QUrl(algorithm.helpUrl())
        assert url.isLocalFile(), algorithm.helpUrl()
        page = Path(url.toLocalFile())
        assert page.is_file() and page.parent == help_dir
        text = page.read_text(encoding="utf-8")
        for parameter in algorithm.parameterDefinitions():  # every parameter is on the page, with its help
            assert f"<code>{parameter.name()}</code>" in text
            if parameter.help():
                assert html.escape(parameter.help()) in text


def test_every_algorithm_is_findable_and_briefly_explained(provider):
    for algorithm in _algorithms():
        description = algorithm.shortDescription()
        assert description and len(description) < 120 and "\n" not in description, algorithm.id()
        tags = algorithm.tags()
        assert {"overlap", "relevance", "iou"} <= set(tags), algorithm.id()
        help_text = algorithm.shortHelpString()
        assert 200 < len(help_text) < 2500, (algorithm.id(), len(help_text))  # a few sentences, not a manual
        assert "Input layers</h3>" not in help_text  # the shared parameter text lives in the tooltips and page
        for parameter in algorithm.parameterDefinitions():
            label = parameter.description()
            assert "optional" not in label.lower(), f"{algorithm.id()}: '{label}' (QGIS adds [optional] itself)"
            if not parameter.isDestination():
                assert parameter.help(), f"{algorithm.id()}:{parameter.name()} has no help (tooltip)"
    by_id = {a.id(): a for a in _algorithms()}
    assert "INPUT_KEY" not in {p.name() for p in by_id[MAIN].parameterDefinitions()}
    assert "key field" not in by_id[MAIN].shortHelpString().lower()  # no input key: its help does not speak of one
    assert "Reference" not in by_id["overlaprelevance:exactoverlap"].displayName().replace("reference", "")


@pytest.mark.parametrize("query", ["match", "IoU", "conflation", "join", "uncertainty", "overlap"])
def test_the_toolbox_search_finds_the_main_algorithm(provider, query):
    """The toolbox's own filter model (what the search box drives) matches names, tags and descriptions."""
    from qgis.gui import QgsProcessingToolboxModel, QgsProcessingToolboxProxyModel

    model = QgsProcessingToolboxModel(None, QgsApplication.processingRegistry())
    proxy = QgsProcessingToolboxProxyModel(None, QgsApplication.processingRegistry())
    proxy.setFilterString(query)
    found = set()

    def walk(parent):
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            algorithm = proxy.toolboxModel().algorithmForIndex(proxy.mapToSource(index))
            if algorithm is not None:
                found.add(algorithm.id())
            walk(index)

    walk(proxy.index(-1, -1))
    del model
    assert MAIN in found, (query, sorted(found))


def test_the_main_algorithm_comes_first_in_the_toolbox(provider):
    """The toolbox sorts groups, then algorithms, by name: the main algorithm's group sorts first."""
    groups = sorted({a.group() for a in _algorithms()})
    main = QgsApplication.processingRegistry().algorithmById(MAIN)
    assert groups[0] == main.group()
    first_group = sorted((a for a in _algorithms() if a.group() == groups[0]), key=lambda a: a.displayName())
    assert [a.id() for a in first_group] == ["overlaprelevance:matchfeatures", MAIN]  # the two that answer "which?"


def test_defaults_that_serve_most_users_are_advanced(provider):
    from overlap_relevance.algorithms.compat import PARAMETER_ADVANCED

    def advanced(algorithm_id):
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        return {p.name() for p in algorithm.parameterDefinitions() if p.flags() & PARAMETER_ADVANCED}

    assert {"THRESHOLD", "MODEL", "FIELD_PREFIX"} <= advanced(MAIN)
    assert "SEED" in advanced("overlaprelevance:trainmodel") and "SEED" in advanced("overlaprelevance:evaluatemodel")
    assert "MODEL" not in advanced("overlaprelevance:evaluatemodel")  # choosing the model is the point there
    sigma = QgsApplication.processingRegistry().algorithmById(MAIN).parameterDefinition("POSITIONAL_UNCERTAINTY")
    assert sigma.metadata()["widget_wrapper"]["decimals"] == 2


def test_help_tables_have_headers_and_every_cell_filled():
    import re

    for page in sorted((REPO_ROOT / "resources" / "help").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for table in re.findall(r"<table>(.*?)</table>", text, flags=re.S):
            rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
            headers = re.findall(r"<th>(.*?)</th>", rows[0])
            assert headers and all(h.strip() for h in headers), (page.name, headers)
            for row in rows[1:]:
                cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
                assert len(cells) == len(headers) and all(cells), (page.name, row)


def test_the_model_card_is_linked_from_the_help_pages():
    import re

    linked = 0
    for page in sorted((REPO_ROOT / "resources" / "help").glob("*.html")):
        for target in re.findall(r'href="([^"]*MODEL_CARD\.md)"', page.read_text(encoding="utf-8")):
            assert (page.parent / target).resolve() == REPO_ROOT / "model" / "MODEL_CARD.md"
            linked += 1
    assert linked >= 4  # every algorithm that runs the model
