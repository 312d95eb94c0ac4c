"""What every algorithm of the provider shares: group, icon, help and a dependency check."""

import functools
import importlib
import inspect
import traceback
import weakref

from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtGui import QIcon

from ..constants import ICON_PATH
from ..native_libs import shapely_geos_state
from .help import help_url, short_help
from .destinations import check_destinations
from .install_advice import CORE_PACKAGES, core_advice, minimum_version, mixed_geos_advice, version_tuple
from .parameters import INPUT, REFERENCE, check_model_file, check_sigma_field, sources_are_same_layer


def missing_dependencies():
    """{import name: what was found} for each core package this Python lacks or has too old.

    What was found is None (not installed), the version that is too old, or why the import failed
    (e.g. a shapely built for another numpy). Imports only the three packages, never the core.
    """
    missing = {}
    for module_name, requirement, _ in CORE_PACKAGES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # the package is there, but something it needs is not
                missing[module_name] = f"cannot be imported: {error}"
            else:
                missing[module_name] = None
            continue
        except Exception as error:  # a broken install: ImportError, AttributeError from an ABI mismatch, ...
            missing[module_name] = f"cannot be imported: {type(error).__name__}: {error}"
            continue
        version = str(getattr(module, "__version__", "0"))
        if version_tuple(version) < version_tuple(minimum_version(requirement)):
            missing[module_name] = version
    return missing


def dependency_problem(as_html=False):
    """Why the core cannot run in this QGIS, with what to do about it; "" when it can.

    Checked before anything imports the core: missing or too old numpy, shapely, pyproj, then a
    shapely whose GEOS would mix with QGIS's (:mod:`..native_libs`).
    """
    missing = missing_dependencies()
    if missing:
        return core_advice(missing, as_html=as_html)
    try:
        state = shapely_geos_state()
    except Exception:  # unknown GEOS state: the run itself will tell
        return ""
    return mixed_geos_advice(state, as_html=as_html) if state["mixed"] else ""


def _rendered_as_html():
    """QGIS's desktop shows canExecute's message as HTML; qgis_process and scripts print it."""
    return QgsApplication.instance() is not None and QgsApplication.platform() == "desktop"


#: (group id, group name): the toolbox sorts groups by name, so the main algorithm's group comes first.
GROUP_MATCH = ("match", "Match and score")
GROUP_MODEL = ("model", "Model training and evaluation")
GROUP_PAIRS = ("pairs", "Pairs and overlaps")

#: Tags every algorithm shares, for the toolbox search.
COMMON_TAGS = ("overlap", "relevance", "polygon", "iou", "intersection over union")


#: The methods QGIS calls with the run's parameters, context and feedback, which may raise.
_RUN_METHODS = ("prepareAlgorithm", "processAlgorithm", "postProcessAlgorithm")


#: Tracebacks of exceptions that left a run method; QGIS keeps them (see :func:`_releasing_locals`).
_HELD_TRACEBACKS = []
#: Frames of generators and coroutines are never cleared: clearing a suspended one would close it.
_SUSPENDABLE = (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
                | inspect.CO_ITERABLE_COROUTINE)


def release_held_frames():
    """Clear the locals of the finished frames that QGIS still holds through a failed run's traceback.

    Frames still running (the caller's script, an event loop) are left alone, and so is every frame from
    the first generator or coroutine up (one suspended there would be closed). Runs at the start of every
    run method and when the plugin unloads, which is before QGIS exits.
    """
    while True:
        try:
            frame = _HELD_TRACEBACKS.pop().tb_frame
        except IndexError:  # none left (another thread's run may have taken the last one meanwhile)
            return
        while frame is not None and not frame.f_code.co_flags & _SUSPENDABLE:
            try:
                frame.clear()
            except RuntimeError:  # still running: so are its callers
                break
            frame = frame.f_back


def _releasing_locals(method):
    """``method`` such that an exception leaving it keeps no layer, source or context alive.

    QGIS (3.40 at least) keeps the Python exception that leaves processAlgorithm and friends, with its
    traceback, after the run. Through the frames' locals, and each frame's caller, it held the run's
    parameters, its sources, the features read and the QgsVectorLayer of an OGR file. Such a layer then
    outlived exitQgis(), and deleting it at interpreter shutdown crashed the process in GDAL (a segfault
    of pytest-qgis, or of a PyQGIS script, after a refused run). The frames below this one are cleared at
    once (file and line stay for the message); this one and its callers, once they have finished, by
    :func:`release_held_frames`.
    """
    @functools.wraps(method)
    def run(self, *arguments):
        release_held_frames()
        try:
            return method(self, *arguments)
        except BaseException as error:
            traceback.clear_frames(error.__traceback__)  # skips this frame, which is still running
            _HELD_TRACEBACKS.append(error.__traceback__)
            del arguments
            raise

    run.releases_locals = True
    return run


class OverlapRelevanceAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms; subclasses say only what is particular to them.

    Subclasses set ``NAME`` (the id after ``overlaprelevance:``), ``DISPLAY_NAME``, ``GROUP``, ``SUMMARY`` (a few sentences for the help panel), ``SHORT_DESCRIPTION``
    (one line, shown in the toolbox), ``TAGS`` and ``NOTES`` (keys of :data:`.help.NOTES`), and
    describe their outputs in :meth:`output_help`.
    """

    GROUP = GROUP_MATCH
    NAME = ""
    DISPLAY_NAME = ""
    SUMMARY = ""
    SHORT_DESCRIPTION = ""
    TAGS = ()
    NOTES = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _RUN_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "releases_locals", False):
                setattr(cls, name, _releasing_locals(method))

    def createInstance(self):  # noqa: N802 (QGIS's name)
        instance = type(self)()
        # QGIS runs a copy of the dialog's algorithm; the copy may rename an output of the original after
        # the run (see evaluate_model), which is what the dialog shows in the Results Viewer.
        instance.created_from = weakref.ref(self)
        return instance

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802 (QGIS's name)
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP[1]

    def groupId(self):  # noqa: N802 (QGIS's name)
        return self.GROUP[0]

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return self.SHORT_DESCRIPTION

    def tags(self):
        return list(dict.fromkeys((*self.TAGS, *COMMON_TAGS)))

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return short_help(self)

    def output_help(self):
        """(name, meaning) of each output, or of each field of the main output."""
        return ()

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON_PATH

    def helpUrl(self):  # noqa: N802 (QGIS's name)
        return help_url(self.name())

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        """What can be known before a feature is read: the core's packages, Processing's own checks, then that no
        output overwrites an input or another output, then the model file and σ field. qgis_process,
        processing.run and models never call canExecute; this they call (its message is printed, or shown as
        plain text: no HTML here)."""
        problem = dependency_problem()
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        for check in (check_destinations, check_model_file, check_sigma_field, type(self).check_more):
            ok, message = check(self, parameters, context)
            if not ok:
                return ok, message
        return True, ""

    def check_more(self, parameters, context):
        """The algorithm's own early checks: (ok, message)."""
        return True, ""

    def style_on_load(self, dest_id, kind, name=None, above=0):
        """Give output ``dest_id`` the provider's style ``kind`` when QGIS loads it as a result.

        ``name``: what the loaded layer is called, e.g. "Relevance of {input} to {reference}" (the two
        layers' names); QGIS uses it for a temporary output, and for a file where the user prefers
        names to file names. ``above``: outputs of one run with a greater value are placed above the others
        in the layer tree (QGIS 3.32 and later; QGIS 3.40 reverses the order when a layer is selected as the
        run starts, so styles must not depend on it). Called from processAlgorithm; the post-processor is attached in
        :meth:`postProcessAlgorithm`, which QGIS runs after processAlgorithm on the same instance.
        Kinds: see :mod:`.styles`.
        """
        if not hasattr(self, "_styled_outputs"):
            self._styled_outputs = []
        if name is not None:
            input_name, reference_name = getattr(self, "_layer_names", ("input", "reference"))
            name = name.format(input=input_name, reference=reference_name)
        self._styled_outputs.append((dest_id, kind, name, above))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS's name)
        """Attach the style post-processors and names to the outputs QGIS will load (toolbox, batch, model)."""
        from .styles import post_processor

        for dest_id, kind, name, above in getattr(self, "_styled_outputs", ()):
            if not context.willLoadLayerOnCompletion(dest_id):
                continue  # qgis_process, processing.run, or an intermediate output of a model
            details = context.layerToLoadOnCompletionDetails(dest_id)
            if name:
                details.name = name
            if above and hasattr(details, "layerSortKey"):
                details.layerSortKey = above
            processor = post_processor(kind)
            if processor is not None:
                details.setPostProcessor(processor)
        self._styled_outputs = []
        return {}

    def finished(self, feedback, context, *dest_ids):
        """Progress 100 %, then the last cancel check: a cancel that comes with it leaves no output behind."""
        feedback.setProgress(100)
        if feedback.isCanceled():
            for dest_id in dest_ids:
                self.discard_output(context, dest_id)
            return False
        return True

    @staticmethod
    def discard_output(context, dest_id):
        """Forget a partly written sink after a cancel, so it is never loaded as a result."""
        layers = dict(context.layersToLoadOnCompletion())
        if layers.pop(dest_id, None) is not None:
            context.setLayersToLoadOnCompletion(layers)
        store = context.temporaryLayerStore()
        if store.mapLayer(dest_id) is not None:
            store.removeMapLayer(dest_id)
        return {}

    def canExecute(self):  # noqa: N802 (QGIS's name)
        problem = dependency_problem(as_html=_rendered_as_html())
        return (False, problem) if problem else (True, "")

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        """Every run passes here, whatever skipped the checks before: no core, no run (and no traceback)."""
        problem = dependency_problem()
        if problem:
            raise QgsProcessingException(problem)
        if self.parameterDefinition(INPUT) is not None and self.parameterDefinition(REFERENCE) is not None:
            self._layer_names = tuple(self._layer_name(parameters, name, context) for name in (INPUT, REFERENCE))
            if sources_are_same_layer(self, parameters, context):
                # The dialog sets both to the active layer: say so before anything runs, where the log starts.
                feedback.pushWarning(
                    f"Input and reference are the same layer, '{self._layer_names[0]}': each feature is compared "
                    "with the other features of that layer, never with itself (what finds duplicates and overlaps "
                    "within one layer). To compare two layers, choose the reference layer: the dialog starts with "
                    "both set to the active layer.")
        return True

    def _layer_name(self, parameters, name, context):
        """The name of the layer given as parameter ``name`` (a project layer's name, or a file's base name)."""
        layer = self.parameterAsVectorLayer(parameters, name, context)
        if layer is not None:
            return layer.name()
        source = self.parameterAsSource(parameters, name, context)
        return source.sourceName() if source is not None else name.lower()


for _name in _RUN_METHODS:  # the base's own run methods too (subclasses are wrapped by __init_subclass__)
    if _name in OverlapRelevanceAlgorithm.__dict__:
        setattr(OverlapRelevanceAlgorithm, _name, _releasing_locals(OverlapRelevanceAlgorithm.__dict__[_name]))
