"""Counts that show how the house is laid out: lines per room, the longest functions, the repeats.

Run from the repository root with any Python 3.9+ (it reads files as text and imports nothing of
the plugin):

    python3 tools/house_counts.py            # lines per room and the ten longest functions
    python3 tools/house_counts.py --repeats  # and the repeated code that `duplicates` finds, if installed

A "room" is a top-level folder of the plugin (model/ split one level further, since it holds the
core and its sub-packages), plus the tooling folders. Lines are physical lines of *.py files.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
from collections import defaultdict

ROOMS = ("plugin", "algorithms", "model", "scaleout", "test", "research", "tools")


def python_files(root: str):
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(tracked)


def room_of(path: str) -> str:
    parts = path.split("/")
    if parts[0] not in ROOMS:
        return "(root)"
    if parts[0] in ("model", "test") and len(parts) > 2:
        return "/".join(parts[:2]) + "/"
    return parts[0] + "/"


def function_lengths(root: str, path: str):
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((child.end_lineno - child.lineno + 1, path, name))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", action="store_true", help="also list repeated code (needs `duplicates`)")
    parser.add_argument("--longest", type=int, default=10, help="how many of the longest functions")
    parser.add_argument("--tests", action="store_true", help="count test/ functions among the longest")
    args = parser.parse_args(argv)
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
    ).stdout.strip()

    lines = defaultdict(int)
    files = defaultdict(int)
    functions = []
    for path in python_files(root):
        with open(os.path.join(root, path), encoding="utf-8") as handle:
            count = sum(1 for _ in handle)
        room = room_of(path)
        lines[room] += count
        files[room] += 1
        if args.tests or not path.startswith("test/"):
            functions.extend(function_lengths(root, path))

    print("| room | files | lines |")
    print("|---|---|---|")
    for room in sorted(lines):
        print(f"| `{room}` | {files[room]} | {lines[room]:,} |")
    print(f"| all | {sum(files.values())} | {sum(lines.values()):,} |")
    print()
    print(f"| the {args.longest} longest functions{'' if args.tests else ' (outside test/)'} | lines |")
    print("|---|---|")
    for length, path, name in sorted(functions, reverse=True)[: args.longest]:
        print(f"| `{path}: {name}` | {length} |")
    if args.repeats:
        tool = shutil.which("duplicates")
        if tool is None:
            print("\n(`duplicates` is not installed here: no repeats listed)")
        else:
            print()
            report = subprocess.run(
                [tool, "--most", "40", "--seconds", "120"], cwd=root, capture_output=True, text=True
            )
            print(report.stdout.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
