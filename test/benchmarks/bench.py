"""`make bench`: the plugin side by side with what users would use instead, on the same data.

Contestants, each run as its own process (wall time and peak RSS of that process), the
median of ``--repeats`` runs:

1. ``overlaprelevance:scorerelevance`` through ``qgis_process`` (σ = 0, and σ = 0.5 m);
2. QGIS's native "Overlap analysis" (``native:calculatevectoroverlaps``) through ``qgis_process``;
3. the strongest exact script we could write (``exact_baseline.py exact``): vectorised
   shapely 2 exact overlap of the full-detail geometries in local metric frames, STRtree
   candidates, the same threads as the plugin;
4. for σ > 0, Monte-Carlo exact overlap with 256 displacements per pair
   (``exact_baseline.py monte-carlo``), on a random subset of the candidate pairs, per pair.

Agreement is the share of input features whose best match (``rel_match``) equals the exact
best match (highest exact IoU), over the features whose exact best IoU is above 0 and not
tied with their second best (within 1e-6). Native overlap analysis reports overlap with the
overlay layer as a whole, not a best match, so it has no agreement.

Writes ``test/benchmarks/RESULTS.md`` and ``results.json`` next to it (``--quick``: a tiny
generated set, one run, into ``build/bench/``; that is what ``make test`` checks).
"""

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import datasets  # noqa: E402
from tools.qgis_process import QGIS_PROCESS, QgisProcess  # noqa: E402

REPO_ROOT = HERE.parents[1]
PYTHON = sys.executable
SIGMA = 0.5  # metres, the σ > 0 runs
MC_SAMPLES = 256
TIE_TOLERANCE = 1e-6

TARGETS = {
    "world_map_vs_native": 10.0,  # scorerelevance end to end, × faster than native overlap analysis
    "not_slower_than_exact": 1.0,
    "pairs_per_second_100k": 20_000,
    "match_vs_score": 2.0,
    "peak_gb_100k": 2.0,
    "mc_ratio": 300.0,
    "agreement_100k": 0.99,
    "agreement_world_map": 0.97,
    "sigma_vs_zero_100k": 1.2,  # issue 29: σ = 0.5 m end to end within 1.2 × the σ = 0 time
}


def run_measured(command, env=None, timeout=3600):
    """Run ``command``; (wall seconds, peak RSS in MB of that process, stdout, stderr, exit code).

    The command is started by ``peak_rss.py`` under a bare interpreter, not forked from this
    process, so its peak RSS is its own (see that script).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as measured:
        launcher = ["/usr/bin/python3", "-I", "-S", HERE / "peak_rss.py", measured.name, *command]
        process = subprocess.Popen([str(c) for c in launcher], stdout=out, stderr=err, env=env,
                                   start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        fields = measured.read().split()
        wall, peak_kib = (float(fields[0]), float(fields[1])) if len(fields) == 2 else (float(timeout), 0.0)
        out.seek(0)
        err.seek(0)
        return wall, peak_kib / 1024.0, out.read(), err.read(), process.returncode


class Runner:
    def __init__(self, repeats, workdir):
        self.repeats = repeats
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cli = QgisProcess(REPO_ROOT / ".venv" / "plugins", home=self.workdir / "qgis-home")
        self.cli.enable()

    def repeated(self, label, command, env=None):
        """Median wall time and peak RSS over the repeats; the last run's output."""
        walls, peaks = [], []
        for attempt in range(self.repeats):
            wall, peak, stdout, stderr, code = run_measured(command, env)
            if code != 0:
                raise RuntimeError(f"{label} failed ({code}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
            walls.append(wall)
            peaks.append(peak)
            print(f"  {label}: run {attempt + 1}/{self.repeats} {wall:.2f} s, {peak:.0f} MB", flush=True)
        return {"median_s": statistics.median(walls), "runs_s": walls, "peak_rss_mb": max(peaks),
                "stdout": stdout}

    def qgis(self, label, algorithm, parameters):
        command = [QGIS_PROCESS, "run", algorithm, "--json", "--"]
        command += [f"{key}={value}" for key, value in parameters.items()]
        result = self.repeated(label, command, self.cli.env)
        text = result.pop("stdout")
        result["json"] = json.loads(text[text.index("{"):])
        return result

    def python(self, label, script, *args):
        result = self.repeated(label, [PYTHON, HERE / script, *args])
        result.pop("stdout")
        return result


def read_relevance(path):
    """{input fid: (rel_match, rel_score)} of a scorerelevance output."""
    from osgeo import ogr

    dataset = ogr.Open(str(path))
    layer = dataset.GetLayer(0)
    matches = {feature.GetFID(): (feature.GetField("rel_match"), feature.GetField("rel_score")) for feature in layer}
    dataset = None
    return matches


def agreement(exact, matches):
    """Share of decidable input features whose rel_match is the exact best match, and the largest |rel_score −
    exact best IoU| over those that agree (at σ = 0 the written score is the exact IoU, issue 25)."""
    decidable = (exact["best_iou"] > 0) & (exact["best_iou"] - exact["second_iou"] > TIE_TOLERANCE)
    fids = exact["fids_a"][decidable]
    truth = exact["best_fid"][decidable]
    rows = [matches.get(int(f), (None, None)) for f in fids]
    got = np.array([-1 if match is None else match for match, _ in rows])
    scores = np.array([np.nan if score is None else score for _, score in rows], dtype=float)
    hits = got == truth
    errors = np.abs(scores[hits] - exact["best_iou"][decidable][hits])
    return {"agreement": float(hits.mean()) if hits.size else float("nan"), "decidable": int(decidable.sum()),
            "mismatches": int((~hits).sum()), "examples": [int(f) for f in fids[~hits][:10]],
            "largest_iou_error": float(np.nanmax(errors)) if errors.size else None}


def scoring_log(result):
    """(candidate pairs, the plugin's stage timings) from a scorerelevance log."""
    info = " ".join(result["json"].get("log", {}).get("info", []))
    pairs = re.search(r"Scored (\d+) candidate pairs", info)
    stages = {name: float(value) for name, value in re.findall(r"(?:Timings: |, )([a-z/ ]+) ([0-9.]+) s\b", info)}
    return (int(pairs.group(1)) if pairs else None), stages


def bench_dataset(runner, data, mc_pairs, profile=True):
    print(f"{data.name}: {data.description}", flush=True)
    out = runner.workdir / data.name
    out.mkdir(parents=True, exist_ok=True)
    result = {"name": data.name, "description": data.description}

    exact_path = out / "exact.npz"
    result["exact"] = runner.python("exact shapely script", "exact_baseline.py", "exact", data.input, data.reference,
                                    exact_path, "--layer", out / "exact.gpkg")
    exact = dict(np.load(exact_path))
    pairs = int(exact["pairs"])
    result["candidate_pairs"] = pairs
    result["input_features"] = len(exact["fids_a"])

    for key, sigma in (("plugin", 0.0), ("plugin_sigma", SIGMA)):
        output = out / f"relevance_{key}.gpkg"
        label = f"scorerelevance σ={sigma:g}"
        result[key] = runner.qgis(label, "overlaprelevance:scorerelevance", {
            "INPUT": data.input, "REFERENCE": data.reference, "POSITIONAL_UNCERTAINTY": sigma, "OUTPUT": output})
        plugin_pairs, stages = scoring_log(result[key])
        result[key]["pairs"] = plugin_pairs
        result[key]["stages_s"] = stages
        result[key].pop("json")
        result[key]["agreement"] = agreement(exact, read_relevance(output))

    # matchfeatures on the same data (issue 15): within 2× scorerelevance's time at the same σ.
    result["match"] = runner.qgis(f"matchfeatures σ={SIGMA:g}", "overlaprelevance:matchfeatures", {
        "INPUT": data.input, "REFERENCE": data.reference, "POSITIONAL_UNCERTAINTY": SIGMA,
        "OUTPUT": out / "match_input.gpkg", "OUTPUT_REFERENCE": out / "match_reference.gpkg",
        "OUTPUT_GROUPS": out / "match_groups.gpkg"})
    result["match"]["groups"] = result["match"].pop("json").get("results", {}).get("N_GROUPS")

    result["native"] = runner.qgis("native overlap analysis", "native:calculatevectoroverlaps", {
        "INPUT": data.input, "LAYERS": data.reference, "OUTPUT": out / "native.gpkg"})
    result["native"].pop("json")

    mc_path = out / "monte_carlo.json"
    result["monte_carlo"] = runner.python("Monte Carlo 256", "exact_baseline.py", "monte-carlo", data.input,
                                          data.reference, mc_path, "--sigma", SIGMA, "--pairs", mc_pairs,
                                          "--samples", MC_SAMPLES)
    result["monte_carlo"].update(json.loads(mc_path.read_text()))

    if profile:
        profile_path = out / "profile.json"
        subprocess.run([PYTHON, HERE / "profile_pipeline.py", data.input, data.reference, profile_path], check=True)
        result["profile"] = json.loads(profile_path.read_text())
    return result


def derive(result):
    """Ratios, rates and per-pair costs of one data set's results."""
    pairs = result["candidate_pairs"]
    native, exact, plugin, sigma = (result[k]["median_s"] for k in ("native", "exact", "plugin", "plugin_sigma"))
    mc = result["monte_carlo"]
    sigma_pairs = result["plugin_sigma"]["pairs"] or pairs
    # The scoring loop: the worker threads score chunks while this thread writes the features already
    # scored, so the loop's wall time (waiting for scores plus that writing) bounds the scoring from above.
    stages_sigma = result["plugin_sigma"]["stages_s"]
    scoring_s = (stages_sigma["scoring"] + stages_sigma.get("writing while scoring", 0.0)
                 if "scoring" in stages_sigma else None)
    algorithm_s = sum(result["plugin"]["stages_s"].values())
    return {
        "plugin_vs_native": native / plugin,
        "plugin_vs_exact": exact / plugin,
        # "Without start-up": the algorithm's own logged stages, reading to closing the output.
        "plugin_vs_exact_without_startup": (exact / algorithm_s) if algorithm_s else None,
        "plugin_sigma_vs_native": native / sigma,
        "plugin_sigma_vs_exact": exact / sigma,
        "plugin_sigma_vs_zero": sigma / plugin,
        "pairs_per_s": {k: pairs / result[k]["median_s"] for k in ("plugin", "plugin_sigma", "native", "exact")},
        "plugin_pairs_per_s_without_startup": (pairs / algorithm_s) if algorithm_s else None,
        "mc_s_per_pair": mc["seconds_per_pair"],
        "model_s_per_pair_end_to_end": sigma / sigma_pairs,
        "model_s_per_pair_scoring": (scoring_s / sigma_pairs) if scoring_s else None,
        "mc_ratio_end_to_end": mc["seconds_per_pair"] / (sigma / sigma_pairs),
        "mc_ratio_scoring": (mc["seconds_per_pair"] / (scoring_s / sigma_pairs)) if scoring_s else None,
        "match_vs_score": result["match"]["median_s"] / sigma if "match" in result else None,
    }


def machine(env=None):
    def command(*args):
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
            return (done.stdout + "\n" + done.stderr).strip()
        except OSError:
            return ""

    import numpy
    import pyproj
    import shapely

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0.0)
    qgis = command(QGIS_PROCESS, "--version").splitlines()
    from overlap_relevance.model.parallel import default_workers

    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(memory, 1),
        "os": (command("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME") or platform.platform()),
        "qgis": " / ".join(line.strip() for line in qgis if line.startswith(("QGIS", "GEOS", "GDAL", "PROJ"))),
        "python": platform.python_version(), "numpy": numpy.__version__, "shapely": shapely.__version__,
        "shapely_geos": ".".join(map(str, shapely.geos_version)), "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str, "threads": default_workers(),
    }


def _ratio(value):
    """A speed ratio: one decimal below 10 (0.5× is not 0×), none above."""
    return _fmt(value, 1 if value is not None and abs(value) < 10 else 0)


def _fmt(value, digits=2):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def report(results, info, repeats, quick, startup):
    lines = [
        "# Benchmarks: overlap_relevance against what users would use instead",
        "",
        f"Regenerated by `make bench` ({'quick check' if quick else 'full run'}) on "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; every time is the median of "
        f"{repeats} run(s), each contestant its own process. Do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores available, {info['memory_gb']} GB memory; {info['os']}",
        f"- QGIS: {info['qgis']}",
        f"- Python {info['python']}, NumPy {info['numpy']}, shapely {info['shapely']} (GEOS {info['shapely_geos']}), "
        f"pyproj {info['pyproj']} (PROJ {info['proj']})",
        f"- Threads used by the plugin and by the exact and Monte-Carlo scripts: {info['threads']}",
        "",
        "## Contestants",
        "",
        "- **scorerelevance**: `overlaprelevance:scorerelevance` through `qgis_process`, end to end (start-up, "
        "reading, scoring, writing a GeoPackage), at σ = 0 and at σ = 0.5 m.",
        "- **native overlap analysis**: `native:calculatevectoroverlaps` through `qgis_process` (overlap area and "
        "share per input feature against the reference layer as a whole; no best match, so no agreement).",
        "- **exact shapely script**: plain Python; OGR reading, STRtree candidates, every pair in its local metric "
        "frame, exact GEOS overlay of the full-detail geometries, best match by exact IoU, written back with the "
        "input's geometry and fields to a GeoPackage (the plugin's deliverable). It is the truth for the "
        "agreement column.",
        f"- **Monte Carlo 256**: exact overlay of A with B translated by {MC_SAMPLES} displacements "
        f"d ~ N(0, σ²I), σ = {SIGMA} m, on a random subset of the candidate pairs; compared per pair.",
        "",
        "Agreement: the share of input features whose best match equals the exact best match, over the features "
        "whose exact best IoU is above 0 and not tied (1e-6) with their second best.",
        "",
        f"Every `qgis_process` run pays a fixed start-up: a trivial algorithm (`native:buffer` of 240 features) "
        f"takes {_fmt(startup['median_s'])} s (runs: {', '.join(_fmt(v) for v in startup['runs_s'])} s). The "
        "exact and Monte-Carlo scripts are plain Python and do not pay it.",
        "",
    ]
    for result in results:
        d = result["derived"]
        lines += [
            f"## {result['name']}",
            "",
            f"{result['description']}: {result['input_features']:,} input features, "
            f"{result['candidate_pairs']:,} candidate pairs.",
            "",
            "| contestant | median wall (s) | runs (s) | candidate pairs/s | peak RSS (MB) | × vs native | × vs exact "
            "| best-match agreement |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, label in (("plugin", "scorerelevance σ=0"), ("plugin_sigma", f"scorerelevance σ={SIGMA:g} m"),
                           ("native", "native overlap analysis"), ("exact", "exact shapely script")):
            row = result[key]
            native_ratio = result["native"]["median_s"] / row["median_s"]
            exact_ratio = result["exact"]["median_s"] / row["median_s"]
            agree = row.get("agreement")
            agree_text = (f"{agree['agreement']:.2%} ({agree['decidable'] - agree['mismatches']:,}/"
                          f"{agree['decidable']:,})" if agree else ("(the truth)" if key == "exact" else "n/a"))
            lines.append(
                f"| {label} | {_fmt(row['median_s'])} | {', '.join(_fmt(v) for v in row['runs_s'])} | "
                f"{_fmt(d['pairs_per_s'][key], 0)} | {_fmt(row['peak_rss_mb'], 0)} | {_fmt(native_ratio)} | "
                f"{_fmt(exact_ratio)} | {agree_text} |")
        mc = result["monte_carlo"]
        iou_error = result["plugin"].get("agreement", {}).get("largest_iou_error")
        lines += [
            "",
            f"Largest |rel_score − exact IoU| at σ = 0 over the features whose best match agrees: "
            f"{'n/a' if iou_error is None else f'{iou_error:.1e}'}.",
            "",
            f"σ > 0: Monte Carlo 256 on {mc['pairs']} pairs took {_fmt(mc['seconds'])} s, "
            f"{_fmt(mc['seconds_per_pair'] * 1e3, 3)} ms per pair. scorerelevance at σ = {SIGMA:g} m: "
            f"{_fmt(d['model_s_per_pair_end_to_end'] * 1e6, 1)} µs per pair end to end "
            f"(**{_ratio(d['mc_ratio_end_to_end'])}×** faster), "
            f"{_fmt((d['model_s_per_pair_scoring'] or float('nan')) * 1e6, 1)} µs per pair in its scoring loop "
            "(scoring, and the writing done meanwhile) "
            f"({_ratio(d['mc_ratio_scoring'])}×).",
            "",
        ]
        stages = result["plugin"]["stages_s"]
        if stages:
            lines += ["scorerelevance's own stage timings (σ = 0, last run, from its log): " +
                      ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()) + ".", ""]
        if "profile" in result:
            profile = result["profile"]
            lines += [
                f"Profile of the pipeline, one thread, plain Python (`profile_pipeline.py`), "
                f"{profile['pairs']:,} pairs, {_fmt(profile['total'])} s in all:",
                "",
                "| stage | seconds | share |",
                "|---|---|---|",
            ]
            for stage, seconds in profile["seconds"].items():
                share = "" if stage.startswith("(") else f"{seconds / profile['total']:.0%}"
                lines.append(f"| {stage} | {_fmt(seconds, 3)} | {share} |")
            lines.append("")
    lines += targets_section(results)
    return "\n".join(lines) + "\n"


def targets_section(results):
    by_name = {r["name"]: r for r in results}
    rows = []

    def add(measure, value, target, ok, text=None):
        rows.append(f"| {measure} | {text or _fmt(value)} | {target} | {'met' if ok else '**missed**'} |")

    if "world_map" in by_name:
        ratio = by_name["world_map"]["derived"]["plugin_vs_native"]
        add("world_map: scorerelevance vs native overlap analysis, end to end", ratio, "≥ 10×",
            ratio >= TARGETS["world_map_vs_native"], f"{ratio:.1f}×")
    for result in results:
        ratio = result["derived"]["plugin_vs_exact"]
        without = result["derived"]["plugin_vs_exact_without_startup"]
        add(f"{result['name']}: scorerelevance vs exact shapely script", ratio, "≥ 1× (not slower)",
            ratio >= TARGETS["not_slower_than_exact"],
            f"{ratio:.2f}× ({_fmt(without)}× in the algorithm, without qgis_process start-up)")
    big = by_name.get("buildings_100k")
    if big:
        rate = big["derived"]["pairs_per_s"]["plugin"]
        without = big["derived"]["plugin_pairs_per_s_without_startup"]
        add("buildings_100k: candidate pairs/s end to end", rate, "≥ 20,000",
            rate >= TARGETS["pairs_per_second_100k"],
            f"{rate:,.0f} ({_fmt(without, 0)} in the algorithm, without qgis_process start-up)")
        peak = big["plugin"]["peak_rss_mb"] / 1024
        add("buildings_100k: peak memory", peak, "≤ 2 GB", peak <= TARGETS["peak_gb_100k"], f"{peak:.2f} GB")
        ratio = big["derived"]["plugin_sigma_vs_zero"]
        add(f"buildings_100k: scorerelevance at σ = {SIGMA:g} m / at σ = 0, end to end (issue 29)", ratio, "≤ 1.2×",
            ratio <= TARGETS["sigma_vs_zero_100k"],
            f"{ratio:.2f}× ({big['plugin_sigma']['median_s']:.1f} s / {big['plugin']['median_s']:.1f} s)")
        agree = big["plugin"]["agreement"]["agreement"]
        add("buildings_100k: best-match agreement", agree, "≥ 99 %", agree >= TARGETS["agreement_100k"],
            f"{agree:.2%}")
    if "world_map" in by_name:
        agree = by_name["world_map"]["plugin"]["agreement"]["agreement"]
        add("world_map: best-match agreement", agree, "≥ 97 %", agree >= TARGETS["agreement_world_map"],
            f"{agree:.2%}")
    for result in results:
        ratio = result["derived"].get("match_vs_score")
        if ratio is not None:
            peak = result["match"]["peak_rss_mb"] / 1024
            add(f"{result['name']}: matchfeatures time / scorerelevance time (σ = {SIGMA:g} m, end to end)", ratio,
                "≤ 2× (issue 15)", ratio <= TARGETS["match_vs_score"],
                f"{ratio:.2f}× ({result['match']['median_s']:.1f} s, peak {peak:.2f} GB, "
                f"{result['match']['groups']} groups)")
    for result in results:
        ratio = result["derived"]["mc_ratio_end_to_end"]
        add(f"{result['name']}: σ > 0, per pair vs Monte Carlo 256 (end to end)", ratio, "≥ 300×",
            ratio >= TARGETS["mc_ratio"], f"{_ratio(ratio)}×")
    return ["## Targets (issue 7)", "", "| measure | measured | target | status |", "|---|---|---|---|", *rows, ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny generated set, one run (what make test checks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=None, help="sample, buildings_100k, world_map")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    workdir = REPO_ROOT / "build" / "bench"
    if args.quick:
        chosen = [datasets.generated_buildings(2_000, folder=workdir / "data")]
        repeats, out, mc_pairs = 1, args.out or workdir / "RESULTS-quick.md", {"buildings_2k": 20}
    else:
        every = {"sample": datasets.sample, "buildings_100k": lambda: datasets.generated_buildings(100_000),
                 "world_map": datasets.world_map}
        chosen = [every[name]() for name in (args.datasets or every)]
        repeats, out = args.repeats, args.out or HERE / "RESULTS.md"
        mc_pairs = {"sample": 200, "buildings_100k": 1000, "world_map": 100}
    runner = Runner(repeats, workdir / "runs")
    # What any qgis_process run costs before and after the work: a trivial algorithm on 240 features.
    startup = runner.qgis("qgis_process start-up (native:buffer, 240 features)", "native:buffer", {
        "INPUT": datasets.SAMPLE / "buildings_cadastre.gpkg", "DISTANCE": 0, "OUTPUT": runner.workdir / "startup.gpkg"})
    startup.pop("json")
    results = []
    for data in chosen:
        result = bench_dataset(runner, data, mc_pairs.get(data.name, 200))
        result["derived"] = derive(result)
        results.append(result)
    info = machine(runner.cli.env)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(results, info, repeats, args.quick, startup))
    out.with_name(out.stem + ".json" if out.stem != "RESULTS" else "results.json").write_text(
        json.dumps({"machine": info, "repeats": repeats, "startup": startup, "results": results}, indent=1,
                   default=float))
    print(f"Results written to {out}")


if __name__ == "__main__":
    main()
