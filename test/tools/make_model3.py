"""Build test/data/match_and_extract.model3: scorerelevance chained with native:extractbyexpression.

Run with the venv's Python (it starts QGIS headless). The model has two polygon
inputs, `input` and `reference`, and one output, `matched`: the input features
whose best match has rel_p >= 0.5.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
)

OUT = Path(__file__).resolve().parents[1] / "data" / "match_and_extract.model3"


def build():
    model = QgsProcessingModelAlgorithm("Match and extract", "Overlap relevance tests")
    for name in ("input", "reference"):
        model.addModelParameter(QgsProcessingParameterFeatureSource(name, name.capitalize(), [2]),
                                QgsProcessingModelParameter(name))
    score = QgsProcessingModelChildAlgorithm("overlaprelevance:scorerelevance")
    score.setChildId("score")
    score.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("input")])
    score.addParameterSources("REFERENCE", [QgsProcessingModelChildParameterSource.fromModelParameter("reference")])
    model.addChildAlgorithm(score)
    extract = QgsProcessingModelChildAlgorithm("native:extractbyexpression")
    extract.setChildId("extract")
    extract.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("score", "OUTPUT")])
    extract.addParameterSources("EXPRESSION", [QgsProcessingModelChildParameterSource.fromStaticValue(
        '"rel_p" >= 0.5')])
    output = QgsProcessingModelOutput("matched")
    output.setChildOutputName("OUTPUT")
    extract.setModelOutputs({"matched": output})
    model.addChildAlgorithm(extract)
    return model


def main():
    app = QgsApplication([], False)
    app.initQgis()
    model = build()
    if not model.toFile(str(OUT)):
        sys.exit(f"could not write {OUT}")
    print(f"written {OUT}")
    app.exitQgis()


if __name__ == "__main__":
    main()
