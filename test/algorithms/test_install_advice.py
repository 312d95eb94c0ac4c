"""The install commands the plugin prints (algorithms/install_advice.py), for each kind of system.

`make test-compat` runs them for real in Debian roots; these pin down which commands each case gets.
"""

import pytest

from overlap_relevance.algorithms.install_advice import (
    SHAPELY_FROM_SOURCE,
    Platform,
    core_advice,
    core_commands,
    core_steps,
    detect_platform,
    mixed_geos_advice,
    training_commands,
)

DEBIAN_12 = {"python3-numpy": "1:1.24.2-1+deb12u1", "python3-pyproj": "3.4.1-1+b1", "python3-shapely": "1.8.5-2+b1"}
DEBIAN_13 = {"python3-numpy": "1:2.2.4+ds-1", "python3-pyproj": "3.7.1-1", "python3-shapely": "2.1.0-1"}


def commands(missing, apt, qgis_loads_shapely):
    return core_commands(missing, debian=True, candidate=apt.get, qgis_loads_shapely=qgis_loads_shapely)


def test_debian_packages_where_their_versions_suit():
    assert commands(["shapely", "pyproj"], DEBIAN_13, True) == ["sudo apt-get install -y python3-shapely python3-pyproj"]


def test_a_too_old_shapely_comes_from_pip_without_touching_numpy():
    assert commands(["shapely"], DEBIAN_12, False) == [
        "sudo apt-get install -y python3-pip",
        "python3 -m pip install --user --break-system-packages --no-deps 'shapely>=2.0,<3'",
    ]


def test_where_qgis_imports_shapely_it_is_built_on_the_systems_geos():
    assert commands(["numpy", "shapely"], DEBIAN_12, True) == [
        "sudo apt-get install -y python3-numpy", *SHAPELY_FROM_SOURCE]
    mixed = commands(["shapely", "pyproj"], {}, True)  # no apt candidates at all
    assert mixed[0] == SHAPELY_FROM_SOURCE[0] and mixed[-1] == SHAPELY_FROM_SOURCE[1]
    assert mixed[1] == "python3 -m pip install --user --break-system-packages --no-deps 'pyproj>=3.3'"


@pytest.mark.parametrize("debian, first", [(True, "sudo apt-get install -y python3-venv"),
                                           (False, "python3 -m venv ~/.local/share/overlap_relevance/train-venv")])
def test_training_gets_a_self_contained_environment(debian, first):
    lines, python = training_commands(debian=debian)
    assert lines[0] == first and "--system-site-packages" not in " ".join(lines)
    assert lines[-1] == f"{python} -m pip install 'tensorflow-cpu==2.21.*' 'numpy>=1.26' 'shapely>=2.0' 'pyproj>=3.4'"


# Where QGIS runs: each platform's markers, as QGIS's Python would see them.
def _exists(*paths):
    return lambda path: path.replace("\\", "/") in paths


def _os_release(tmp_path, text):
    path = tmp_path / "os-release"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case, expected", [
    (dict(system="win32", environ={"OSGEO4W_ROOT": "C:/OSGeo4W"}, prefix="C:/OSGeo4W/apps/Python312",
          exists=_exists("C:/OSGeo4W/etc/setup/installed.db")), "osgeo4w"),
    (dict(system="win32", environ={"OSGEO4W_ROOT": "C:/Program Files/QGIS 3.40.6"},
          prefix="C:/Program Files/QGIS 3.40.6/apps/Python312", exists=_exists()), "windows"),
    (dict(system="darwin", environ={}, prefix="/Applications/QGIS-LTR.app/Contents/Frameworks", exists=_exists()),
     "macos"),
    (dict(system="linux", environ={"FLATPAK_ID": "org.qgis.qgis"}, prefix="/usr", exists=_exists()), "flatpak"),
    (dict(system="linux", environ={}, prefix="/usr", exists=_exists("/.flatpak-info")), "flatpak"),
    (dict(system="linux", environ={}, prefix="/home/u/miniforge3/envs/qgis",
          exists=_exists("/home/u/miniforge3/envs/qgis/conda-meta")), "conda"),
    (dict(system="win32", environ={}, prefix="C:/Users/u/miniforge3/envs/qgis",
          exists=_exists("C:/Users/u/miniforge3/envs/qgis/conda-meta")), "conda"),
])
def test_each_platform_is_told_by_its_markers(case, expected):
    assert detect_platform(os_release="/nonexistent", **case).kind == expected


@pytest.mark.parametrize("text, expected", [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', "debian"),
    ('ID=ubuntu\nID_LIKE=debian\n', "debian"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "debian"),
    ('ID=fedora\n', "linux"),
    ('ID=arch\n', "linux"),
])
def test_linux_distributions_by_os_release(tmp_path, text, expected):
    where = detect_platform(environ={}, system="linux", prefix="/usr", os_release=_os_release(tmp_path, text),
                            exists=_exists())
    assert where.kind == expected


PLATFORMS = {
    "osgeo4w": Platform("osgeo4w", python="python", root=r"C:\OSGeo4W"),
    "windows": Platform("windows", python="python", root=r"C:\Program Files\QGIS 3.40.6"),
    "macos": Platform("macos", python="/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3",
                      private_site="/Users/u/.local/share/overlap_relevance/python3.9"),
    "flatpak": Platform("flatpak", app_id="org.qgis.qgis",
                        private_site="/home/u/.var/app/org.qgis.qgis/data/overlap_relevance/python3.13"),
    "conda": Platform("conda", python="/home/u/miniforge3/envs/qgis/bin/python3.12",
                      root="/home/u/miniforge3/envs/qgis"),
    "debian": Platform("debian", distro=("debian",)),
    "fedora": Platform("linux", distro=("fedora",)),
    "arch": Platform("linux", distro=("arch",)),
    "linux": Platform("linux", distro=("gentoo",), private_site="/home/u/.local/share/overlap_relevance/python3.12"),
}
#: The one command each platform gets for a missing shapely (QGIS 3.40: it imports shapely itself).
SHAPELY_COMMAND = {
    "osgeo4w": 'osgeo4w-setup.exe --advanced --quiet-mode --autoaccept --only-site --site '
               'https://download.osgeo.org/osgeo4w/v2 --root "C:\\OSGeo4W" --packages python3-shapely',
    "windows": 'python -m pip install --no-deps "shapely>=2.0,<3"',
    "macos": "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3 -m pip install --no-deps --target "
             "/Users/u/.local/share/overlap_relevance/python3.9 'shapely>=2.0,<3'",
    "flatpak": "flatpak run --devel --command=pip3 org.qgis.qgis install --no-deps --target "
               "/home/u/.var/app/org.qgis.qgis/data/overlap_relevance/python3.13 'shapely>=2.0,<3'",
    "debian": SHAPELY_FROM_SOURCE[1],
    "fedora": "sudo dnf install -y python3-shapely",
    "arch": "sudo pacman -S --needed python-shapely",
    "linux": "python3 -m pip install --target /home/u/.local/share/overlap_relevance/python3.12 --no-deps "
             "'shapely>=2.0,<3'",
}


@pytest.mark.parametrize("kind", sorted(PLATFORMS))
def test_every_platform_gets_commands_in_its_own_words(kind):
    lines = core_commands({"shapely": "1.8.5"}, platform=PLATFORMS[kind], candidate=DEBIAN_12.get,
                          qgis_loads_shapely=True)
    if kind == "conda":
        assert len(lines) == 1 and lines[0].startswith(
            'conda install --yes --prefix "/home/u/miniforge3/envs/qgis" -c conda-forge "shapely>=2.0,<3"')
    else:
        assert SHAPELY_COMMAND[kind] in lines, lines


@pytest.mark.parametrize("kind", sorted(PLATFORMS))
def test_no_command_changes_numpy_or_pyproj(kind):
    """pip never resolves dependencies, conda holds numpy and pyproj, OSGeo4W's setup upgrades nothing;
    and a numpy or pyproj that is there but too old is left to a QGIS update."""
    from importlib import metadata

    steps = core_steps({"numpy": "1.19.5", "shapely": None, "pyproj": "3.0.1"}, PLATFORMS[kind],
                       candidate=DEBIAN_13.get, qgis_loads_shapely=True)
    lines = [command for step in steps for command in step.commands]
    assert "update QGIS" in steps[0].text and not steps[0].commands
    assert lines
    for line in lines:
        assert "numpy" not in line.replace("python3-numpy", "") or kind == "conda", line
        assert "pyproj" not in line or kind == "conda", line
        if " pip" in line or "pip3 " in line:
            assert "--no-deps" in line, line
        assert "--upgrade" not in line and "-U " not in line, line
        if line.startswith("conda "):
            assert f'"numpy=={metadata.version("numpy")}"' in line and f'"pyproj=={metadata.version("pyproj")}"' in line


def _rendered(html_text):
    """What QGIS's dialog shows (its QTextBrowser renders canExecute's message with setHtml)."""
    from qgis.PyQt.QtGui import QTextDocument

    document = QTextDocument()
    document.setHtml(html_text)
    return document.toPlainText().splitlines()


@pytest.mark.parametrize("kind", sorted(PLATFORMS))
def test_commands_survive_qgis_html_rendering_whole(kind, monkeypatch):
    from overlap_relevance.algorithms import install_advice

    monkeypatch.setattr(install_advice, "debian_candidate", DEBIAN_12.get)
    monkeypatch.setattr(install_advice, "qgis_imports_shapely", lambda: True)
    missing = {"shapely": "1.8.5", "pyproj": None}
    message = core_advice(missing, platform=PLATFORMS[kind], as_html=True)
    shown = _rendered(message)
    commands = core_commands(missing, platform=PLATFORMS[kind], candidate=DEBIAN_12.get, qgis_loads_shapely=True)
    assert commands
    for command in commands:
        assert command in shown, (command, shown)  # a line of its own, every character kept
    assert any("shapely>=2.0 (found 1.8.5)" in line for line in shown)
    assert "Then restart QGIS." in " ".join(shown)
    # The same advice as text (qgis_process, logs): each command on a line of its own, nothing escaped.
    text = core_advice(missing, platform=PLATFORMS[kind])
    assert all(f"    {command}" in text.splitlines() for command in commands)
    assert "&lt;" not in text and "<pre>" not in text


def test_a_mixed_geos_gets_a_shapely_on_the_systems_geos_in_each_linux():
    state = {"shapely": "2.1.2", "shapely_geos": "3.13.1", "process_geos": "3.11.1-CAPI-1.17.1"}
    assert SHAPELY_FROM_SOURCE[1] in mixed_geos_advice(state, PLATFORMS["debian"])
    flatpak = mixed_geos_advice(state, PLATFORMS["flatpak"]).splitlines()
    assert "    flatpak run --devel --command=pip3 org.qgis.qgis uninstall -y shapely" in flatpak
    assert "    " + SHAPELY_COMMAND["flatpak"] in flatpak
    assert "sudo dnf install -y python3-shapely" in mixed_geos_advice(state, PLATFORMS["fedora"])
    linux = mixed_geos_advice(state, PLATFORMS["linux"]).splitlines()
    assert linux.index("    python3 -m pip uninstall -y shapely") < linux.index("    " + SHAPELY_COMMAND["linux"])


def test_the_plugins_own_folder_is_where_the_plugin_looks(monkeypatch):
    from overlap_relevance.native_libs import private_site

    where = detect_platform(environ={"XDG_DATA_HOME": "/home/u/.var/app/org.qgis.qgis/data",
                                     "FLATPAK_ID": "org.qgis.qgis"}, system="linux", exists=_exists())
    assert where.private_site == private_site({"XDG_DATA_HOME": "/home/u/.var/app/org.qgis.qgis/data"})
    assert where.private_site.startswith("/home/u/.var/app/org.qgis.qgis/data/overlap_relevance/python3.")
