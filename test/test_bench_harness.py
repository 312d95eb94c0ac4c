"""`make bench` is not a timed test; here only its harness is checked, on a tiny generated set."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench  # noqa: E402
from exact_baseline import best_per_input  # noqa: E402


def test_best_per_input_picks_highest_iou_and_second():
    index_a = np.array([0, 0, 0, 2, 2])
    iou = np.array([0.2, 0.7, 0.7, 0.0, 0.1])
    best, best_iou, second = best_per_input(index_a, iou, 4)
    assert best.tolist() == [1, -1, 4, -1]  # a tie goes to the earlier pair
    assert best_iou.tolist() == [0.7, 0.0, 0.1, 0.0]
    assert second[0] == 0.7 and second[2] == 0.0 and np.isneginf(second[1])


def test_agreement_leaves_out_zero_and_tied_features():
    exact = {"fids_a": np.array([10, 11, 12, 13]), "best_fid": np.array([5, 6, 7, -1]),
             "best_iou": np.array([0.9, 0.5, 0.4, 0.0]), "second_iou": np.array([0.1, 0.5, 0.0, -np.inf])}
    result = bench.agreement(exact, {10: (5, 0.8999995), 11: (99, 0.5), 12: (8, 0.3), 13: (None, None)})
    assert result["decidable"] == 2  # 11 is tied, 13 has no overlap
    assert result["agreement"] == 0.5 and result["examples"] == [12]
    assert result["largest_iou_error"] == pytest.approx(5e-7)  # over the features that agree: 10 alone


def test_peak_rss_is_the_contestants_own_not_the_benchmarks():
    """A child forked from a large process inherits its peak RSS on Linux; contestants must not."""
    ballast = np.ones(40_000_000)  # 320 MB held by this process while the contestant runs
    wall, peak_mb, _, _, code = bench.run_measured(
        [sys.executable, "-c", "import numpy; a = numpy.ones(12_500_000); print(a.sum())"])
    assert code == 0 and wall > 0
    assert 100 < peak_mb < 250, peak_mb  # its own 100 MB array and interpreter, not this process's 320 MB
    del ballast


def test_quick_bench_writes_every_contestant(tmp_path):
    out = tmp_path / "RESULTS-quick.md"
    done = subprocess.run([sys.executable, str(BENCH / "bench.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.with_name("RESULTS-quick.json").read_text())
    (result,) = data["results"]
    assert result["candidate_pairs"] > 1000
    for key in ("plugin", "plugin_sigma", "match", "native", "exact", "monte_carlo"):
        assert result[key]["median_s"] > 0 and result[key]["peak_rss_mb"] > 50, key
    assert result["plugin"]["pairs"] == result["candidate_pairs"]
    assert set(result["plugin"]["stages_s"]) >= {"reading", "scoring", "writing while scoring", "writing after scoring",
                                                "closing the output"}
    assert 0.95 <= result["plugin"]["agreement"]["agreement"] <= 1.0
    assert result["monte_carlo"]["samples"] == 256 and result["monte_carlo"]["seconds_per_pair"] > 0
    assert result["derived"]["mc_ratio_end_to_end"] > 0
    assert result["match"]["groups"] > 500 and result["derived"]["match_vs_score"] > 0
    text = out.read_text()
    assert "## Targets (issue 7)" in text and "| scorerelevance σ=0 |" in text and "native overlap analysis" in text
    assert "matchfeatures time / scorerelevance time" in text
    assert "QGIS 3." in text


@pytest.mark.parametrize("line, expected", [
    ("Timings: reading 1.46 s, lon/lat 0.85 s, scoring 3.37 s, writing 1.40 s (121506 pairs, 36,055 pairs/s in "
     "scoring).", {"reading": 1.46, "lon/lat": 0.85, "scoring": 3.37, "writing": 1.4}),
    ("Timings: reading 0.31 s, model geometries 0.18 s, scoring 2.60 s, writing while scoring 0.93 s, writing after "
     "scoring 0.12 s, closing the output 0.81 s (121506 pairs, 46,730 pairs/s in scoring).",
     {"reading": 0.31, "model geometries": 0.18, "scoring": 2.6, "writing while scoring": 0.93,
      "writing after scoring": 0.12, "closing the output": 0.81}),
])
def test_scoring_log_is_parsed(line, expected):
    pairs, stages = bench.scoring_log({"json": {"log": {"info": [line, "Scored 121506 candidate pairs; x"]}}})
    assert pairs == 121506 and stages == expected
