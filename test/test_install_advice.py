"""The install commands the plugin prints (algorithms/install_advice.py), for each kind of system.

`make test-compat` runs them for real in Debian roots; these pin down which commands each case gets.
"""

import pytest

from overlap_relevance.algorithms.install_advice import SHAPELY_FROM_SOURCE, core_commands, training_commands

DEBIAN_12 = {"python3-numpy": "1:1.24.2-1+deb12u1", "python3-pyproj": "3.4.1-1+b1", "python3-shapely": "1.8.5-2+b1"}
DEBIAN_13 = {"python3-numpy": "1:2.2.4+ds-1", "python3-pyproj": "3.7.1-1", "python3-shapely": "2.1.0-1"}


def commands(missing, apt, qgis_loads_shapely):
    return core_commands(missing, debian=True, candidate=apt.get, qgis_loads_shapely=qgis_loads_shapely)


def test_debian_packages_where_their_versions_suit():
    assert commands(["shapely", "pyproj"], DEBIAN_13, True) == ["sudo apt-get install -y python3-shapely python3-pyproj"]


def test_a_too_old_shapely_comes_from_pip_with_numpy_held_to_its_major():
    from importlib import metadata

    major = int(metadata.version("numpy").split(".")[0])
    assert commands(["shapely"], DEBIAN_12, False) == [
        "sudo apt-get install -y python3-pip",
        f"python3 -m pip install --user --break-system-packages 'shapely>=2.0' 'numpy<{major + 1}'"]


def test_where_qgis_imports_shapely_it_is_built_on_the_systems_geos():
    assert commands(["numpy", "shapely"], DEBIAN_12, True) == [
        "sudo apt-get install -y python3-numpy", *SHAPELY_FROM_SOURCE]
    mixed = commands(["shapely", "pyproj"], {}, True)  # no apt candidates at all
    assert mixed[0] == SHAPELY_FROM_SOURCE[0] and mixed[-1] == SHAPELY_FROM_SOURCE[1]
    assert mixed[1].startswith("python3 -m pip install --user --break-system-packages 'pyproj>=3.3' 'numpy<")


@pytest.mark.parametrize("debian, first", [(True, "sudo apt-get install -y python3-venv"),
                                           (False, "python3 -m venv ~/.local/share/overlap_relevance/train-venv")])
def test_training_gets_a_self_contained_environment(debian, first):
    lines, python = training_commands(debian=debian)
    assert lines[0] == first and "--system-site-packages" not in " ".join(lines)
    assert lines[-1] == f"{python} -m pip install 'tensorflow-cpu==2.21.*' 'numpy>=1.26' 'shapely>=2.0' 'pyproj>=3.4'"
