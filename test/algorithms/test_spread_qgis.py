"""QGIS side: scorerelevance on world_map's Nordic states against countries, Norway (with Bouvet Island) included."""

from pathlib import Path

import pytest

from tools.layers import layer_rows

WORLD = Path("/usr/share/qgis/resources/data/world_map.gpkg")


@pytest.mark.skipif(not WORLD.exists(), reason="QGIS's world_map.gpkg is not installed")
def test_nordic_states_take_their_countries_at_sigma0(provider):
    import processing
    from qgis.core import QgsVectorLayer

    states = QgsVectorLayer(f"{WORLD}|layername=states_provinces", "states", "ogr")
    states.setSubsetString("adm0_a3 IN ('NOR', 'SWE', 'FIN')")
    countries = QgsVectorLayer(f"{WORLD}|layername=countries", "countries", "ogr")
    countries.setSubsetString("ISO_A3 IN ('NOR', 'SWE', 'FIN', 'DNK', 'EST')")
    n_states = len(list(states.getFeatures()))
    assert n_states > 20 and len(list(countries.getFeatures())) == 5
    output = processing.run("overlaprelevance:scorerelevance", {
        "INPUT": states, "REFERENCE": countries, "REFERENCE_KEY": "ISO_A3", "OUTPUT": "memory:"})["OUTPUT"]
    rows = layer_rows(output)
    assert len(rows) == n_states
    for row in rows:
        assert row["rel_match"] == row["adm0_a3"]
        assert 0.0 < row["rel_score"] <= 1.0 and row["rel_cov"] > 0.99
    # exactoverlap writes the same exact IoU for those pairs (full detail, the same frames): within 1e-6.
    exact = processing.run("overlaprelevance:exactoverlap", {
        "INPUT": states, "INPUT_KEY": "name", "REFERENCE": countries, "REFERENCE_KEY": "ISO_A3",
        "OUTPUT": "memory:"})["OUTPUT"]
    iou = {(row["in_key"], row["ref_key"]): row["iou"] for row in layer_rows(exact)}
    for row in rows:
        assert abs(row["rel_score"] - iou[(row["name"], row["rel_match"])]) <= 1e-6
