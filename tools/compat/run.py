"""`make test-compat`: the fast suite, `make demo` and the install advice on every QGIS in the matrix.

For each target of :data:`roots.TARGETS` (QGIS 3.22 from bookworm, 3.40 from bookworm-backports,
3.44 from trixie-backports), in its cached Debian root:

1. the working tree (tracked and untracked files git does not ignore) is copied in afresh, as a
   clean clone would be, with no venv;
2. ``make test`` runs there (it makes both venvs, so its time is a fresh set-up with pip's cache
   of earlier runs), writing JUnit files; with ``--warm`` it runs a second time, set up;
3. ``make demo`` runs;
4. tools/compat/advice_check.py runs every install command the plugin prints, as printed.

Writes tools/compat/RESULTS.md (the table the README shows) and results.json. Needs root
(debootstrap, chroot, mount). Usage: ``python3 tools/compat/run.py [--warm] [NAME ...]``.
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roots import REPO_ROOT, ROOTS, TARGETS, chroot, ensure_root  # noqa: E402

HERE = Path(__file__).resolve().parent
INSIDE = "/work/overlap_relevance"  # where the working tree goes in each root
REPORTS = "/work/reports"
#: The suites `make test` runs, each writing TEST_REPORTS/<name>.xml (see the Makefile's `test` target).
SUITES = ("qgis", "training", "dask", "compiled")  # compiled: the numba twins' tests in .venv-dask


def copy_working_tree(root):
    """The files a clean clone would have, plus uncommitted work: tracked and untracked-not-ignored."""
    destination = root / INSIDE.lstrip("/")
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def junit_counts(path):
    """passed, failed (failures + errors), skipped and seconds from one JUnit XML file."""
    if not path.is_file():
        return None
    tree = ET.parse(path).getroot()
    suites = [tree] if tree.tag == "testsuite" else list(tree.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    failures = [f"{case.get('classname')}::{case.get('name')}" for s in suites for case in s.iter("testcase")
                if case.find("failure") is not None or case.find("error") is not None]
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped,
            "seconds": round(sum(float(s.get("time", 0)) for s in suites), 1), "failures": failures}


def missing_suites(result):
    """The suites of :data:`SUITES` that left no JUnit report: they did not run, so nothing of them is counted."""
    return [name for name in SUITES if not result["suites"].get(name)]


def timed(target, command, log, env=None):
    started = time.perf_counter()
    done = chroot(target, command, env=env, log=log)
    return done.returncode, round(time.perf_counter() - started, 1)


def python_version(target):
    done = subprocess.run(["chroot", str(target.root), "/usr/bin/python3", "-c",
                           "import sys, numpy; print('%d.%d' % sys.version_info[:2], numpy.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.split() if done.returncode == 0 else ["?", "?"]


def run_target(target, warm, log):
    result = {"target": target.name, "release": target.release, "qgis_suite": target.qgis_suite}
    result["qgis"] = ensure_root(target, log)
    result["python"], result["numpy"] = python_version(target)
    copy_working_tree(target.root)
    reports = target.root / REPORTS.lstrip("/")
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir(parents=True)
    make = f"cd {INSIDE} && QGIS_SUITE={target.qgis_suite} TEST_REPORTS={REPORTS} make"
    result["test_rc"], result["test_seconds"] = timed(target, f"{make} test", log)
    result["suites"] = {name: junit_counts(reports / f"{name}.xml") for name in SUITES}
    if warm:
        result["warm_rc"], result["warm_seconds"] = timed(target, f"{make} test", log)
    result["demo_rc"], result["demo_seconds"] = timed(target, f"{make} demo", log)
    advice = target.root / "tmp" / "advice.json"
    advice.unlink(missing_ok=True)
    result["advice_rc"], result["advice_seconds"] = timed(
        target, f"cd {INSIDE} && /usr/bin/python3 tools/compat/advice_check.py /tmp/advice.json", log)
    result["advice"] = json.loads(advice.read_text()) if advice.is_file() else []
    return result


def _cell(counts, key):
    return "–" if not counts else str(counts[key])


def write_results(results):
    lines = [
        "# Compatibility matrix (`make test-compat`)",
        "",
        f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores).",
        "Each row is a Debian root made with debootstrap (build/compat/). `make test` time is a fresh set-up "
        "(new copy, both venvs made, pip's cache warm) plus the whole fast suite; counts from its JUnit files.",
        "",
        "| Debian | QGIS | Python | numpy (Debian's) | "
        + "".join(f"{name.capitalize() if name != 'qgis' else 'QGIS'} suite passed / failed / skipped | "
                  for name in SUITES)
        + "`make test` fresh | warm | `make demo` | install advice |",
        "|---|---|---|---|" + "---|" * len(SUITES) + "---|---|---|---|",
    ]
    for r in results:
        advice_ok = sum(1 for a in r["advice"] if a["ok"])
        counts = [r["suites"].get(name) for name in SUITES]  # a suite without a report: –
        lines.append(
            f"| {r['release']} | {r['qgis']} | {r['python']} | {r['numpy']} | "
            + "".join(f"{_cell(c, 'passed')} / {_cell(c, 'failed')} / {_cell(c, 'skipped')} | " for c in counts)
            + f"{r['test_seconds']:.0f} s{'' if r['test_rc'] == 0 else ' (exit %d)' % r['test_rc']} | "
            f"{'%.0f s' % r['warm_seconds'] if 'warm_seconds' in r else '–'} | "
            f"{'ok' if r['demo_rc'] == 0 else 'exit %d' % r['demo_rc']} | "
            f"{advice_ok} / {len(r['advice'])} work as printed |")
    failures = [(r["target"], f) for r in results for s in r["suites"].values() if s for f in s["failures"]]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {name}: `{test}`" for name, test in failures]
    lines += ["", "Install advice checked (each command run as printed, then the result imported):", ""]
    for r in results:
        for a in r["advice"]:
            lines.append(f"- {r['target']}, {a['case']}: {'works' if a['ok'] else 'FAILS'} "
                         f"({a['seconds']:.0f} s): `{' && '.join(a['commands'])}`")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


def merged(results):
    """Earlier results for the targets not run this time, then these; in the matrix's order."""
    path = HERE / "results.json"
    by_name = {r["target"]: r for r in (json.loads(path.read_text()) if path.is_file() else [])}
    by_name.update({r["target"]: r for r in results})
    ordered = [by_name[t.name] for t in TARGETS if t.name in by_name]
    path.write_text(json.dumps(ordered, indent=2) + "\n")
    return ordered


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--warm", action="store_true", help="time a second, set-up `make test` too")
    args = parser.parse_args()
    ROOTS.mkdir(parents=True, exist_ok=True)
    results = []
    for target in TARGETS:
        if args.names and target.name not in args.names:
            continue
        log_path = ROOTS / f"{target.name}.log"
        print(f"{target.name}: log in {log_path}", flush=True)
        with open(log_path, "wb") as log:
            results.append(run_target(target, args.warm, log))
        r = results[-1]
        print(f"{target.name}: QGIS {r['qgis']}, make test exit {r['test_rc']} in {r['test_seconds']} s, "
              f"{r['suites']}" + (f"; no report from {', '.join(missing_suites(r))}" if missing_suites(r) else ""),
              flush=True)
    write_results(merged(results))
    bad = [r["target"] for r in results
           if r["test_rc"] or r["demo_rc"] or r["advice_rc"] or not all(a["ok"] for a in r["advice"])
           or missing_suites(r)]
    if bad:
        print("Failed on: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
