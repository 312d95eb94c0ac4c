"""overlaprelevance:matchfeatures through processing.run and qgis_process, on the sample and on world_map."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsVectorLayer

from tools.layers import layer_rows, memory_layer
from tools.qgis_process import REPO_ROOT

ALGORITHM = "overlaprelevance:matchfeatures"
SAMPLE = REPO_ROOT / "resources" / "sample"
WORLD = Path("/usr/share/qgis/resources/data/world_map.gpkg")
OUTPUTS = {"OUTPUT": "memory:", "OUTPUT_REFERENCE": "memory:", "OUTPUT_GROUPS": "memory:"}
CLASSES = {"1:1", "1:n", "n:1", "m:n", "unmatched"}
CHANGES = {"unchanged", "modified", "split", "merged", "reshaped", "new", "removed"}


def run(**parameters):
    import processing

    return processing.run(ALGORITHM, {**OUTPUTS, **parameters})


@pytest.fixture(scope="module")
def sample_result(plugin):
    mapped = QgsVectorLayer(str(SAMPLE / "buildings_mapping.gpkg"), "mapped", "ogr")
    cadastre = QgsVectorLayer(str(SAMPLE / "buildings_cadastre.gpkg"), "cadastre", "ogr")
    result = run(INPUT=mapped, REFERENCE=cadastre, INPUT_KEY="map_id", REFERENCE_KEY="building_id",
                 POSITIONAL_UNCERTAINTY=0.5)
    return mapped, cadastre, result


def test_every_feature_of_both_layers_is_written_with_its_match(sample_result):
    mapped, cadastre, result = sample_result
    rows_a, rows_b = layer_rows(result["OUTPUT"]), layer_rows(result["OUTPUT_REFERENCE"])
    assert len(rows_a) == mapped.featureCount() and len(rows_b) == cadastre.featureCount()
    assert result["OUTPUT"].fields().names()[:len(mapped.fields())] == mapped.fields().names()
    for rows in (rows_a, rows_b):
        assert {r["m_class"] for r in rows} <= CLASSES and {r["m_change"] for r in rows} <= CHANGES
        for row in rows:
            assert (row["m_group"] is None) == (row["m_class"] == "unmatched")
            assert row["m_p"] is None or 0.0 <= row["m_p"] <= 1.0
            assert (row["m_key"] is None) == (row["m_p"] is None)
            assert (row["m_change_p"] is None) == (row["m_change"] is None)  # every labelled feature has one
            assert row["m_change_p"] is None or 0.0 <= row["m_change_p"] <= 1.0
    # The one-to-one assignment is one to one: each reference key is claimed once, and both sides agree.
    by_key_b = {r["building_id"]: r for r in rows_b}
    claimed = [r["m_key"] for r in rows_a if r["m_key"] is not None]
    assert len(claimed) == len(set(claimed))
    for row in rows_a:
        if row["m_key"] is not None:
            partner = by_key_b[row["m_key"]]
            assert partner["m_key"] == row["map_id"] and partner["m_group"] == row["m_group"]
            assert partner["m_p"] == pytest.approx(row["m_p"])
    # The sample's truth: the mapped building's counterpart in the cadastre (236 of 248 have one).
    truth = [r for r in rows_a if r["true_match"]]
    agreement = sum(r["m_key"] == r["true_match"] for r in truth) / len(truth)
    assert agreement >= 0.97, agreement
    without = [r for r in rows_a if not r["true_match"]]
    assert sum(r["m_class"] == "unmatched" for r in without) >= 0.8 * len(without)


def test_the_group_table_agrees_with_the_feature_outputs(sample_result):
    _, _, result = sample_result
    rows_a, rows_b = layer_rows(result["OUTPUT"]), layer_rows(result["OUTPUT_REFERENCE"])
    groups = layer_rows(result["OUTPUT_GROUPS"])
    assert len(groups) == result["N_GROUPS"] and groups
    members_a = Counter(r["m_group"] for r in rows_a if r["m_group"] is not None)
    members_b = Counter(r["m_group"] for r in rows_b if r["m_group"] is not None)
    for group in groups:
        assert group["n_input"] == members_a[group["m_group"]] and group["n_ref"] == members_b[group["m_group"]]
        assert len(group["input_keys"].split(", ")) == group["n_input"]
        expected = {(1, 1): "1:1", (1, 2): "1:n", (2, 1): "n:1"}.get(
            (min(group["n_input"], 2), min(group["n_ref"], 2)), "m:n")
        assert group["m_class"] == expected
    assert result["N_MATCHED_INPUT"] == sum(members_a.values())
    assert result["N_MATCHED_REFERENCE"] == sum(members_b.values())


def test_a_split_a_merge_a_new_and_a_removed_building(provider):
    """Hand-made edits of four buildings (EPSG:25833 metres): the classes and changes say what happened."""
    import shapely

    from tools.geometry import ORIGIN

    def box(x0, y0, x1, y1):
        return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)

    old = [box(0, 0, 20, 20), box(100, 0, 120, 10), box(120, 0, 140, 10), box(300, 0, 312, 10), box(500, 0, 520, 20)]
    new = [box(0.2, 0.1, 20.2, 20.1),                       # moved within σ: 1:1 unchanged
           box(100, 0, 140, 10),                             # two touching old buildings merged into one
           box(300, 0, 306, 10), box(306, 0, 312, 10),       # one split in two
           box(800, 0, 820, 20)]                             # new; the old one at 500 was removed
    reference = memory_layer(old, "EPSG:25833", {"old_id": ["a", "b1", "b2", "c", "d"]}, name="old")
    layer = memory_layer(new, "EPSG:25833", {"new_id": ["A", "B", "C1", "C2", "E"]}, name="new")
    result = run(INPUT=layer, REFERENCE=reference, INPUT_KEY="new_id", REFERENCE_KEY="old_id",
                 POSITIONAL_UNCERTAINTY=0.5)
    a = {r["new_id"]: r for r in layer_rows(result["OUTPUT"])}
    b = {r["old_id"]: r for r in layer_rows(result["OUTPUT_REFERENCE"])}
    assert a["A"]["m_class"] == "1:1" and a["A"]["m_key"] == "a" and a["A"]["m_change"] == "unchanged"
    assert a["B"]["m_class"] == "1:n" and a["B"]["m_change"] == "merged"
    assert b["b1"]["m_group"] == b["b2"]["m_group"] == a["B"]["m_group"]
    assert a["C1"]["m_class"] == a["C2"]["m_class"] == "n:1" and b["c"]["m_change"] == "split"
    assert a["E"]["m_class"] == "unmatched" and a["E"]["m_change"] == "new"
    assert b["d"]["m_class"] == "unmatched" and b["d"]["m_change"] == "removed"


def test_touching_neighbours_are_not_joined(provider):
    import shapely

    row = [shapely.box(10 * i, 0, 10 * i + 10, 8) for i in range(6)]  # a terrace of touching houses
    shifted = [shapely.affinity.translate(g, 0.3, 0.2) for g in row]
    result = run(INPUT=memory_layer(shifted, "EPSG:25833", name="new"),
                 REFERENCE=memory_layer(row, "EPSG:25833", name="old"), POSITIONAL_UNCERTAINTY=0.5)
    assert {r["m_class"] for r in layer_rows(result["OUTPUT"])} == {"1:1"}
    assert result["N_GROUPS"] == 6


def test_match_fields_that_exist_already_are_refused_before_reading(provider):
    from tools.geometry import square

    layer = memory_layer([square(0, 0)], "EPSG:25833", {"m_class": ["x"]})
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    ok, message = algorithm.checkParameterValues({"INPUT": layer, "REFERENCE": layer, **OUTPUTS},
                                                 QgsProcessingContext())
    assert not ok and "m_class" in message


@pytest.mark.skipif(not WORLD.exists(), reason="QGIS's world_map.gpkg is not installed")
def test_world_map_states_fall_in_their_countrys_group(provider):
    """Real administrative data: each state belongs to the country that holds most of it."""
    states = QgsVectorLayer(f"{WORLD}|layername=states_provinces", "states", "ogr")
    countries = QgsVectorLayer(f"{WORLD}|layername=countries", "countries", "ogr")
    result = run(INPUT=states, REFERENCE=countries)
    import processing

    exact = layer_rows(processing.run("overlaprelevance:exactoverlap", {
        "INPUT": states, "REFERENCE": countries, "OUTPUT": "memory:"})["OUTPUT"])
    best = {}
    for row in exact:  # the truth: the country covering the largest share of the state
        if row["cov_in"] > best.get(row["in_key"], (0.0, None))[0]:
            best[row["in_key"]] = (row["cov_in"], row["ref_key"])
    group_a = {r["fid"]: r["m_group"] for r in layer_rows(result["OUTPUT"])}
    group_b = {r["fid"]: r["m_group"] for r in layer_rows(result["OUTPUT_REFERENCE"])}
    held = [group_a[state] is not None and group_a[state] == group_b[country]
            for state, (share, country) in best.items() if share >= 0.5]
    share = float(np.mean(held))
    print(f"world_map: {sum(held)} of {len(held)} states ({100 * share:.2f} %) in their country's group")
    assert len(held) > 4000 and share >= 0.99, share  # the target


def test_qgis_process_writes_the_three_outputs(qgis_process_cli, tmp_path):
    outputs = {name: tmp_path / f"{name.lower()}.gpkg" for name in OUTPUTS}
    result = qgis_process_cli.run_json(ALGORITHM, {
        "INPUT": SAMPLE / "buildings_mapping.gpkg", "REFERENCE": SAMPLE / "buildings_cadastre.gpkg",
        "REFERENCE_KEY": "building_id", "POSITIONAL_UNCERTAINTY": 0.5, **outputs})
    assert result["results"]["N_GROUPS"] > 200
    for name, path in outputs.items():
        layer = QgsVectorLayer(str(path), name, "ogr")
        assert layer.isValid() and layer.featureCount() > 200, name


def test_the_log_gives_the_rate_of_the_stage_that_handled_the_pairs(plugin):
    """Scoring and matching are one stage here; the rate is measured on it (no '0 pairs/s in scoring')."""
    import re

    import processing
    from tools.feedback import RecordingFeedback

    log = RecordingFeedback()
    processing.run(ALGORITHM, {**OUTPUTS, "INPUT": str(SAMPLE / "buildings_mapping.gpkg"),
                               "REFERENCE": str(SAMPLE / "buildings_cadastre.gpkg")}, feedback=log)
    timings = [line for line in log.infos if line.startswith("Timings: ")]
    assert len(timings) == 1, log.infos
    found = re.search(r"scoring and matching ([0-9.]+) s.*\((\d+) pairs, ([0-9,]+) pairs/s in scoring and matching\)",
                      timings[0])
    assert found, timings[0]
    seconds, pairs, rate = float(found.group(1)), int(found.group(2)), int(found.group(3).replace(",", ""))
    assert pairs > 0 and rate > 0
    assert pairs / (seconds + 0.005) - 1 <= rate <= pairs / max(seconds - 0.005, 1e-6) + 1  # seconds shown rounded
    assert "in scoring)" not in timings[0]
