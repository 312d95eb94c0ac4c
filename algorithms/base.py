"""What every algorithm of the provider shares: group, icon, help and a dependency check."""

import weakref

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtGui import QIcon

from ..plugin.constants import ICON_PATH
from ..plugin.native_libs import shapely_geos_state
from .help import help_url, short_help
from .destinations import check_destinations
from .install_advice import CORE_PACKAGES, core_advice, minimum_version, mixed_geos_advice, version_tuple
from .parameters import check_model_file, check_sigma_field


def missing_dependencies():
    """Names (with minimum versions) of the core's Python packages this QGIS lacks."""
    missing = []
    for module_name, requirement, _ in CORE_PACKAGES:
        minimum = minimum_version(requirement)
        try:
            module = __import__(module_name)
        except ImportError:
            missing.append(requirement)
            continue
        if version_tuple(getattr(module, "__version__", "0")) < version_tuple(minimum):
            missing.append(f"{requirement} (found {module.__version__})")
    return missing


#: (group id, group name): the toolbox sorts groups by name, so the main algorithm's group comes first.
GROUP_MATCH = ("match", "Match and score")
GROUP_MODEL = ("model", "Model training and evaluation")
GROUP_PAIRS = ("pairs", "Pairs and overlaps")

#: Tags every algorithm shares, for the toolbox search.
COMMON_TAGS = ("overlap", "relevance", "polygon", "iou", "intersection over union")


class OverlapRelevanceAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms; subclasses say only what is particular to them.

    Subclasses set ``GROUP``, ``SUMMARY`` (a few sentences for the help panel), ``SHORT_DESCRIPTION``
    (one line, shown in the toolbox), ``TAGS`` and ``NOTES`` (keys of :data:`.help.NOTES`), and
    describe their outputs in :meth:`output_help`.
    """

    GROUP = GROUP_MATCH
    SUMMARY = ""
    SHORT_DESCRIPTION = ""
    TAGS = ()
    NOTES = ()

    def createInstance(self):  # noqa: N802 (QGIS's name)
        instance = type(self)()
        # QGIS runs a copy of the dialog's algorithm; the copy may rename an output of the original after
        # the run (see evaluate_model), which is what the dialog shows in the Results Viewer.
        instance.created_from = weakref.ref(self)
        return instance

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
        """What can be known before a feature is read: Processing's own checks, then that no output overwrites an
        input or another output, then the model file and σ field."""
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

    def style_on_load(self, dest_id, kind):
        """Give output ``dest_id`` the provider's style ``kind`` when QGIS loads it as a result.

        Called from processAlgorithm; the post-processor is attached in :meth:`postProcessAlgorithm`,
        which QGIS runs after processAlgorithm on the same instance. Kinds: see :mod:`..plugin.styles`.
        """
        if not hasattr(self, "_styled_outputs"):
            self._styled_outputs = []
        self._styled_outputs.append((dest_id, kind))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS's name)
        """Attach the style post-processors to the outputs QGIS will load (toolbox, batch, model)."""
        from ..plugin.styles import post_processor

        for dest_id, kind in getattr(self, "_styled_outputs", ()):
            if not context.willLoadLayerOnCompletion(dest_id):
                continue  # qgis_process, processing.run, or an intermediate output of a model
            processor = post_processor(kind)
            if processor is not None:
                context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(processor)
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
        missing = missing_dependencies()
        if missing:
            return False, core_advice(missing)
        state = shapely_geos_state()
        if state["mixed"]:
            return False, mixed_geos_advice(state)
        return True, ""
