"""Evaluation: what the model card and the HTML report measure, and where its truth comes from.

Plain NumPy, shapely, pyproj (and GDAL for reading real layers): importable inside QGIS, where
``evaluatemodel`` uses :mod:`.report` and :mod:`.report_html`. Nothing here imports TensorFlow.

* :mod:`.metrics`: the measures (errors, agreement, coverage, CRPS) and the targets;
* :mod:`.heldout`: held-out pairs, the matching set, real layers and Monte-Carlo truth;
* :mod:`.measure`: the evaluation steps and :func:`.measure.evaluate`, which runs them all;
* :mod:`.card`: the model card and evaluation.json;
* :mod:`.samplers`, :mod:`.yardstick`: the model against exact QMC and Monte-Carlo sampling at equal
  cost (``python -m overlap_relevance.model.evaluation.yardstick``, also run by ``make evaluate``);
* :mod:`.report`: the same measures on the user's layers (``evaluatemodel``), and :mod:`.report_html`, which draws
  them as an HTML report;
* :mod:`.cli`: ``python -m overlap_relevance.model.evaluation`` (``make evaluate``).
"""
