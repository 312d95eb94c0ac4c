"""Print the lines of requirement files that this Python does not already satisfy.

    python tools/missing_requirements.py requirements.txt [more.txt ...]

`make setup` gives pip only these, so packages that the distribution already provides in a
version that suits (numpy, scipy, matplotlib, pyproj on Debian; shapely on Debian 13) stay
the distribution's: the ones QGIS's own Python is built and tested against. A requirement
with an environment marker that does not apply here is left out. ``-r other.txt`` lines are
followed. Uses pip's own copy of `packaging`, which every venv has.
"""

import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover - a bare venv has only pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement


def requirement_lines(path):
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            yield from requirement_lines(Path(path).parent / line.split(None, 1)[1])
        elif not line.startswith("-"):
            yield line


def satisfied(requirement):
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return False
    return requirement.specifier.contains(installed, prereleases=True)


def missing(paths):
    for line in (line for path in paths for line in requirement_lines(path)):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if not satisfied(requirement):
            yield line


if __name__ == "__main__":
    for line in missing(sys.argv[1:]):
        print(line)
