"""`make bench`: the yardstick on its own, the model against exact QMC and Monte-Carlo sampling at equal cost.

Runs :func:`overlap_relevance.model.evaluation.yardstick.run_yardstick` (held-out synthetic pairs, the
building sample and world_map; the model, GEOS QMC-k and MC-k, the sweep, and the exact-kernel QMC-k
with and without the exact mean as a control (``--exact-ks``, none to leave them out); about 15 minutes
on 2 cores) and writes the bench's own copy of the
results: ``test/benchmarks/RESULTS_YARDSTICK.md``, ``results_yardstick.json`` and ``yardstick.png``
next to it (``make evaluate`` writes the model card's copy, ``model/yardstick.*``). Options are the
yardstick's (``--pairs``, ``--truth-draws``, ``--repeats``, ``--model``, ...); ``--help`` lists them.
"""

import sys
from pathlib import Path

from overlap_relevance.model.evaluation import yardstick

HERE = Path(__file__).resolve().parent


def main(argv=None):
    outputs = ["--out-json", str(HERE / "results_yardstick.json"), "--out-md", str(HERE / "RESULTS_YARDSTICK.md"),
               "--plot", str(HERE / "yardstick.png")]
    return yardstick.main(outputs + list(sys.argv[1:] if argv is None else argv))  # later options win


if __name__ == "__main__":
    main()
