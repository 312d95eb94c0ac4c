"""The model card's section on matching two sources: per class and per σ band, calibration per σ band, read from
model/source_matching_results.md (the card does not rerun the held-out edits)."""

from overlap_relevance.model.evaluation import card


def test_card_shows_accuracy_and_calibration_per_sigma_band(tmp_path):
    text = card.render_source_matching()
    assert text.startswith("## Match decisions between two sources")
    for sigma in ("0.25", "0.5", "1.0", "2.0", "3.0", "5.0"):
        assert f"\n| {sigma} | " in text  # a row per σ in the class tables
    for column in ("1:1", "1:n", "n:1", "m:n", "unmatched", "m:n groups found"):
        assert column in text
    for band in ("σ ≤ 0.5 m", "σ = 1 m", "σ = 2 m", "σ = 3 m", "σ = 5 m"):
        assert f"m_p (is the one-to-one assignment right?), {band}" in text
        assert f"m_change_p (is the change label right?), {band}" in text
    assert "\n## " not in text.split("\n", 1)[1]  # the results' sections sit under the card's heading
    assert card.render_source_matching(tmp_path / "missing.md") == ""


def test_the_card_file_holds_the_section():
    written = card.MODEL_DIR.joinpath("MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Match decisions between two sources (`matchfeatures`): per class and per σ band" in written
    assert card.render_source_matching().strip() in written
