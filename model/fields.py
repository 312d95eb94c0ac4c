"""The output fields, written once: names, a neutral type and what each means, for QGIS and Dask alike.

A field's ``kind`` is ``"double"``, ``"int"``, ``"string"`` or ``"key"`` (the type of the key field
of the layer on the other side). The algorithms map it to a QGIS field type (``algorithms/compat.py``),
``scaleout/`` to NumPy and pandas dtypes; neither spells a name or a type of its own.
"""

from typing import NamedTuple, Optional


class Field(NamedTuple):
    name: str  # for the relevance fields, the suffix after the prefix
    kind: str  # "double", "int", "string" or "key"
    meaning: str
    #: The column of :class:`.scoring.BestMatches` (and the attribute of a chunk's summary) it holds, if any.
    summary: Optional[str] = None


KINDS = ("double", "int", "string", "key")

#: The relevance fields' default prefix (scorerelevance's Field prefix parameter, the scaleout engines').
RELEVANCE_PREFIX = "rel_"

#: scorerelevance (and the scaleout engines): the fields each input feature gains, after the prefix.
RELEVANCE_FIELDS = (
    Field("match", "key", "key of the most relevant reference feature (highest expected IoU); NULL without candidates"),
    Field("score", "double", "expected IoU with that match", "iou_mean"),
    Field("p", "double", "probability that the IoU with that match is at least the threshold", "p_iou"),
    Field("cov", "double", "expected share of the input feature covered by the match", "cover_a_mean"),
    Field("covref", "double", "expected share of the match covered by the input feature", "cover_b_mean"),
    Field("sd", "double", "standard deviation of the IoU with that match", "iou_sd"),
    Field("n", "int", "number of candidate reference features"),
)

#: relevancepairs: one pair's rank and predicted values, after in_key and ref_key (full names: the prefix is
#: not a parameter there).
PAIR_FIELDS = (
    Field("rank", "int", "1 for the most relevant reference feature of that input feature (by expected IoU)"),
    Field("rel_score", "double", "expected IoU", "iou_mean"),
    Field("rel_p", "double", "probability that the IoU is at least the threshold", "p_iou"),
    Field("rel_cov", "double", "expected share of the input feature covered by the reference feature", "cover_a_mean"),
    Field("rel_covref", "double", "expected share of the reference feature covered by the input feature",
          "cover_b_mean"),
    Field("rel_sd", "double", "standard deviation of the IoU", "iou_sd"),
)

#: relevancepairs with Compute exact overlaps.
PAIR_EXACT_FIELDS = (
    Field("ex_iou", "double", "exact IoU (positions taken as exact)"),
    Field("ex_cov", "double", "exact share of the input feature covered by the reference feature"),
    Field("ex_covref", "double", "exact share of the reference feature covered by the input feature"),
)

#: exactoverlap: the values of one pair, after in_key and ref_key.
EXACT_OVERLAP_FIELDS = (
    Field("area_in", "double", "area of the input feature, m²"),
    Field("area_ref", "double", "area of the reference feature, m²"),
    Field("area_int", "double", "area of their intersection, m²"),
    Field("cov_in", "double", "share of the input feature covered by the reference, |A∩B|/|A|"),
    Field("cov_ref", "double", "share of the reference feature covered by the input, |A∩B|/|B|"),
    Field("iou", "double", "intersection over union, |A∩B|/|A∪B|"),
)

#: overlaplocation: one ellipse, after in_key and ref_key.
LOCATION_FIELDS = (
    Field("component", "int", "index of the mixture component (0-based)"),
    Field("weight", "double", "the component's mixture weight: the probability that the overlap lies in it"),
    Field("level", "double", "the confidence level of the ellipse"),
)

#: matchfeatures (and the scaleout engines): the fields every feature of both layers gains.
MATCH_FIELDS = (
    Field("m_group", "int", "group id, shared by every member of a group on both sides; NULL for an unmatched feature"),
    Field("m_class", "string", "the group's class: 1:1, 1:n (one input, several reference), n:1 (several input, one "
                               "reference), m:n, or unmatched"),
    Field("m_key", "key", "the key of the feature on the other side assigned to it one to one; NULL if none"),
    Field("m_p", "double", "the probability that this one-to-one assignment is right"),
    Field("m_change", "string", "reading the reference as old and the input as new: unchanged, modified, split, "
                                "merged, reshaped (m:n), new or removed"),
    Field("m_change_p", "double", "the probability that the change label m_change is right"),
)

#: matchfeatures' table of groups, one row per group.
GROUP_FIELDS = (
    Field("m_group", "int", "the group id, as in the feature outputs"),
    Field("m_class", "string", "1:1, 1:n, n:1 or m:n"),
    Field("n_input", "int", "input features in the group"),
    Field("n_ref", "int", "reference features in the group"),
    Field("input_keys", "string", "the input keys, comma-separated"),
    Field("ref_keys", "string", "the reference keys, comma-separated"),
    Field("m_p", "double", "the probability of the group"),
)


def names(fields, prefix=""):
    """The field names of ``fields``, each after ``prefix``."""
    return [prefix + field.name for field in fields]
