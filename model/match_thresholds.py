"""The decisions of :mod:`.matching`, in a module of their own: it imports nothing, so the Processing
dialog declares them (defaults included) where numpy or shapely are missing."""

from dataclasses import dataclass


@dataclass
class MatchThresholds:
    """The decision parameters (defaults chosen on tuning-seed data, see model/matching_results.md).

    iou : t of p_same = P(IoU >= t).
    cover : c of p_part = P(cover of the smaller feature >= c).
    p_edge : a pair is an edge when its learned probability of being the same object or a part
        (:mod:`.match_model`) reaches it; without the learned model, when p_same or p_part reaches it.
    shape_offset_m : without the learned model, a 1:1 pair is modified when, after the centroid move,
        its boundaries lie further apart than this on average (symmetric difference / mean perimeter, m);
        with it, when P(modified) >= 0.5.
    alpha_translation : ... or when the centroid move is this improbable under σ (without the learned model).
    sigma_floor : metres; the σ of that test is at least this (a σ of 0 still allows rounding).
    """

    iou: float = 0.5
    cover: float = 0.5
    p_edge: float = 0.7  # on the learned q; chosen on validation edits (model/match_model.json "p_edge")
    shape_offset_m: float = 0.2
    alpha_translation: float = 0.001
    sigma_floor: float = 0.05
