"""The output fields are written once (model/fields.py); what reads them relies on these facts."""

import dataclasses

from overlap_relevance.model.fields import (
    EXACT_OVERLAP_FIELDS,
    GROUP_FIELDS,
    KINDS,
    LOCATION_FIELDS,
    MATCH_FIELDS,
    PAIR_EXACT_FIELDS,
    PAIR_FIELDS,
    RELEVANCE_FIELDS,
    names,
)
from overlap_relevance.model.scoring import BestMatches, OverlapSummary

ALL = (RELEVANCE_FIELDS, PAIR_FIELDS, PAIR_EXACT_FIELDS, EXACT_OVERLAP_FIELDS, LOCATION_FIELDS, MATCH_FIELDS,
       GROUP_FIELDS)


def test_every_field_has_a_known_kind_a_meaning_and_a_unique_name():
    for fields in ALL:
        assert all(field.kind in KINDS and field.meaning for field in fields)
        assert len(set(names(fields))) == len(fields)


def test_the_relevance_values_come_in_the_order_of_best_matches_columns():
    """scorerelevance writes BestMatches.values row by row between the match and the count."""
    assert names(RELEVANCE_FIELDS)[0] == "match" and names(RELEVANCE_FIELDS)[-1] == "n"
    assert tuple(field.summary for field in RELEVANCE_FIELDS[1:-1]) == BestMatches.COLUMNS
    assert names(RELEVANCE_FIELDS, "rel_") == ["rel_match", "rel_score", "rel_p", "rel_cov", "rel_covref", "rel_sd",
                                               "rel_n"]


def test_the_pair_values_name_attributes_of_a_chunk_summary():
    summary_names = {field.name for field in dataclasses.fields(OverlapSummary)}
    assert {field.summary for field in PAIR_FIELDS if field.summary} <= summary_names


def test_the_match_fields_keep_their_names_and_order():
    assert names(MATCH_FIELDS) == ["m_group", "m_class", "m_key", "m_p", "m_change", "m_change_p"]
    assert [field.kind for field in MATCH_FIELDS] == ["int", "string", "key", "double", "string", "double"]
