# overlap_relevance: every target installs what it needs first (see `setup`).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
SITE := $(VENV)/lib/python3.11/site-packages
STAMP := $(VENV)/.setup-done
# pyproj comes from Debian: PyPI's wheel bundles its own libproj, which crashes qgis_process.
APT_PACKAGES := qgis python3-qgis python3-venv python3-pyproj
BUILD := build
ZIP := $(BUILD)/overlap_relevance.zip
# Files and folders that make up the installable plugin (tests, tooling and caches stay out).
PLUGIN_FILES := __init__.py metadata.txt LICENSE README.md plugin algorithms model resources

export QT_QPA_PLATFORM := offscreen
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider

.PHONY: setup system-packages test test-slow bench demo zip train evaluate clean

## setup: internal; installs QGIS (Debian packages) and the pinned venv, fast when present
setup: system-packages $(STAMP)

system-packages:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "Missing Debian packages ($(APT_PACKAGES)); run make as root." >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); }

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PYTHON) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements-dev.txt -c constraints.txt
	@# The package is importable as `overlap_relevance` through a symlink, which also
	@# serves as the QGIS_PLUGINPATH folder for qgis_process.
	mkdir -p $(VENV)/plugins && ln -sfn $(CURDIR) $(VENV)/plugins/overlap_relevance
	@# Debian's pyproj looks for PROJ data under sys.prefix, which is the venv here.
	printf '%s\n' "$(CURDIR)/$(VENV)/plugins" 'import os; os.environ.setdefault("PROJ_DATA", "/usr/share/proj")' \
	  > $(SITE)/overlap_relevance_dev.pth
	touch $@

## test: the whole fast suite, headless
test: setup
	$(PYTEST) -m "not slow" test
	@# TensorFlow cannot share a process with QGIS: the training tests run on their own.
	$(PYTEST) -p no:pytest_qgis -m "not slow" test/training

## test-slow: the checks too slow for CI
test-slow: setup
	@# pytest exits 5 when a folder has no slow test yet; that is not a failure.
	$(PYTEST) -m slow test || [ $$? -eq 5 ]
	$(PYTEST) -p no:pytest_qgis -m slow test/training || [ $$? -eq 5 ]

## bench: the plugin against native overlap analysis, an exact shapely script and Monte Carlo, on the
## bundled sample, a generated 100k x 100k building set and QGIS's world_map; writes test/benchmarks/RESULTS.md
bench: setup
	$(PYTHON) test/benchmarks/bench.py

## demo: the main job through qgis_process on the bundled sample data
demo: setup
	$(PYTHON) test/tools/demo.py

## train: train the bundled model on the CPU (seeded; writes model/overlap_mdn.npz and .keras)
train: setup
	$(PYTHON) -m overlap_relevance.model.training.train

## evaluate: held-out evaluation of the bundled model; writes model/MODEL_CARD.md
evaluate: setup
	$(PYTHON) -m overlap_relevance.model.training.evaluate

## zip: an installable plugin zip with one folder, overlap_relevance/
zip:
	rm -rf $(BUILD)/stage && mkdir -p $(BUILD)/stage/overlap_relevance
	tar -cf - --exclude='__pycache__' --exclude='*.pyc' $(PLUGIN_FILES) | tar -xf - -C $(BUILD)/stage/overlap_relevance
	rm -f $(ZIP) && cd $(BUILD)/stage && /usr/bin/python3 -m zipfile -c ../$(notdir $(ZIP)) overlap_relevance
	@echo "Plugin zip: $(ZIP)"

clean:
	rm -rf $(BUILD) .pytest_cache
