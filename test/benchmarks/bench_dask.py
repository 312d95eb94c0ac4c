"""The Dask engine at scale (`make bench-dask`): writes test/benchmarks/RESULTS_DASK.md.

A two-source building set is generated tile by tile (``datasets.two_sources``, the generator of the 100k
benchmark, one seeded city of ``--tile`` buildings per tile, tiles side by side in UTM 33N), each tile one
GeoParquet part of each side, so the whole set is never held in one process. Then, on the same files:

* the single-process path (``overlap-relevance score --engine local``: both layers whole, the plugin's
  chain on its default threads), in a process of its own for its peak RSS;
* the Dask engine on a LocalCluster of 1 and of 2 workers (one thread each), more partitions than
  workers, reading the parts and writing GeoParquet; worker memory sampled from the scheduler.

The 10M x 10M and national (100M pairs) rows are extrapolated from the measured per-partition figures
and say so.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
WORK = REPO_ROOT / "build" / "bench" / "dask"
RESULTS = HERE / "RESULTS_DASK.md"
SIGMA = 0.5
UTM33 = 25833


def _datasets_module():
    """test/benchmarks/datasets.py without GDAL: its generator needs NumPy and shapely only; osgeo is for
    writing GeoPackages, which this benchmark does not do (.venv-dask has no GDAL bindings)."""
    if "osgeo" not in sys.modules:
        try:
            import osgeo  # noqa: F401
        except ImportError:
            stub = types.ModuleType("osgeo")
            stub.ogr = stub.osr = None
            sys.modules["osgeo"] = stub
    sys.path.insert(0, str(HERE))
    import datasets

    return datasets


def generate(n_target, tile, folder, seed=20261122):
    """Parts of about ``tile`` buildings per side, written once per size: (mapping dir, cadastre dir)."""
    import geopandas
    import shapely
    from pyproj import Transformer

    datasets = _datasets_module()
    mapping_dir, cadastre_dir = folder / "mapping.parquet", folder / "cadastre.parquet"
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()) == {"n": n_target, "tile": tile, "seed": seed}:
        return mapping_dir, cadastre_dir
    for d in (mapping_dir, cadastre_dir):
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.parquet"):
            old.unlink()
    n_tiles = int(np.ceil(n_target / tile))
    per_row = int(np.ceil(np.sqrt(n_tiles)))
    to_lonlat = Transformer.from_crs(UTM33, 4326, always_xy=True)
    width = None
    for t in range(n_tiles):
        footprints, mapped, source = datasets.two_sources(tile, np.random.default_rng([seed, t]))
        if width is None:
            low, high = np.array(shapely.total_bounds(footprints)).reshape(2, 2)
            width = float(max(high - low)) + 200.0
        shift = np.array([(t % per_row) * width, (t // per_row) * width])
        footprints = shapely.transform(footprints, lambda xy: xy + shift)
        mapped = shapely.transform(mapped, lambda xy: xy + shift)
        coords = shapely.get_coordinates(mapped)
        lon, lat = to_lonlat.transform(coords[:, 0], coords[:, 1])
        mapped = shapely.set_coordinates(mapped, np.column_stack([lon, lat]))
        base = np.int64(t) * 10_000_000
        geopandas.GeoDataFrame({"building_id": base + np.arange(len(footprints))}, geometry=footprints,
                               crs=UTM33).to_parquet(cadastre_dir / f"part.{t:04d}.parquet")
        geopandas.GeoDataFrame({"map_id": base + np.arange(len(mapped)),
                                "true_match": np.where(source >= 0, base + source, -1)}, geometry=mapped,
                               crs=4326).to_parquet(mapping_dir / f"part.{t:04d}.parquet")
        print(f"  tile {t + 1}/{n_tiles}: {len(mapped):,} mapped, {len(footprints):,} cadastre", flush=True)
    done.write_text(json.dumps({"n": n_target, "tile": tile, "seed": seed}))
    return mapping_dir, cadastre_dir


def count_rows(folder):
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("*.parquet")))


def _local_cli(command, mapping, cadastre, output, *extra):
    """`overlap-relevance COMMAND --engine local` under peak_rss.py: (completed process, wall s, peak RSS KiB)."""
    result = output.with_suffix(".rss")
    argv = [sys.executable, str(HERE / "peak_rss.py"), str(result), sys.executable, "-m",
            "overlap_relevance.scaleout.cli", command, str(mapping), str(cadastre), *extra, "--reference-key",
            "building_id", "--sigma", str(SIGMA), "--engine", "local", "--output", str(output)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=WORK)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    wall, rss_kib = result.read_text().split()
    return done, wall, rss_kib


def run_single_process(mapping, cadastre, output):
    """The local engine in its own process: (wall s, peak RSS MB, pairs, preparing s, scoring s)."""
    done, wall, rss_kib = _local_cli("score", mapping, cadastre, output)
    line = next(x for x in done.stdout.splitlines() if "candidate pairs" in x)
    pairs = int(line.split()[0])
    preparing = float(line.split("preparing ")[1].split(" s")[0])
    scoring = float(line.split("scoring ")[1].split(" s")[0])
    return {"wall": float(wall), "peak_rss_mb": int(rss_kib) / 1024, "pairs": pairs, "preparing": preparing,
            "scoring": scoring}


class WorkerMemory:
    """Samples every worker's process memory (the scheduler's heartbeat metrics) while a run goes on."""

    def __init__(self, client, every=0.5):
        self.client, self.every, self.peak = client, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                for address, worker in self.client.scheduler_info(n_workers=-1)["workers"].items():
                    memory = worker.get("metrics", {}).get("memory", 0)
                    self.peak[address] = max(self.peak.get(address, 0), memory)
            except Exception:  # noqa: BLE001 (a heartbeat missed while the cluster is busy)
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_dask(mapping, cadastre, output, workers, partitions):
    import logging
    import shutil

    import dask_geopandas
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster, get_task_stream

    from overlap_relevance.scaleout import score_relevance

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if output.exists():
        shutil.rmtree(output)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, WorkerMemory(client) as memory, get_task_stream(client) as stream:
        started = time.perf_counter()
        input_ddf = dask_geopandas.read_parquet(mapping, gather_spatial_partitions=False)
        reference_ddf = dask_geopandas.read_parquet(cadastre, gather_spatial_partitions=False)
        stage = output.with_name(output.name + ".stage")
        shutil.rmtree(stage, ignore_errors=True)
        result = score_relevance(input_ddf, reference_ddf, reference_key="building_id", sigma=SIGMA,
                                 partitions=partitions, workdir=stage)
        prepared = time.perf_counter()
        client.compute(result.to_parquet(output, compute=False)).result()
        finished = time.perf_counter()
        staged_mb = sum(f.stat().st_size for f in stage.rglob("*.parquet")) / 2**20
        shutil.rmtree(stage, ignore_errors=True)
    score_seconds = _compute_seconds(stream.data, "_score_bucket")
    prepare_seconds = _compute_seconds(stream.data, "stage_")
    counts = pq.read_table(output, columns=["rel_n"]).column("rel_n").to_numpy(zero_copy_only=False)
    pairs = int(np.nansum(counts.astype(float)))
    return {"workers": workers, "partitions": partitions, "wall": finished - started,
            "prepare_and_sort": prepared - started, "score_and_write": finished - prepared, "pairs": pairs,
            "peak_worker_mb": max(memory.peak.values()) / 2**20 if memory.peak else float("nan"),
            "score_task_seconds": score_seconds, "prepare_task_seconds": prepare_seconds,
            "n_features": int(len(counts)), "staged_mb": staged_mb,
            "features_per_partition": int(len(counts)) / partitions}


def run_match_single(mapping, cadastre, output):
    """`overlap-relevance match --engine local` in its own process: (wall s, peak RSS MB)."""
    _, wall, rss_kib = _local_cli("match", mapping, cadastre, output, "--input-key", "map_id")
    return {"wall": float(wall), "peak_rss_mb": int(rss_kib) / 1024}


def run_match_dask(mapping, cadastre, output, workers, partitions):
    """scaleout.match on a LocalCluster, the input side written as GeoParquet parts."""
    import logging
    import shutil

    import dask_geopandas
    from distributed import Client, LocalCluster

    from overlap_relevance.scaleout import match

    logging.getLogger("distributed").setLevel(logging.ERROR)
    shutil.rmtree(output, ignore_errors=True)
    stage = output.with_name(output.name + ".stage")
    shutil.rmtree(stage, ignore_errors=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, WorkerMemory(client) as memory:
        started = time.perf_counter()
        result, _ = match(dask_geopandas.read_parquet(mapping, gather_spatial_partitions=False),
                          dask_geopandas.read_parquet(cadastre, gather_spatial_partitions=False), input_key="map_id",
                          reference_key="building_id", sigma=SIGMA, partitions=partitions, workdir=stage)
        decided = time.perf_counter()
        client.compute(result.to_parquet(output, compute=False)).result()
        finished = time.perf_counter()
    shutil.rmtree(stage, ignore_errors=True)
    return {"workers": workers, "partitions": partitions, "wall": finished - started,
            "stage_score_decide": decided - started, "write": finished - decided,
            "peak_worker_mb": max(memory.peak.values()) / 2**20 if memory.peak else float("nan")}


def match_agreement(single_output, dask_output):
    """Share of input features with the same class, partner and change label in both runs."""
    import geopandas
    import pandas as pd

    single = geopandas.read_parquet(single_output).set_index("map_id")
    dask = pd.concat([geopandas.read_parquet(p) for p in sorted(dask_output.glob("*.parquet"))]).set_index("map_id")
    dask = dask.loc[single.index]
    same = np.ones(len(single), dtype=bool)
    def text(column):
        return np.array(["" if pd.isna(v) else str(v) for v in column], dtype=object)

    for name in ("m_class", "m_key", "m_change"):
        same &= text(single[name]) == text(dask[name])
    return {"features": len(single), "same": int(same.sum()),
            "groups": int((single["m_class"] != "unmatched").sum())}


def _compute_seconds(records, prefix):
    """Compute seconds of each task whose key names ``prefix`` (distributed's task stream)."""
    return [sum(s["stop"] - s["start"] for s in record.get("startstops", ()) if s.get("action") == "compute")
            for record in records if prefix in str(record.get("key"))]


def machine():
    import dask
    import numpy
    import pyproj
    import shapely

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0.0)
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores available, {memory:.1f} GB memory; Python "
            f"{platform.python_version()}, NumPy {numpy.__version__}, shapely {shapely.__version__} (GEOS "
            f"{'.'.join(map(str, shapely.geos_version))}), pyproj {pyproj.__version__}, Dask {dask.__version__}")


def report(info, single, runs, n_mapping, n_cadastre, matching=None):
    best = max(runs, key=lambda r: r["workers"])
    lines = [
        "# Benchmarks: the Dask engine (`scaleout/`) at scale",
        "",
        f"Regenerated by `make bench-dask` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; one run "
        "each. Do not edit by hand.",
        "",
        f"- Machine: {info}. The machine was shared with other jobs while this ran.",
        f"- Data: generated two-source buildings (`datasets.two_sources`, tile by tile, {info_tiles}): "
        f"{n_mapping:,} mapped (EPSG:4326) × {n_cadastre:,} cadastre (EPSG:25833) buildings, "
        f"{single['pairs']:,} candidate pairs at σ = {SIGMA} m, as GeoParquet parts.",
        "- Single process: `overlap-relevance score --engine local` (both layers whole, the plugin's chain on "
        "its default threads), reading the parts and writing one GeoParquet file; peak RSS of that process.",
        "- Dask: `score_relevance` on a LocalCluster (one thread per worker), reading the parts, staging both "
        "layers on disk (prepared, Hilbert-sorted Parquet) and writing GeoParquet parts; peak memory per worker "
        "is the largest process memory the scheduler saw for a worker (sampled every 0.5 s).",
        "",
        "| run | workers | partitions | wall (s) | stage (s) | score + write (s) | candidate pairs/s "
        "end to end | peak memory (MB) | worker-seconds per million pairs |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| single process | 1 process ({info_threads} threads) | – | {single['wall']:.1f} | "
        f"{single['preparing']:.1f} (preparing, after reading) | {single['scoring']:.1f} (scoring) | "
        f"{single['pairs'] / single['wall']:,.0f} | {single['peak_rss_mb']:,.0f} | "
        f"{single['wall'] * 1e6 / single['pairs']:.1f} s of wall time per million pairs, on {info_threads} threads |",
    ]
    for run in runs:
        work = sum(run["score_task_seconds"]) + sum(run["prepare_task_seconds"])
        lines.append(
            f"| Dask | {run['workers']} | {run['partitions']} | {run['wall']:.1f} | {run['prepare_and_sort']:.1f} | "
            f"{run['score_and_write']:.1f} | {run['pairs'] / run['wall']:,.0f} | {run['peak_worker_mb']:,.0f} "
            f"per worker | {run['wall'] * run['workers'] * 1e6 / run['pairs']:.1f} ({work * 1e6 / run['pairs']:.1f} "
            "in prepare and score tasks) |")
    same = all(r["pairs"] == single["pairs"] and r["n_features"] == n_mapping for r in runs)
    lines += ["", f"Every run scored the same {single['pairs']:,} pairs and kept all {n_mapping:,} input features: "
              f"{'yes' if same else 'NO'}. Speed-up of {best['workers']} workers over {runs[0]['workers']}: "
              f"{runs[0]['wall'] / best['wall']:.2f}×; {best['workers']} workers against the single process on as "
              f"many threads: {single['wall'] / best['wall']:.2f}× its speed. Per pair, one Dask worker costs "
              f"{runs[0]['wall'] * runs[0]['workers'] / single['pairs'] * 1e6:.0f} worker-seconds per million pairs "
              f"end to end; the scoring tasks alone {sum(runs[0]['score_task_seconds']) * 1e6 / single['pairs']:.0f}."
              f" Staged on disk: {best.get('staged_mb', float('nan')):,.0f} MB; "
              f"{best.get('features_per_partition', float('nan')):,.0f} input features per partition. Nothing is "
              "held in worker memory between tasks: a worker holds one partition while staging and one bucket "
              "with the reference rows near it while scoring."]
    # Extrapolation from the measured per-partition figures of the largest cluster run.
    tasks = best["score_task_seconds"]
    per_task = float(np.mean(tasks)) if tasks else float("nan")
    pairs_per_task = best["pairs"] / max(len(tasks), 1)
    prepare = sum(best["prepare_task_seconds"])
    per_million = (sum(tasks) + prepare) * 1e6 / best["pairs"]
    lines += [
        "",
        "## Extrapolation (not measured)",
        "",
        f"From the {best['workers']}-worker run: a scoring task (one partition) took {per_task:.1f} s on average for "
        f"{pairs_per_task:,.0f} pairs; preparing both sides took {prepare:.1f} worker-seconds; in all "
        f"{per_million:.1f} worker-seconds per million pairs. Assuming the work grows linearly with the pairs "
        "(each partition's work depends only on its own features and its neighbours'), with partitions of the "
        "same size and the staging and writing growing as measured here:",
        "",
        "| run | pairs | partitions | worker-seconds | wall on 2 workers | wall on 32 workers | wall on 128 workers |",
        "|---|---|---|---|---|---|---|",
    ]
    scale_wall = best["wall"] * best["workers"] * 1e6 / best["pairs"]  # end-to-end worker-seconds per million
    pairs_10m = best["pairs"] / n_mapping * 10_000_000  # pairs per input building as measured
    for label, pairs in (("10M × 10M buildings", pairs_10m), ("national run, 100M pairs", 100_000_000)):
        seconds = scale_wall * pairs / 1e6
        parts = int(np.ceil(pairs / pairs_per_task))
        lines.append(f"| {label} (extrapolated) | {pairs:,.0f} | {parts:,} | {seconds:,.0f} | "
                     f"{seconds / 2 / 3600:.1f} h | {seconds / 32 / 60:.1f} min | {seconds / 128 / 60:.1f} min |")
    lines += ["", "Worker-seconds use the end-to-end figure (reading, preparing, sorting, scoring and writing, "
              f"{scale_wall:.1f} worker-seconds per million pairs); the wall columns assume perfect scaling "
              "over workers, which the scheduler and shared storage will not quite give, and at least as many "
              "partitions as workers (smaller partitions than here where the column says fewer). Memory per worker "
              "stays that of one partition and its neighbours if partitions keep this size "
              f"({best['peak_worker_mb']:,.0f} MB measured)."]
    if matching:
        one, dask, agree = matching["single"], matching["dask"], matching["agreement"]
        lines += ["", "## Matching", "",
                  "`overlap-relevance match` (groups, one-to-one matches, change labels) on the same layers: the "
                  "single process on both layers whole, and `scaleout.match` on the Dask cluster (buckets decided "
                  "where they are, groups that reach across buckets joined on the client and decided again).", "",
                  "| run | workers | partitions | wall (s) | stage, score and decide (s) | write (s) | peak memory (MB) |",
                  "|---|---|---|---|---|---|---|",
                  f"| single process | 1 process | – | {one['wall']:.1f} | – | – | {one['peak_rss_mb']:,.0f} |",
                  f"| Dask | {dask['workers']} | {dask['partitions']} | {dask['wall']:.1f} | "
                  f"{dask['stage_score_decide']:.1f} | {dask['write']:.1f} | {dask['peak_worker_mb']:,.0f} per worker |",
                  "", f"Same class, one-to-one partner and change label as the single process: {agree['same']:,} of "
                  f"{agree['features']:,} input features ({agree['groups']:,} in a group)."]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


info_tiles = ""
info_threads = ""


def main(argv=None):
    global info_tiles, info_threads
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="buildings per side (default 1M)")
    parser.add_argument("--tile", type=int, default=100_000, help="buildings per generated tile (one part)")
    parser.add_argument("--partitions", type=int, default=8, help="Dask partitions (more than workers)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-match", action="store_true", help="skip the matching runs (single process and Dask)")
    parser.add_argument("--report-only", action="store_true", help="rewrite RESULTS_DASK.md from the last results.json")
    parser.add_argument("--dask-only", action="store_true",
                        help="no single-process run (it holds both layers whole): for sets beyond one machine's "
                             "memory; writes RESULTS_DASK_<n>.md")
    args = parser.parse_args(argv)
    from overlap_relevance.model.parallel import default_workers

    info_threads = str(default_workers())
    folder = WORK / f"buildings_{args.n // 1000}k"
    folder.mkdir(parents=True, exist_ok=True)
    if args.report_only and not args.dask_only:
        saved = json.loads((folder / "results.json").read_text())
        info_tiles = saved.get("tiles", f"{int(np.ceil(args.n / args.tile))} tiles of {args.tile:,}")
        mapping, cadastre = folder / "mapping.parquet", folder / "cadastre.parquet"
        report(machine(), saved["single"], saved["runs"], count_rows(mapping), count_rows(cadastre),
               saved.get("matching"))
        print(f"Wrote {RESULTS}")
        return
    print(f"Generating {args.n:,} x {args.n:,} buildings in tiles of {args.tile:,} under {folder}", flush=True)
    started = time.perf_counter()
    mapping, cadastre = generate(args.n, args.tile, folder)
    info_tiles = f"{int(np.ceil(args.n / args.tile))} tiles of {args.tile:,}, {time.perf_counter() - started:.0f} s"
    n_mapping, n_cadastre = count_rows(mapping), count_rows(cadastre)
    if args.dask_only:
        return dask_only(args, folder, mapping, cadastre, n_mapping, n_cadastre)
    print("Single process ...", flush=True)
    single = run_single_process(mapping, cadastre, folder / "single.parquet")
    print(f"  {single}", flush=True)
    runs = dask_runs(args, folder, mapping, cadastre)
    matching = None
    if not args.no_match:
        print("Match, single process ...", flush=True)
        match_single = run_match_single(mapping, cadastre, folder / "match_single.parquet")
        workers = max(args.workers)
        print(f"Match, Dask, {workers} workers ...", flush=True)
        match_dask = run_match_dask(mapping, cadastre, folder / "match_dask.parquet", workers, args.partitions)
        matching = {"single": match_single, "dask": match_dask,
                    "agreement": match_agreement(folder / "match_single.parquet", folder / "match_dask.parquet")}
        print(f"  {matching}", flush=True)
    (folder / "results.json").write_text(json.dumps({"single": single, "runs": runs, "tiles": info_tiles,
                                                     "matching": matching}, indent=1))
    report(machine(), single, runs, n_mapping, n_cadastre, matching)
    print(f"Wrote {RESULTS}")


def dask_runs(args, folder, mapping, cadastre):
    """One Dask run per --workers value, on --partitions partitions."""
    runs = []
    for workers in args.workers:
        print(f"Dask, {workers} worker(s), {args.partitions} partitions ...", flush=True)
        run = run_dask(mapping, cadastre, folder / f"dask_{workers}.parquet", workers, args.partitions)
        print(f"  wall {run['wall']:.1f} s, {run['pairs']:,} pairs, peak worker {run['peak_worker_mb']:.0f} MB",
              flush=True)
        runs.append(run)
    return runs


def dask_only(args, folder, mapping, cadastre, n_mapping, n_cadastre):
    """The Dask runs alone, on a set one process would not hold; a results file of their own."""
    global info_tiles
    if args.report_only:
        saved = json.loads((folder / "results.json").read_text())
        runs, info_tiles = saved["runs"], saved["tiles"]
    else:
        runs = dask_runs(args, folder, mapping, cadastre)
        (folder / "results.json").write_text(json.dumps({"runs": runs, "tiles": info_tiles}, indent=1))
    out = HERE / f"RESULTS_DASK_{args.n // 1_000_000}M.md"
    lines = [f"# Benchmarks: the Dask engine on {n_mapping:,} × {n_cadastre:,} buildings", "",
             f"Regenerated by `bench_dask.py --n {args.n} --dask-only` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
             " one run each, no single-process run (it would hold both layers whole). Do not edit by hand.", "",
             f"- Machine: {machine()}", f"- Data: {info_tiles}; σ = {SIGMA} m.", "",
             "| workers | partitions | input features per partition | wall (s) | stage (s) | score + write (s) | "
             "candidate pairs | pairs/s end to end | peak memory per worker (MB) | staged on disk (MB) | "
             "input features kept |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['workers']} | {run['partitions']} | {run['features_per_partition']:,.0f} | "
                     f"{run['wall']:.1f} | {run['prepare_and_sort']:.1f} | "
                     f"{run['score_and_write']:.1f} | {run['pairs']:,} | {run['pairs'] / run['wall']:,.0f} | "
                     f"{run['peak_worker_mb']:,.0f} | {run['staged_mb']:,.0f} | {run['n_features']:,} of {n_mapping:,} |")
    out.write_text("\n".join(lines) + "\n")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
