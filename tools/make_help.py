"""`make help`: write the help pages the algorithms' Help button opens, resources/help/*.html.

The pages are made from the texts the algorithms declare (see algorithms/help.py), so the
help panel, the tooltips and the pages say the same; test/algorithms/test_help.py fails when a page
here is older than its algorithm. Run with the QGIS-side venv's Python (headless QGIS).
"""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pages():
    """{file name: HTML} for every algorithm of the provider, and the index."""
    from overlap_relevance.algorithms import ALGORITHMS
    from overlap_relevance.algorithms.help import help_page, index_page

    algorithms = []
    for algorithm_class in ALGORITHMS:
        algorithm = algorithm_class()
        algorithm.initAlgorithm({})
        algorithms.append(algorithm)
    written = {f"{a.name()}.html": help_page(a) for a in algorithms}
    written["index.html"] = index_page(algorithms)
    return written


def main():
    from qgis.core import QgsApplication

    from overlap_relevance.algorithms.help import HELP_DIR

    application = QgsApplication([], False)
    application.initQgis()
    HELP_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (HELP_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {HELP_DIR / name}")
    application.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
