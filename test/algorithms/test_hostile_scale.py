"""Scale (issue 8): a million small polygons against a million scored through qgis_process in
bounded memory. Slow: run by `make test-slow`, not in CI.

Peak memory is the maximum resident set size of the qgis_process run, read by a small
wrapper process whose only child it is (resource.getrusage(RUSAGE_CHILDREN)).
"""

import json
import sqlite3
from contextlib import closing
import subprocess
import sys
import time

import numpy as np
import pytest

from tools.corpus import write_gpkg

N_SIDE = 1000  # N_SIDE² features per layer
SPACING = 20.0  # metres between square origins
SIZE = 10.0  # side of each square, metres
SHIFT = 3.0  # the reference squares are the input ones moved east
X0, Y0 = 390_000.0, 5_800_000.0  # EPSG:25833, Berlin's south
PEAK_LIMIT_BYTES = 4 * 1024**3

PEAK_RSS = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'returncode': result.returncode, 'seconds': time.perf_counter() - started,\n"
    "                  'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,\n"
    "                  'stdout': result.stdout[-4000:], 'stderr': result.stderr[-4000:]}))\n"
)


def square_wkbs(shift):
    """WKB of N_SIDE² squares on a grid, built with NumPy (one byte string each)."""
    i, j = np.meshgrid(np.arange(N_SIDE), np.arange(N_SIDE), indexing="ij")
    x = X0 + shift + SPACING * i.ravel()
    y = Y0 + SPACING * j.ravel()
    ring = np.stack([np.stack([x, y], -1), np.stack([x + SIZE, y], -1), np.stack([x + SIZE, y + SIZE], -1),
                     np.stack([x, y + SIZE], -1), np.stack([x, y], -1)], axis=1)  # (n, 5, 2)
    header = np.frombuffer(b"\x01\x03\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00", dtype=np.uint8)
    body = ring.astype("<f8").reshape(len(x), -1).view(np.uint8).reshape(len(x), -1)
    records = np.concatenate([np.broadcast_to(header, (len(x), len(header))), body], axis=1)
    return [row.tobytes() for row in records]


@pytest.mark.slow
def test_a_million_polygons_score_in_bounded_memory(qgis_process_cli, tmp_path):
    started = time.perf_counter()
    input_path = write_gpkg(tmp_path / "input.gpkg", "POLYGON", square_wkbs(0.0), epsg=25833)
    reference_path = write_gpkg(tmp_path / "reference.gpkg", "POLYGON", square_wkbs(SHIFT), epsg=25833)
    written = time.perf_counter() - started
    output = tmp_path / "relevance.gpkg"
    command = [sys.executable, "-c", PEAK_RSS, "/usr/bin/qgis_process.bin", "run", "overlaprelevance:scorerelevance",
               "--json", "--", f"INPUT={input_path}", f"REFERENCE={reference_path}", "POSITIONAL_UNCERTAINTY=0.5",
               f"OUTPUT={output}"]
    report = json.loads(subprocess.run(command, env=qgis_process_cli.env, capture_output=True, text=True,
                                       check=True, timeout=3600).stdout)
    peak = report["peak_kib"] * 1024
    print(f"\n1e6 x 1e6 scorerelevance through qgis_process: {report['seconds']:.0f} s, peak RSS "
          f"{peak / 1024**3:.2f} GiB (inputs written in {written:.0f} s)")
    assert report["returncode"] == 0, report["stdout"] + report["stderr"]
    with closing(sqlite3.connect(output)) as db:
        table = db.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
        n, matched, low = db.execute(f'SELECT count(*), count(rel_match), min(rel_score) FROM "{table}"').fetchone()
    assert n == matched == N_SIDE**2
    assert low > 0.4  # every square overlaps its shifted twin by 70 %: IoU 0.54
    assert peak < PEAK_LIMIT_BYTES, f"peak RSS {peak / 1024**3:.2f} GiB"
