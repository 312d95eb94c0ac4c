"""Run every install command the plugin prints, as printed, and check what it was meant to give.

Runs inside a compat root with QGIS's Python (/usr/bin/python3), as root and in a throwaway HOME,
so ``pip install --user`` and ``~`` land there; ``sudo`` is dropped (already root). Cases:

* core: what canExecute prints when numpy, shapely 2 and pyproj are missing; afterwards QGIS's
  Python imports shapely >= 2, pyproj, and GDAL's gdal_array (numpy still the major GDAL needs);
* training: what trainmodel prints when the interpreter has no TensorFlow; afterwards the new
  environment's Python imports everything the training process needs and runs a TensorFlow op.

Writes a JSON list of {case, commands, ok, seconds, output} to the path given.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("install_advice", REPO / "algorithms" / "install_advice.py")
advice = importlib.util.module_from_spec(spec)
spec.loader.exec_module(advice)

CORE_CHECK = ("import shapely, pyproj, numpy; from osgeo import gdal_array; "
              "assert int(shapely.__version__.split('.')[0]) >= 2, shapely.__version__; "
              "print('shapely', shapely.__version__, shapely.__file__, 'numpy', numpy.__version__)")
TRAINING_CHECK = ("import tensorflow as tf, numpy, shapely, pyproj; "
                  "print('tensorflow', tf.__version__, float(tf.reduce_sum(tf.ones(3))), 'numpy', numpy.__version__)")


def run_case(name, commands, check_python, check):
    home = tempfile.mkdtemp(prefix="advice-home-")
    env = {**os.environ, "HOME": home}
    started = time.perf_counter()
    output, ok = [], True
    for command in commands:
        command = command[len("sudo "):] if command.startswith("sudo ") and os.geteuid() == 0 else command
        done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True)
        output.append(f"$ {command}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if done.returncode != 0:
            ok = False
            break
    if ok:
        python = home + check_python[1:] if check_python.startswith("~") else check_python
        done = subprocess.run([python, "-c", check], env=env, capture_output=True, text=True)
        output.append(f"$ {python} -c <check>\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        ok = done.returncode == 0
    return {"case": name, "commands": commands, "ok": ok, "seconds": round(time.perf_counter() - started, 1),
            "output": "\n".join(output)}


def main(out):
    core = advice.core_commands(["numpy", "shapely", "pyproj"])
    training, python = advice.training_commands()
    results = [run_case("core packages for QGIS's Python", core, "/usr/bin/python3", CORE_CHECK),
               run_case("training environment", training, python, TRAINING_CHECK)]
    Path(out).write_text(json.dumps(results, indent=2))
    for r in results:
        print(("ok  " if r["ok"] else "FAIL"), r["case"], r["seconds"], "s")
        if not r["ok"]:
            print(r["output"])
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
