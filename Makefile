# overlap_relevance: every target installs what it needs first (see `setup`).
#
# Two environments, both from QGIS's own Python (/usr/bin/python3, whatever its version):
#   .venv        QGIS's side: --system-site-packages, so QGIS, GDAL and the distribution's numpy,
#                scipy, matplotlib, pyproj (and shapely where it is 2.x) are the ones QGIS uses;
#                pip adds only what is missing or too old (shapely 2 on Debian 12, pytest plugins).
#   .venv-train  TensorFlow for training and its tests: self-contained and pinned. TensorFlow
#                never runs inside QGIS, and its numpy needs (>= 1.26) do not touch QGIS's side.
SHELL := /bin/bash
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
# QGIS's Python package; from QGIS 3.40 on, it imports shapely when it starts.
QGIS_CORE_INIT := /usr/lib/python3/dist-packages/qgis/core/__init__.py
# shapely built from source where QGIS imports shapely and the distribution's is older than 2.
SHAPELY_SOURCE := 2.1.2
TRAIN_VENV := .venv-train
TRAIN_PYTHON := $(TRAIN_VENV)/bin/python
TRAIN_STAMP := $(TRAIN_VENV)/.setup-done
# .venv-dask: Dask, geopandas and the overlap-relevance command line; self-contained and pinned. geopandas
# brings PyPI's pyproj, which must never enter QGIS's Python, so this environment never serves QGIS.
DASK_VENV := .venv-dask
DASK_PYTHON := $(DASK_VENV)/bin/python
DASK_STAMP := $(DASK_VENV)/.setup-done
# The shapely a new user may meet instead of ours, unpacked (never installed) for test/algorithms/test_first_contact.py:
# 1.8 (Debian 12's, the old macOS package's) and a PyPI wheel with its own GEOS. PYTHONPATH points at one.
SHAPELY_VARIANTS := $(VENV)/shapely-variants
SHAPELY_VARIANTS_STAMP := $(SHAPELY_VARIANTS)/.done
SHAPELY_VARIANT_PINS := shapely-1.8=1.8.5.post1 shapely-wheel=2.1.2
BUILD := build
ZIP := $(BUILD)/overlap_relevance.zip
# Files and folders that make up the installable plugin (tests, tooling and caches stay out).
PLUGIN_FILES := __init__.py constants.py native_libs.py metadata.txt LICENSE README.md plugin algorithms model resources

export QT_QPA_PLATFORM := offscreen
# The environments must not depend on the caller's shell. A PYTHONPATH (the README's qgis_process lines export
# one), PYTHONHOME, an activated venv or a user site would make pip take another environment's packages as
# installed (a .venv-train without `packaging`) or start another Python's standard library; PIP_TARGET and the
# like would send pip's installs elsewhere or without their dependencies. No recipe sees them. pip's own
# configuration (PIP_CERT, PIP_INDEX_URL, PIP_FIND_LINKS, ...: what the machine needs to reach packages) stays.
unexport PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP PYTHONINSPECT VIRTUAL_ENV
unexport PIP_TARGET PIP_PREFIX PIP_ROOT PIP_USER PIP_NO_DEPS PIP_NO_DEPENDENCIES
export PYTHONNOUSERSITE := 1
# TEST_REPORTS=DIR writes a JUnit XML file per pytest run there (used by make test-compat).
junit = $(if $(TEST_REPORTS),--junitxml=$(TEST_REPORTS)/$(1).xml)
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider
TRAIN_PYTEST := $(TRAIN_PYTHON) -m pytest -p no:cacheprovider -p no:pytest_qgis
DASK_PYTEST := $(DASK_PYTHON) -m pytest -p no:cacheprovider -p no:pytest_qgis

.PHONY: setup setup-train setup-dask link-package system-packages test test-slow test-compat test-dask bench bench-dask demo help screenshots zip train evaluate clean

## setup: internal; installs QGIS (Debian packages, newest the release offers) and the QGIS-side venv
setup: system-packages $(STAMP) $(SHAPELY_VARIANTS_STAMP)

system-packages:
	@sh tools/system_packages.sh

# The venv's pip packages must use the numpy major that the distribution's GDAL was built with.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt tools/missing_requirements.py
	@test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(SYSTEM_PYTHON) -c 'import numpy; print("numpy==%s.*" % numpy.__version__.split(".")[0])' > $(VENV)/numpy-constraint.txt
	$(PYTHON) tools/missing_requirements.py requirements-dev.txt > $(VENV)/missing.txt
	@echo "pip installs: $$(tr '\n' ' ' < $(VENV)/missing.txt)"
	@# QGIS >= 3.40 imports shapely itself, before any plugin: a wheel's bundled GEOS would then mix with
	@# the GEOS QGIS is linked to. Where the distribution's shapely is too old for that (Debian 12 with
	@# QGIS from backports), shapely 2 is built on the system's GEOS and the distribution's numpy.
	@if grep -qs "import shapely" $(QGIS_CORE_INIT) && grep -q '^shapely' $(VENV)/missing.txt; then \
	  echo "QGIS imports shapely itself: building shapely $(SHAPELY_SOURCE) on the system's GEOS"; \
	  $(PYTHON) -m pip install -q -c $(VENV)/numpy-constraint.txt "cython>=3.0" setuptools wheel && \
	  $(PYTHON) -m pip install -q --no-build-isolation --no-binary shapely -c $(VENV)/numpy-constraint.txt \
	    "shapely==$(SHAPELY_SOURCE)" || exit 1; \
	  sed -i '/^shapely/d' $(VENV)/missing.txt; fi
	@if [ -s $(VENV)/missing.txt ]; then \
	  $(PYTHON) -m pip install -q -r $(VENV)/missing.txt -c constraints.txt -c $(VENV)/numpy-constraint.txt; fi
	@$(MAKE) --no-print-directory link-package VENV_DIR=$(VENV) \
	  PTH_EXTRA='import os; os.environ.setdefault("PROJ_DATA", "/usr/share/proj")'
	touch $@

# Wheels for QGIS's Python version, from PyPI; where one does not exist (shapely 1.8 has none after
# Python 3.11) or there is no network, the tests that need it are skipped and say why.
$(SHAPELY_VARIANTS_STAMP):
	@mkdir -p $(SHAPELY_VARIANTS)/wheels
	@for pin in $(SHAPELY_VARIANT_PINS); do name=$${pin%%=*}; version=$${pin#*=}; \
	  rm -rf $(SHAPELY_VARIANTS)/$$name; \
	  if $(SYSTEM_PYTHON) -m pip download -q --no-deps --only-binary=:all: -d $(SHAPELY_VARIANTS)/wheels \
	       "shapely==$$version" 2>/dev/null; then \
	    wheel=$$(ls $(SHAPELY_VARIANTS)/wheels/[Ss]hapely-$$version-*.whl | head -1) && \
	    $(SYSTEM_PYTHON) -m zipfile -e "$$wheel" $(SHAPELY_VARIANTS)/$$name; \
	  else echo "No shapely $$version wheel for this Python: test/algorithms/test_first_contact.py skips that case"; fi; done
	touch $@

## setup-train: internal; the TensorFlow environment for `make train` and the training tests
setup-train: $(TRAIN_STAMP)

$(TRAIN_STAMP): requirements-train.txt constraints-train.txt
	@test -x $(TRAIN_PYTHON) || $(SYSTEM_PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_PYTHON) -m pip install -q -r requirements-train.txt -c constraints-train.txt
	@$(MAKE) --no-print-directory link-package VENV_DIR=$(TRAIN_VENV)
	touch $@

## setup-dask: internal; the Dask environment for the overlap-relevance command line and `make test-dask`
setup-dask: $(DASK_STAMP)

$(DASK_STAMP): requirements-dask.txt constraints-dask.txt
	@test -x $(DASK_PYTHON) || $(SYSTEM_PYTHON) -m venv $(DASK_VENV)
	$(DASK_PYTHON) -m pip install -q -r requirements-dask.txt -c constraints-dask.txt
	@$(MAKE) --no-print-directory link-package VENV_DIR=$(DASK_VENV)
	@# The command line: a launcher for the linked package (the venv does not pip-install the project).
	@# The guard matters: Dask's worker processes are spawned, and re-run the main script without it.
	printf '#!%s\nimport sys\nfrom overlap_relevance.scaleout.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n' \
	  "$(CURDIR)/$(DASK_PYTHON)" > $(DASK_VENV)/bin/overlap-relevance && chmod +x $(DASK_VENV)/bin/overlap-relevance
	touch $@

# The package is importable as `overlap_relevance` through a symlink, which also serves as the
# QGIS_PLUGINPATH folder for qgis_process. PTH_EXTRA is a line run at start-up: in .venv, Debian's
# pyproj looks for PROJ data under sys.prefix, which is the venv (.venv-train's pyproj has its own).
link-package:
	mkdir -p $(VENV_DIR)/plugins && ln -sfn $(CURDIR) $(VENV_DIR)/plugins/overlap_relevance
	site=$$($(VENV_DIR)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  printf '%s\n' "$(CURDIR)/$(VENV_DIR)/plugins" $(if $(PTH_EXTRA),'$(PTH_EXTRA)') > "$$site/overlap_relevance_dev.pth"

## test: the whole fast suite, headless
test: setup setup-train setup-dask
	$(PYTEST) -m "not slow" $(call junit,qgis) test
	@# TensorFlow cannot share a process with QGIS: the training tests run on their own.
	$(TRAIN_PYTEST) -m "not slow" $(call junit,training) test/model/training
	@# Dask and geopandas (PyPI's pyproj) never enter QGIS's Python: the Dask tests run in .venv-dask.
	$(DASK_PYTEST) -m "not slow" $(call junit,dask) test/scaleout
	@# The compiled (numba) kernels against the NumPy ones, bit for bit: numba is in .venv-dask only.
	OVERLAP_RELEVANCE_REQUIRE_NUMBA=1 $(DASK_PYTEST) -m "not slow" $(call junit,compiled) test/model/test_shift_overlap.py test/model/test_shift_moments.py test/model/test_assignment.py

## test-slow: the checks too slow for CI
test-slow: setup setup-train setup-dask
	@# pytest exits 5 when a folder has no slow test yet; that is not a failure.
	$(PYTEST) -m slow test || [ $$? -eq 5 ]
	$(TRAIN_PYTEST) -m slow test/model/training || [ $$? -eq 5 ]
	@# 1M x 1M scored and matched by the Dask engine and by one process, feature by feature.
	$(DASK_PYTEST) -m slow test/scaleout || [ $$? -eq 5 ]

## test-dask: the Dask engine and the command line against the single process (QGIS not importable there)
test-dask: setup-dask
	$(DASK_PYTEST) -m "not slow" $(call junit,dask) test/scaleout

## test-compat: the fast suite on QGIS 3.22, 3.40 and 3.44, each in a cached Debian root under
## build/compat/ (debootstrap; needs root); writes tools/compat/RESULTS.md
test-compat:
	$(SYSTEM_PYTHON) tools/compat/run.py

## bench: the plugin against native overlap analysis, an exact shapely script and Monte Carlo, on the
## bundled sample, a generated 100k x 100k building set and QGIS's world_map; writes test/benchmarks/RESULTS.md;
## then the model against the strongest sampler (randomised QMC of exact overlays): RESULTS_YARDSTICK.md;
## then one large component's one-to-one assignment, sparse against dense and SciPy: RESULTS_ASSIGNMENT.md
bench: setup
	$(PYTHON) test/benchmarks/bench.py
	@# The model against exact QMC and Monte-Carlo sampling at equal cost: RESULTS_YARDSTICK.md, yardstick.png
	$(PYTHON) test/benchmarks/bench_yardstick.py
	@# 1,000 and 10,000 features per layer in one component: seconds and peak RSS per solver
	$(PYTHON) test/benchmarks/bench_assignment.py

## bench-dask: the Dask engine on a generated 1M x 1M building set, 1 and 2 workers, against one process;
## writes test/benchmarks/RESULTS_DASK.md
bench-dask: setup-dask
	nice -n 10 $(DASK_PYTHON) test/benchmarks/bench_dask.py

## demo: the main job through qgis_process on the bundled sample data
demo: setup
	$(PYTHON) test/tools/demo.py

## train: train the bundled model on the CPU (seeded; writes model/overlap_mdn.npz and .keras)
train: setup-train
	$(TRAIN_PYTHON) -m overlap_relevance.model.training.train

## evaluate: held-out evaluation of the bundled model; writes model/MODEL_CARD.md
evaluate: setup setup-train
	@# The convergence runs train with TensorFlow: they run in .venv-train's Python, a process of their own.
	OVERLAP_RELEVANCE_PYTHON=$(TRAIN_PYTHON) $(PYTHON) -m overlap_relevance.model.evaluation

## help: write the algorithms' help pages, resources/help/*.html (the dialogs' Help button opens them)
help: setup
	$(PYTHON) tools/make_help.py

## screenshots: the QGIS desktop, under Xvfb, photographs the dialog, the styled outputs and the report into docs/
screenshots: setup
	@command -v xvfb-run >/dev/null || (apt-get update -qq && apt-get install -y -qq xvfb)
	$(SYSTEM_PYTHON) tools/screenshots.py

## zip: an installable plugin zip with one folder, overlap_relevance/
zip:
	rm -rf $(BUILD)/stage && mkdir -p $(BUILD)/stage/overlap_relevance
	tar -cf - --exclude='__pycache__' --exclude='*.pyc' $(PLUGIN_FILES) | tar -xf - -C $(BUILD)/stage/overlap_relevance
	rm -f $(ZIP) && cd $(BUILD)/stage && /usr/bin/python3 -m zipfile -c ../$(notdir $(ZIP)) overlap_relevance
	@echo "Plugin zip: $(ZIP)"

clean:
	@# --one-file-system: never follow a bind mount left in a compat root (build/compat/*/dev).
	rm -rf --one-file-system $(BUILD) .pytest_cache
