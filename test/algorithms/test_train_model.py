"""overlaprelevance:trainmodel: a tiny real training run in a separate Python, its errors and its cancel.

TensorFlow runs only in the training process the algorithm starts (the venv's Python by
default); this pytest process, which hosts QGIS, never imports it.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

from tools.geometry import ORIGIN, UTM
from tools.layers import layer_rows, memory_layer

ALGORITHM = "overlaprelevance:trainmodel"
SYSTEM_PYTHON = "/usr/bin/python3"


def _layers(n=140, seed=5):
    """Buildings from two sources: the reference copy shifted by up to 1.5 m and slightly resized, with a
    neighbour next to every third building, so pairs range from near-identical to touching."""
    rng = np.random.default_rng(seed)
    a, b, counterpart = [], [], []
    for i in range(n):
        x, y = ORIGIN[0] + 40.0 * (i % 12), ORIGIN[1] + 40.0 * (i // 12)
        w, h = rng.uniform(8, 22, 2)
        a.append(shapely.box(x, y, x + w, y + h))
        dx, dy = rng.uniform(-1.5, 1.5, 2)
        s = rng.uniform(0.95, 1.05)
        counterpart.append(len(b))
        b.append(shapely.box(x + dx, y + dy, x + dx + w * s, y + dy + h * s))
        if i % 3 == 0:
            b.append(shapely.box(x + w + 0.5, y, x + w + 8.5, y + h))
    return (memory_layer(a, UTM, {"a_id": list(range(len(a))), "counterpart": counterpart}, name="mapped"),
            memory_layer(b, UTM, {"b_id": list(range(len(b)))}, name="cadastre"))


@pytest.fixture(scope="module")
def layers():
    return _layers()


@pytest.fixture
def default_interpreter(monkeypatch):
    """No interpreter setting and no environment override: the plugin's .venv-train Python is used."""
    from overlap_relevance.algorithms.settings import PYTHON_ENV, set_training_interpreter

    monkeypatch.delenv(PYTHON_ENV, raising=False)
    set_training_interpreter(None)
    yield
    set_training_interpreter(None)


class Recorder(QgsProcessingFeedback):
    """Keeps every info line; optionally cancels once the first epoch has been reported."""

    def __init__(self, cancel_after_first_epoch=False):
        super().__init__()
        self.lines = []
        self.pid = None
        self.cancel_after_first_epoch = cancel_after_first_epoch
        self.cancelled_at = None

    def pushInfo(self, info):  # noqa: N802 (QGIS's name)
        self.lines.append(info)
        found = re.search(r"Training process started \(pid (\d+)\)", info)
        if found:
            self.pid = int(found.group(1))
        if self.cancel_after_first_epoch and info.startswith("Epoch 1/") and self.cancelled_at is None:
            self.cancelled_at = time.perf_counter()
            self.cancel()
        super().pushInfo(info)


def _parameters(layers, out, **more):
    parameters = {"INPUT": layers[0], "REFERENCE": layers[1], "POSITIONAL_UNCERTAINTY": 0.5, "DISPLACEMENTS": 2,
                  "SYNTHETIC_PAIRS": 200, "EPOCHS": 2, "SEED": 4, "OUTPUT_MODEL": str(out)}
    parameters.update(more)
    return parameters


def _process_gone(pid):
    """True when process ``pid`` no longer exists (an unreaped zombie still counts as there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


def test_tiny_training_run_gives_a_model_that_loads_and_scores(provider, layers, default_interpreter, tmp_path):
    import processing
    from overlap_relevance.model import load_model
    from overlap_relevance.model.network import BUNDLED_MODEL, load_model_file
    from overlap_relevance.model.datasets.synthetic import recipe_hash

    named = tmp_path / "models" / "tiny_model"  # no extension: '.npz' is added, as QGIS does for its outputs
    out = tmp_path / "models" / "tiny_model.npz"
    feedback = Recorder()
    started = time.perf_counter()
    result = processing.run(ALGORITHM, _parameters(layers, named), feedback=feedback)
    seconds = time.perf_counter() - started
    print(f"tiny training run: {seconds:.1f} s")
    assert result["OUTPUT_MODEL"] == str(out) and out.is_file() and not named.exists()
    assert any(line.startswith(f"Model written: {out} ") for line in feedback.lines)
    assert result["LAYER_PAIRS"] > 140
    assert result["TRAINING_SAMPLES"] == 3 * result["LAYER_PAIRS"] + 200  # σ = 0 + 2 displacements, + synthetic
    assert np.isfinite(result["FINAL_VAL_LOSS"])
    epochs = [line for line in feedback.lines if line.startswith("Epoch ")]
    assert [line.split(",")[0] for line in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    assert "loss" in epochs[0]

    model = load_model(out)  # verifies format and SHA-256
    training = model.config["training"]
    assert training["kind"] == "fine-tune" and training["epochs"] == 2
    assert training["started_from"]["weights_sha256"] == load_model_file(BUNDLED_MODEL)[0]["weights_sha256"]
    assert training["recipe_hash"] == recipe_hash()
    data = training["data"]
    assert data["sigma_m"] == 0.5 and data["layer_pairs"] == result["LAYER_PAIRS"]
    assert data["synthetic_pairs"] == 200 and data["displacements_per_pair"] == 2
    assert data["source_layers"]["input"]["name"] == "mapped"
    assert data["source_layers"]["reference"]["features"] == layers[1].featureCount()
    assert len(training["history"]["loss"]) == 2
    assert model.config["weights_sha256"] != training["started_from"]["weights_sha256"]

    scored = processing.run("overlaprelevance:scorerelevance", {
        "INPUT": layers[0], "REFERENCE": layers[1], "REFERENCE_KEY": "b_id", "POSITIONAL_UNCERTAINTY": 0.5,
        "MODEL": str(out), "OUTPUT": "memory:"})["OUTPUT"]
    rows = layer_rows(scored)
    assert len(rows) == layers[0].featureCount()
    scores = np.array([row["rel_score"] for row in rows], dtype=float)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.mean(scores) > 0.5  # the counterparts overlap by far most
    assert all(row["rel_match"] == row["counterpart"] for row in rows)


def test_missing_tensorflow_is_a_clear_error(provider, layers, default_interpreter, tmp_path):
    import processing
    from overlap_relevance.algorithms.settings import set_training_interpreter

    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import tensorflow"], capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if probe.returncode == 0:
        pytest.skip(f"{SYSTEM_PYTHON} has TensorFlow here")
    set_training_interpreter(SYSTEM_PYTHON)
    out = tmp_path / "never.npz"
    with pytest.raises(QgsProcessingException) as info:
        processing.run(ALGORITHM, _parameters(layers, out))
    message = str(info.value)
    assert "tensorflow" in message.lower() and SYSTEM_PYTHON in message
    from overlap_relevance.algorithms.install_advice import training_commands

    commands, python = training_commands()
    assert all(command in message for command in commands) and python in message
    assert f"{SYSTEM_PYTHON} -m pip install 'tensorflow-cpu==2.21.*'" in message
    assert "Python interpreter for training" in message and "OVERLAP_RELEVANCE_PYTHON" in message
    assert not out.exists()


def test_an_interpreter_that_does_not_exist_is_a_clear_error(provider, layers, default_interpreter, tmp_path):
    import processing
    from overlap_relevance.algorithms.settings import set_training_interpreter

    set_training_interpreter(str(tmp_path / "no" / "python"))
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run(ALGORITHM, _parameters(layers, tmp_path / "never.npz"))


def test_cancel_ends_the_training_process_and_writes_nothing(provider, layers, default_interpreter, tmp_path):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = Recorder(cancel_after_first_epoch=True)
    out = tmp_path / "cancelled.npz"
    results, ok = algorithm.run(_parameters(layers, out, EPOCHS=200, SYNTHETIC_PAIRS=0), context, feedback)
    finished = time.perf_counter()
    assert feedback.pid is not None, "the training process was never started"
    assert feedback.cancelled_at is not None, "training ended before it could be cancelled"
    assert finished - feedback.cancelled_at < 10, f"took {finished - feedback.cancelled_at:.1f} s to stop"
    assert not results or "OUTPUT_MODEL" not in results
    assert not out.exists() and not Path(str(out) + ".partial").exists()
    assert _process_gone(feedback.pid), f"training process {feedback.pid} is still there"


def test_the_interpreter_setting_shows_in_processing_options(provider):
    from processing.core.ProcessingConfig import ProcessingConfig

    from overlap_relevance.algorithms.settings import PYTHON_KEY, PYTHON_OPTION, set_training_interpreter, \
        training_interpreter

    setting = ProcessingConfig.settings[PYTHON_OPTION]
    assert setting.group == provider.name() and setting.qname == PYTHON_KEY
    set_training_interpreter(SYSTEM_PYTHON)
    try:
        assert training_interpreter() == (SYSTEM_PYTHON, "setting")
    finally:
        set_training_interpreter(None)
    interpreter, origin = training_interpreter()
    assert origin in ("default", "environment")


def test_training_modules_leave_tensorflow_out_of_the_qgis_process():
    code = ("import sys; import qgis.core; import overlap_relevance.algorithms.train_model, "
            "overlap_relevance.algorithms.evaluate_model, overlap_relevance.algorithms.training_process, "
            "overlap_relevance.model.datasets.layer_data, overlap_relevance.model.evaluation.measure, "
            "overlap_relevance.model.evaluation.report, overlap_relevance.model.evaluation.report_html; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert result.returncode == 0, result.stderr[-2000:]
