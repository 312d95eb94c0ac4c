"""Help for the provider's algorithms, written once and shown where it applies.

Three places show it:
- the dialog's help panel: :func:`short_help`, a few sentences on what the algorithm computes
  and what each output means;
- each parameter's tooltip: the parameter's own help (``PARAMETER_HELP`` in :mod:`.parameters`
  for the shared ones), so a text about a parameter appears only where the parameter exists;
- the Help button: a page shipped with the plugin, ``resources/help/<algorithm>.html``, made by
  :func:`help_page` from the same texts (``make help`` writes them; a test keeps them current).
"""

import html
from pathlib import Path

from qgis.PyQt.QtCore import QUrl

HELP_DIR = Path(__file__).resolve().parent.parent / "resources" / "help"
#: The model card, shipped with the plugin, as a link from the help pages (resources/help/ -> model/).
MODEL_CARD_LINK = '<a href="../../model/MODEL_CARD.md">model card</a> (model/MODEL_CARD.md)'

#: Background the algorithms share: (title, text). An algorithm lists the keys that apply to it.
NOTES = {
    "iou": ("Overlap measures",
            "IoU (intersection over union) is |A∩B| / |A∪B|: 1 for identical features, 0 for disjoint ones. "
            "The coverage of A by B is |A∩B| / |A|."),
    "frame": ("Any CRS, true metres",
              "Each candidate pair is projected into its own local metric frame (a Lambert azimuthal equal-area "
              "projection centred on the pair), so areas and distances are true metres wherever the data lies, "
              "across the antimeridian included. The two layers may be in different CRSs; you never need to "
              "reproject."),
    "geometry": ("Geometries",
                 "Invalid geometries are repaired (GEOS make_valid) and counted in the log; curves are segmentized "
                 "and Z/M values ignored. Features without a usable geometry are skipped and counted in the log: no "
                 "geometry, an empty one, or coordinates that are not finite or lie off the globe. A feature spread "
                 "over the globe (islands on both hemispheres, a whole-world polygon) is measured in each pair on its "
                 "parts within reach of the other feature, against its whole area. Edges are straight lines in "
                 "each pair's frame: features with edges over 50 km get a warning (densify them for exact results)."),
    "model": ("The model",
              "A trained mixture density network predicts, for each candidate pair, a Gaussian mixture over the two "
              "coverages (the share of the input feature covered by the reference feature, and the reverse) and "
              "over where their overlap lies. Scores are expectations over that distribution: under positional "
              "uncertainty a pair that would overlap perfectly scores less than 1. The model's held-out accuracy is "
              f"in its {MODEL_CARD_LINK}; 'Evaluate relevance model' measures it on your layers."),
}


def _items(rows):
    return "<ul>" + "".join(f"<li><b>{name}</b>: {meaning}</li>" for name, meaning in rows) + "</ul>"


def short_help(algorithm):
    """The dialog's help panel: what the algorithm computes, and what each output means."""
    outputs = algorithm.output_help()
    text = f"<p>{algorithm.SUMMARY}</p>"
    if outputs:
        text += "<h3>Output</h3>" + _items(outputs)
    return text + ("<p>Each parameter explains itself in its tooltip; the Help button opens the full page "
                   "(parameters, defaults and background).</p>")


def _default_text(parameter):
    value = parameter.defaultValue()
    if value is None or value == "" or (hasattr(value, "isNull") and value.isNull()):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    options = getattr(parameter, "options", None)
    if callable(options) and isinstance(value, int):
        names = options()
        return names[value] if 0 <= value < len(names) else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return html.escape(str(value))


#: What a destination parameter's row says, by parameter type: (meaning, default).
DESTINATIONS = {
    "sink": ("Where this output is written: a temporary layer, or a file whose extension gives the format "
             "(GeoPackage, shapefile, ...). The Output section above says what it holds.", "temporary layer"),
    "fileDestination": ("Where this output file is written.", "temporary file"),
}


def _row_texts(parameter):
    """(meaning, default, use) of a parameter's help-table row; every cell says something."""
    from .compat import PARAMETER_ADVANCED, PARAMETER_OPTIONAL

    flags = parameter.flags()
    destination = DESTINATIONS.get(parameter.type()) if parameter.isDestination() else None
    meaning = html.escape(parameter.help() or "") or (destination[0] if destination else "")
    default = (destination[1] if destination and parameter.defaultValue() in (None, "", "TEMPORARY_OUTPUT")
               else _default_text(parameter) or ("empty" if flags & PARAMETER_OPTIONAL else "none: to be chosen"))
    optional = flags & PARAMETER_OPTIONAL
    use = ("output, optional" if optional else "output") if destination else "optional" if optional else "required"
    if flags & PARAMETER_ADVANCED:
        use += ", advanced"
    return meaning, default, use


def help_page(algorithm, provider_name="Overlap relevance"):
    """The full help page of ``algorithm``, as a standalone HTML document."""
    rows = []
    for parameter in algorithm.parameterDefinitions():
        meaning, default, use = _row_texts(parameter)
        rows.append(
            f"<tr><td><b>{html.escape(parameter.description())}</b><br><code>{parameter.name()}</code></td>"
            f"<td>{meaning}</td><td>{default}</td><td>{use}</td></tr>")
    notes = "".join(f"<h2>{title}</h2><p>{text}</p>" for title, text in (NOTES[key] for key in algorithm.NOTES))
    outputs = algorithm.output_help()
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(algorithm.displayName())} — {provider_name}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;"
        "text-align:left}code{color:#555}</style></head><body>"
        f"<p><a href=\"index.html\">{provider_name}</a> ▸ {html.escape(algorithm.group())}</p>"
        f"<h1>{html.escape(algorithm.displayName())}</h1>"
        f"<p><code>overlaprelevance:{algorithm.name()}</code> — {html.escape(algorithm.shortDescription())}</p>"
        f"<p>{algorithm.SUMMARY}</p>"
        + (f"<h2>Output</h2>{_items(outputs)}" if outputs else "")
        + "<h2>Parameters</h2><table><tr><th>Parameter</th><th>Meaning</th><th>Default</th><th>Use</th></tr>"
        + "".join(rows) + "</table>" + notes + "</body></html>\n"
    )


def index_page(algorithms, provider_name="Overlap relevance"):
    """The page listing every algorithm, by group, in the toolbox's order."""
    groups = {}
    for algorithm in sorted(algorithms, key=lambda a: (a.group(), a.displayName())):
        groups.setdefault(algorithm.group(), []).append(algorithm)
    body = "".join(
        f"<h2>{html.escape(group)}</h2><ul>" + "".join(
            f"<li><a href=\"{a.name()}.html\">{html.escape(a.displayName())}</a>: "
            f"{html.escape(a.shortDescription())}</li>" for a in members) + "</ul>"
        for group, members in groups.items())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{provider_name} — help</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto;line-height:1.4}</style></head><body>"
            f"<h1>{provider_name}</h1><p>Processing algorithms that score how relevant the features of one polygon "
            "layer are to those of another, from their overlap under positional uncertainty.</p>"
            + body + "</body></html>\n")


def help_url(name):
    """The file URL of the shipped help page of algorithm ``name``; empty when there is none."""
    path = HELP_DIR / f"{name}.html"
    return QUrl.fromLocalFile(str(path)).toString() if path.is_file() else ""
