"""Run one command; write its wall time and peak RSS to a file; exit with its exit code.

Usage: ``peak_rss.py RESULT_FILE COMMAND [ARG ...]``; RESULT_FILE gets ``<seconds> <peak RSS in KiB>``.

bench.py starts every contestant through this small process rather than forking it from
itself: on Linux a child's peak RSS (``ru_maxrss``) starts at its parent's RSS at the fork,
so a contestant forked from the benchmark (which holds the data sets' arrays) would report
at least the benchmark's own size.
"""

import os
import subprocess
import sys
import time


def main(argv):
    result_path, command = argv[1], argv[2:]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    with open(result_path, "w") as result:
        result.write(f"{wall:.6f} {usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
