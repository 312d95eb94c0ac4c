"""Running the training module in a Python process of its own (TensorFlow never runs inside QGIS).

No QGIS here: the algorithm passes callables for feedback and cancellation.

* :func:`probe_interpreter` imports TensorFlow (and what the training module needs) in
  the chosen interpreter, never in QGIS, and says what is missing;
* :class:`TrainingProcess` starts ``overlap_relevance.model.training.finetune`` with a
  small bootstrap that registers the plugin folder as the package ``overlap_relevance``
  (the folder QGIS loaded may have any name), reads its JSON lines while polling for
  cancellation, and ends it (terminate, then kill after a timeout, then wait) when
  cancelled, so no process is left behind.
"""

import json
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path

from .install_advice import TRAINING_REQUIREMENTS, training_advice

PLUGIN_DIR = Path(__file__).resolve().parents[1]
TRAINING_MODULE = "overlap_relevance.model.training.finetune"
PROBE_TIMEOUT_S = 180
TERMINATE_GRACE_S = 5.0

# Registers the plugin folder (argv[1]) as the package overlap_relevance, then runs argv[2] as __main__.
BOOTSTRAP = (
    "import importlib.util, runpy, sys\n"
    "root, module = sys.argv[1], sys.argv[2]\n"
    "del sys.argv[1:3]\n"
    "spec = importlib.util.spec_from_file_location('overlap_relevance', root + '/__init__.py',"
    " submodule_search_locations=[root])\n"
    "package = importlib.util.module_from_spec(spec)\n"
    "sys.modules['overlap_relevance'] = package\n"
    "spec.loader.exec_module(package)\n"
    "sys.argv[0] = module\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)

PROBE = (
    "import importlib, json, sys\n"
    "missing = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception as error:\n"
    "        missing[name] = f'{type(error).__name__}: {error}'\n"
    "print('PROBE ' + json.dumps({'missing': missing, 'version': sys.version.split()[0],"
    " 'executable': sys.executable}), flush=True)\n"
)


class InterpreterError(RuntimeError):
    """The interpreter cannot run training; the message says what to do."""


def child_environment():
    """The environment of the training process.

    QGIS's own PYTHONPATH / PYTHONHOME describe QGIS's Python, not the chosen interpreter
    (and could hand it QGIS's packages), so they are left out; TensorFlow's C++ logging
    is quietened and output is unbuffered so epochs arrive as they end.
    """
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _creation_flags():
    return getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0


def resolve_interpreter(interpreter):
    """The interpreter as a runnable path (a bare name is looked up on the PATH); InterpreterError if none."""
    if os.sep in interpreter or (os.altsep and os.altsep in interpreter):
        if not Path(interpreter).is_file():
            raise InterpreterError(f"The Python interpreter for training does not exist: {interpreter}")
        return interpreter
    found = shutil.which(interpreter)
    if found is None:
        raise InterpreterError(f"The Python interpreter for training, '{interpreter}', is not on the PATH.")
    return found


def probe_interpreter(interpreter, timeout=PROBE_TIMEOUT_S):
    """Import what training needs in ``interpreter`` (a separate process). InterpreterError when it cannot.

    Returns a dict with the interpreter's ``version`` and ``executable``.
    """
    path = resolve_interpreter(interpreter)
    modules = [name for name, _ in TRAINING_REQUIREMENTS]
    try:
        result = subprocess.run([path, "-c", PROBE, *modules], env=child_environment(), capture_output=True,
                                text=True, encoding="utf-8", errors="replace", timeout=timeout,
                                creationflags=_creation_flags())
    except subprocess.TimeoutExpired:
        raise InterpreterError(f"{interpreter} did not finish importing TensorFlow within {timeout} s.") from None
    except OSError as error:
        raise InterpreterError(f"Cannot run the Python interpreter for training, {interpreter}: {error}") from None
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("PROBE ")), None)
    if line is None:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise InterpreterError(f"{interpreter} could not check for TensorFlow (exit code {result.returncode}):\n"
                               f"{tail}")
    report = json.loads(line[len("PROBE "):])
    if report["missing"]:
        details = "; ".join(f"{name} ({reason})" for name, reason in report["missing"].items())
        raise InterpreterError(
            f"Training needs TensorFlow in a separate Python interpreter, and {interpreter} (Python "
            f"{report['version']}) cannot import: {details}.\n" + training_advice(interpreter))
    return report


class TrainingProcess:
    """The training module running in ``interpreter``; iterate :meth:`events` to follow it."""

    def __init__(self, interpreter, arguments, plugin_dir=PLUGIN_DIR, module=TRAINING_MODULE):
        self.command = [resolve_interpreter(interpreter), "-u", "-c", BOOTSTRAP, str(plugin_dir), module,
                        *map(str, arguments)]
        self.process = None
        self.stderr_tail = deque(maxlen=60)
        self._lines = queue.Queue()
        self._readers = []

    @property
    def pid(self):
        return None if self.process is None else self.process.pid

    def start(self):
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=child_environment(), text=True, encoding="utf-8", errors="replace", bufsize=1,
                creationflags=_creation_flags())
        except OSError as error:
            raise InterpreterError(f"Cannot start the training process ({self.command[0]}): {error}") from None
        for stream, sink, marks_end in ((self.process.stdout, self._lines.put, True),
                                        (self.process.stderr, self.stderr_tail.append, False)):
            reader = threading.Thread(target=self._pump, args=(stream, sink, marks_end), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    @staticmethod
    def _pump(stream, sink, marks_end):
        """Hand every line of ``stream`` to ``sink``; None at the end when ``marks_end``."""
        try:
            for line in stream:
                sink(line.rstrip("\r\n"))
        except (OSError, ValueError):  # the stream closed under us when the process was ended
            pass
        finally:
            if marks_end:
                sink(None)

    def events(self, cancelled, poll_s=0.1):
        """Yield ``("event", dict)`` for each JSON line and ``("text", str)`` for other stdout lines.

        Stops when stdout ends (the process exits); when ``cancelled()`` turns True the
        process is ended (:meth:`stop`) and iteration stops.
        """
        while True:
            if cancelled():
                self.stop()
                return
            try:
                line = self._lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if line is None:
                return
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and "event" in event:
                yield "event", event
            elif line.strip():
                yield "text", line

    def wait(self, timeout=None):
        """The exit code, once the process has ended."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout=2.0)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not any(reader.is_alive() for reader in self._readers):
                stream.close()
        return code

    def stop(self, grace_s=TERMINATE_GRACE_S):
        """End the process: terminate, kill after ``grace_s`` if it is still there, and reap it."""
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                self.wait()
            return
        self.process.terminate()
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.wait()

    def error_text(self, lines=25):
        """The last lines the process wrote to stderr."""
        return "\n".join(list(self.stderr_tail)[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

