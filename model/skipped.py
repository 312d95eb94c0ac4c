"""Why a feature takes no part in a run: one reason code per feature, from the masks the core reports.

The core marks features it cannot measure in :class:`.frame.LonLatLayer` (``missing``, ``nonfinite``);
the reading side may add features whose geometry could not
be read. :func:`skip_codes` turns those masks into one code per feature, so that whoever reports a run
(the QGIS algorithms, the command line) can name every skipped feature with its reason. A feature the
core finds unusable for a reason without a code of its own here is still counted, as :data:`OTHER`.
"""

import numpy as np

TAKES_PART = 0
UNREADABLE = 1
NO_GEOMETRY = 2
NOT_FINITE = 3
OTHER = 4

#: code -> the reason, as a user reads it.
REASONS = {
    UNREADABLE: "geometry not readable by GEOS",
    NO_GEOMETRY: "no geometry (NULL or empty)",
    NOT_FINITE: "coordinates not finite, or off the globe in lon/lat",
    OTHER: "no usable geometry",
}

# The mask each code comes from, most particular first: the first that holds names the reason.
_MASKS = ((UNREADABLE, None), (NO_GEOMETRY, "missing"), (NOT_FINITE, "nonfinite"))


def skip_codes(layer, unreadable=None):
    """(n,) int8: :data:`TAKES_PART` for every feature of ``layer`` that takes part, else why it does not.

    layer : a :class:`.frame.LonLatLayer` (its ``usable`` decides what takes part); unreadable : (n,) bool
    or None, features whose geometry was present but could not be read (they are ``missing`` to the core).
    """
    usable = np.asarray(layer.usable, dtype=bool)
    codes = np.where(usable, TAKES_PART, OTHER).astype(np.int8)
    unnamed = ~usable
    for code, attribute in _MASKS:
        mask = unreadable if attribute is None else getattr(layer, attribute, None)
        if mask is None:
            continue
        hit = unnamed & np.asarray(mask, dtype=bool)
        codes[hit] = code
        unnamed &= ~hit
    return codes


def reason_counts(codes):
    """{reason text: count} of the skipped features, in code order."""
    values, counts = np.unique(codes[codes != TAKES_PART], return_counts=True)
    return {REASONS[int(value)]: int(count) for value, count in zip(values, counts)}
