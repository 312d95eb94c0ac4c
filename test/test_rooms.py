"""The folders say where code may run, and the imports keep to it (read from the sources).

* Nothing QGIS imports (``plugin/``, ``algorithms/``, the package's ``__init__``), directly or
  through other modules, and at module level or inside a function, lives under
  ``model/training/`` or imports TensorFlow or Keras.
* ``model/`` never imports qgis; only ``model/training/`` imports TensorFlow or Keras.
* No import cycle among the package's modules, counting imports inside functions too.
* The core (the modules directly under ``model/``) never steps into ``model/datasets/``,
  ``model/evaluation/`` or ``model/training/``: they build on it, not it on them.
* Research is outside the package: ``research/`` is not in the plugin zip's file list.
* No import runs back up: ``algorithms/`` never imports ``plugin/`` (QGIS's entry point and provider,
  which import the algorithms); what both need lives in ``algorithms/`` or beside the package's
  ``__init__`` (``constants``, ``native_libs``: QGIS-free).
* Tests say where they run: nothing under ``test/model/`` needs QGIS (no qgis import, however reached,
  no QGIS fixture); the QGIS tests are in ``test/algorithms/``, the Dask ones in ``test/scaleout/``.
* ``scaleout/`` runs anywhere with Dask (its single-process engine wherever ``model/`` runs): it may
  import ``model/`` but never ``plugin/``, ``algorithms/``, qgis or TensorFlow; nothing QGIS imports
  reaches it, and it stays out of the plugin zip.
"""

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("plugin", "algorithms", "model", "scaleout")
TENSORFLOW = {"tensorflow", "keras", "tf_keras"}


def package_modules():
    files = sorted(ROOT.glob("*.py")) + [p for d in PACKAGE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    return {p.relative_to(ROOT): p for p in files}


def _resolve(path, level, module):
    """The package file a relative import ``from <level dots><module> import ...`` names, or None."""
    base = path.parent
    for _ in range(level - 1):
        base = base.parent
    target = base.joinpath(*module.split(".")) if module else base
    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)  # the files do not change during a run
def imports_of(path):
    """(package files, top-level external module names) that ``path`` imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside, outside = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            outside.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                outside.add(node.module.split(".")[0])
                continue
            target = _resolve(path, node.level, node.module or "")
            if target is not None:
                inside.add(target)
            if node.module is None or target is not None and target.name == "__init__.py":
                for alias in node.names:  # `from . import shapes` names a submodule
                    sub = _resolve(path, node.level, ".".join(filter(None, [node.module, alias.name])))
                    if sub is not None:
                        inside.add(sub)
    return inside, outside


def reached_from(starts):
    seen, stack = set(), list(starts)
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        stack.extend(imports_of(path)[0] - seen)
    return seen


def test_nothing_qgis_imports_lives_in_the_tensorflow_room():
    modules = package_modules()
    starts = [p for rel, p in modules.items() if rel.parts[0] in ("plugin", "algorithms") or rel.name == "__init__.py"
              and len(rel.parts) == 1]
    reached = reached_from(starts)
    in_training = sorted(str(p.relative_to(ROOT)) for p in reached if (ROOT / "model" / "training") in p.parents)
    assert in_training == []
    with_tensorflow = sorted(str(p.relative_to(ROOT)) for p in reached if imports_of(p)[1] & TENSORFLOW)
    assert with_tensorflow == []


def test_the_cycle_check_would_have_caught_the_old_icon_import(tmp_path):
    """algorithms/base.py took ICON_PATH from plugin/provider.py, which imports algorithms/ when it loads."""
    for name, text in {"pkg/__init__.py": "", "pkg/plugin/__init__.py": "", "pkg/algorithms/__init__.py": "",
                       "pkg/plugin/provider.py": "def load():\n    from ..algorithms import base\n",
                       "pkg/algorithms/base.py": "from ..plugin.provider import ICON_PATH\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cycle = find_cycle(sorted(tmp_path.rglob("*.py")))
    assert cycle is not None and {p.name for p in cycle} == {"provider.py", "base.py"}


def test_the_guard_sees_imports_inside_functions(tmp_path):
    (tmp_path / "pkg" / "training").mkdir(parents=True)
    for name in ("pkg/__init__.py", "pkg/training/__init__.py", "pkg/training/fit.py"):
        (tmp_path / name).write_text("import tensorflow\n" if name.endswith("fit.py") else "")
    caller = tmp_path / "pkg" / "alg.py"
    caller.write_text("def run():\n    from .training.fit import x\n")
    reached = reached_from([caller])
    assert tmp_path / "pkg" / "training" / "fit.py" in reached
    assert imports_of(tmp_path / "pkg" / "training" / "fit.py")[1] == {"tensorflow"}


@pytest.mark.parametrize("rel, path", sorted(package_modules().items()), ids=lambda v: str(v))
def test_each_room_imports_only_what_may_run_there(rel, path):
    outside = imports_of(path)[1]
    if rel.parts[0] == "model":
        assert "qgis" not in outside
        if rel.parts[1] != "training":
            assert not outside & TENSORFLOW
    beside_init = len(rel.parts) == 1 and rel.name != "__init__.py"
    if rel.parts[0] == "algorithms" or beside_init:  # no import runs back up to QGIS's entry point
        inside = {p.relative_to(ROOT).parts[0] for p in imports_of(path)[0]}
        assert "plugin" not in inside, f"{rel} imports plugin/, which imports it"
    if beside_init:  # the package's __init__ reads these without QGIS
        assert "qgis" not in outside
    if rel.parts[0] == "scaleout":
        assert not outside & ({"qgis"} | TENSORFLOW)
        inside = {p.relative_to(ROOT).parts[0] for p in imports_of(path)[0]}
        assert inside <= {"model", "scaleout"}


def core_steps_up(model_dir):
    """``core module -> module`` for each import from a module directly in ``model_dir`` into its
    ``datasets/``, ``evaluation/`` or ``training/`` rooms."""
    above = {model_dir / name for name in ("datasets", "evaluation", "training")}
    return sorted(f"{path.name} -> {target.relative_to(model_dir)}" for path in sorted(model_dir.glob("*.py"))
                  for target in imports_of(path)[0] if above & set(target.parents))


def test_the_core_does_not_step_into_the_rooms_built_on_it():
    assert core_steps_up(ROOT / "model") == []


def test_the_core_wall_would_have_caught_the_report_truth_in_the_core(tmp_path):
    """The Monte-Carlo truth lived in datasets/synthetic.py; a core module reaching for it steps up."""
    for name, text in {"model/__init__.py": "", "model/datasets/__init__.py": "",
                       "model/datasets/synthetic.py": "def monte_carlo_overlap():\n    pass\n",
                       "model/scoring.py": "def truth():\n    from .datasets.synthetic import monte_carlo_overlap\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert core_steps_up(tmp_path / "model") == ["scoring.py -> datasets/synthetic.py"]


def test_nothing_qgis_imports_reaches_the_scaleout_room():
    modules = package_modules()
    starts = [p for rel, p in modules.items() if rel.parts[0] in ("plugin", "algorithms") or rel.name == "__init__.py"
              and len(rel.parts) == 1]
    reached = sorted(str(p.relative_to(ROOT)) for p in reached_from(starts) if (ROOT / "scaleout") in p.parents)
    assert reached == []
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    plugin_files = next(line for line in makefile.splitlines() if line.startswith("PLUGIN_FILES :="))
    assert "scaleout" not in plugin_files.split()  # QGIS never runs it: it stays out of the plugin zip


def find_cycle(files):
    """One import cycle among ``files`` (a list of paths, first repeated last), or None."""
    graph = {p: imports_of(p)[0] for p in files}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(list(package_modules().values()))
    assert cycle is None, " -> ".join(str(p.relative_to(ROOT)) for p in cycle)


def test_research_stays_out_of_the_plugin():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    plugin_files = next(line for line in makefile.splitlines() if line.startswith("PLUGIN_FILES :="))
    assert "research" not in plugin_files.split()
    assert (ROOT / "research" / "compare_architectures.py").is_file()
    assert not list((ROOT / "model").rglob("compare_architectures.py"))


def test_the_readme_layout_names_every_room():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Layout"):]
    rooms = {str(p.parent.relative_to(ROOT)) for d in (*PACKAGE_DIRS, "research", "tools", "test")
             for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts}
    rooms = {r for r in rooms if r.count("/") <= 1 and not r.startswith(("test/", "tools/"))}
    missing = sorted(r for r in rooms if f"| `{r}/` |" not in table)
    assert missing == []


#: Fixtures of pytest-qgis and test/conftest.py that start QGIS or the plugin in it.
QGIS_FIXTURES = {"plugin", "provider", "qgis_process_cli", "qgis_app", "qgis_iface", "qgis_processing", "qgis_new_project",
                 "qgis_canvas", "qgis_parent", "qgis_bot"}


@functools.lru_cache(maxsize=None)
def _reaches_qgis(path):
    return any("qgis" in imports_of(p)[1] for p in reached_from([path]))


def qgis_reasons(path, test_root=ROOT / "test", package_root=ROOT, seen=None):
    """Why the test file ``path`` needs QGIS: the qgis (or processing) imports it reaches, directly, through
    the package (``overlap_relevance.algorithms`` and the like), through test/tools or another test module,
    and the QGIS fixtures it asks for. Empty when it runs in plain Python."""
    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            reasons += [f"fixture {a.arg}" for a in node.args.args if a.arg in QGIS_FIXTURES]
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        for name in names:
            parts = name.split(".")
            if parts[0] in ("qgis", "processing"):
                reasons.append(f"imports {name}")
            elif parts[0] == "overlap_relevance" and len(parts) > 1:
                target = package_root.joinpath(*parts[1:])
                files = [f for f in (target.with_suffix(".py"), target / "__init__.py") if f.is_file()]
                if any(_reaches_qgis(f) for f in files):
                    reasons.append(f"imports {name}, which imports qgis")
            elif parts[0] == "tools" and len(parts) > 1:
                reasons += qgis_reasons(test_root / "tools" / f"{parts[1]}.py", test_root, package_root, seen)
            elif parts[0].startswith("test_"):
                reasons += qgis_reasons(path.parent / f"{parts[0]}.py", test_root, package_root, seen)
    return reasons


def test_nothing_under_the_plain_python_tests_needs_qgis():
    """test/model/ runs without QGIS: no qgis import, however reached, and no QGIS fixture."""
    needs = {str(p.relative_to(ROOT)): qgis_reasons(p) for p in sorted((ROOT / "test" / "model").rglob("*.py"))}
    assert {name: why for name, why in needs.items() if why} == {}


def test_the_plain_python_guard_sees_qgis_however_it_comes(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "layers.py").write_text("def make():\n    from qgis.core import QgsVectorLayer\n")
    cases = {"direct.py": "import qgis.core\n", "inside.py": "def test_x():\n    from processing import run\n",
             "helper.py": "from tools.layers import make\n", "fixture.py": "def test_x(provider):\n    pass\n",
             "package.py": "from overlap_relevance.algorithms.compat import SOURCE_POLYGON\n",
             "sibling.py": "from test_direct import x\n", "test_direct.py": "import qgis.core\n",
             "plain.py": "import numpy\nfrom overlap_relevance.model.fields import names\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    flagged = {name for name in cases if qgis_reasons(tmp_path / name, test_root=tmp_path)}
    assert flagged == set(cases) - {"plain.py"}
