"""The core, imported where it is first used, so that QGIS lists the algorithms whatever is installed.

Declaring an algorithm (its name, parameters, help) needs only QGIS. Running one needs numpy,
shapely 2 and pyproj, through :mod:`..model` and the reading helpers of this package. An algorithm
module therefore names each of those modules with :func:`lazy_import` at its top, and uses it as
usual (``np.zeros``, ``relevance_run.prepare_relevance_run``): the import happens on the first
attribute read, in ``processAlgorithm``, after ``canExecute``, ``checkParameterValues`` and
``prepareAlgorithm`` have checked the versions (:func:`.base.dependency_problem`).
"""

import importlib


class LazyModule:
    """Stands for the module ``name`` (relative to ``package``) until an attribute is first read."""

    def __init__(self, name, package=None):
        self._name, self._package, self._module = name, package, None

    def __getattr__(self, attribute):
        if attribute.startswith("__"):  # copy, pickle and introspection ask for these: not the module's
            raise AttributeError(attribute)
        if self._module is None:
            self._module = importlib.import_module(self._name, self._package)
        return getattr(self._module, attribute)

    def __repr__(self):
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_import(name, package=None):
    """A stand-in for ``import name`` (``from package import name`` when ``name`` starts with a dot)."""
    return LazyModule(name, package)
