"""Hostile input through qgis_process (issue 8): a representative subset of the corpus.

A crash there is a signal or a non-zero exit; each run must instead exit 0 with finite results,
or exit with the clear error the case names, and never print a Python traceback.
"""

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor

from qgis.core import QgsVectorLayer

from tools.corpus import CASES, layer_to_gpkg
from tools.layers import layer_rows

# (case, role, algorithm): every algorithm, both roles, files as OGR reads them and the hardest memory cases.
SUBSET = [
    ("unclosed_ring_gpkg", "input", "scorerelevance"),
    ("polygon_zm", "reference", "relevancepairs"),
    ("curve_polygon", "input", "overlaplocation"),
    ("corrupt_blobs_gpkg", "reference", "exactoverlap"),
    ("triangles_gpkg", "reference", "scorerelevance"),
    ("nonfinite_coordinates", "input", "exactoverlap"),
    ("ring_100000", "input", "scorerelevance"),
    ("antimeridian", "reference", "relevancepairs"),
    ("polar", "input", "overlaplocation"),
    ("bow_tie", "reference", "overlaplocation"),
    ("mislabelled_types_gpkg", "input", "scorerelevance"),
    ("undefined_cartesian_crs_gpkg", "reference", "exactoverlap"),
    ("no_crs_shapefile", "input", "relevancepairs"),
]
BY_NAME = {case.name: case for case in CASES}


def _source(layer, path):
    """What qgis_process can open: the layer's own file, or the memory layer written to a GeoPackage."""
    if layer.providerType() == "memory":
        return str(layer_to_gpkg(layer, path))
    return layer.source()


def _arguments(case, role, algorithm, folder):
    tag = f"{case.name}_{role}_{algorithm}"
    case_source = _source(case.make(folder), folder / f"{tag}_case.gpkg")
    partner_source = _source(case.partner(), folder / f"{tag}_partner.gpkg")
    inputs = (case_source, partner_source) if role == "input" else (partner_source, case_source)
    output = folder / f"{tag}_out.gpkg"
    arguments = {"INPUT": inputs[0], "REFERENCE": inputs[1], "OUTPUT": output}
    if algorithm == "relevancepairs":
        arguments.update(COMPUTE_EXACT="true", GEOMETRY=1)
    if algorithm != "exactoverlap":
        arguments["POSITIONAL_UNCERTAINTY"] = 0.5
    return arguments


def _run(cli, algorithm, arguments):
    args = ["run", f"overlaprelevance:{algorithm}", "--json", "--"] + [f"{k}={v}" for k, v in arguments.items()]
    return cli(*args, timeout=300, check=False)


def test_corpus_subset_through_qgis_process(qgis_process_cli, tmp_path):
    jobs = []
    for name, role, algorithm in SUBSET:
        case = BY_NAME[name]
        jobs.append((case, role, algorithm, _arguments(case, role, algorithm, tmp_path)))
    with ThreadPoolExecutor(max_workers=2) as pool:  # each run is mostly qgis_process starting up
        results = list(pool.map(lambda job: _run(qgis_process_cli, job[2], job[3]), jobs))
    failures = []
    for (case, role, algorithm, arguments), result in zip(jobs, results):
        label = f"{case.name} as {role} in {algorithm}"
        text = result.stdout + result.stderr
        expected = case.expected_error(role, algorithm)
        if result.returncode < 0 or "Traceback" in text:
            failures.append(f"{label}: crashed or traceback (exit {result.returncode}):\n{text[-2000:]}")
        elif expected is None and result.returncode != 0:
            failures.append(f"{label}: exit {result.returncode}:\n{text[-2000:]}")
        elif expected is not None and (result.returncode == 0 or not re.search(expected.format(role=role), text)):
            failures.append(f"{label}: expected {expected!r}, exit {result.returncode}:\n{text[-2000:]}")
        elif expected is None:
            output = json.loads(result.stdout[result.stdout.index("{"):])["results"]["OUTPUT"]
            for row in layer_rows(QgsVectorLayer(output, "out", "ogr")):
                bad = {k: v for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)}
                if bad:
                    failures.append(f"{label}: non-finite output {bad}")
                    break
    assert not failures, "\n\n".join(failures)
