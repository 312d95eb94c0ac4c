"""QGIS 4 (Qt 6) readiness, checked on the plugin's own sources without a QGIS 4 build.

QGIS 4 drops the unscoped enum names, ``exec_``, ``QVariant``-typed fields and direct PyQt5
imports. Every Qt and QGIS enum must be spelt by its scoped name (``Qt.AlignmentFlag.AlignLeft``,
``Qgis.ProcessingSourceType.VectorPolygon``); where 3.22 lacks the scoped name the compat shim
(algorithms/compat.py) is the one place that may fall back. Attribute chains are resolved against the
QGIS this suite runs on, so an enum member reached through anything but its own enum class fails.
"""

import ast
import configparser
import enum
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "algorithms" / "compat.py"
SOURCES = sorted([*ROOT.glob("*.py"), *(ROOT / "plugin").rglob("*.py"), *(ROOT / "algorithms").rglob("*.py"),
                  *(ROOT / "model").rglob("*.py")])


def _qgis_names(tree):
    """Names bound by ``from qgis.<module> import Name`` anywhere in the module, with their module."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qgis":
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    return names


def _chain(node):
    """['Qt', 'AlignmentFlag', 'AlignLeft'] for the attribute chain ``Qt.AlignmentFlag.AlignLeft``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _is_enum_member(value):
    """A Python enum member (scoped QGIS enums, Qt 6) or a sip enum member (an int of an enum class, PyQt5)."""
    if isinstance(value, enum.Enum):
        return True
    return isinstance(value, int) and type(value) not in (int, bool)


def unscoped_enum_uses(path):
    """(line, 'Qt.AlignLeft', 'AlignmentFlag') for each enum member not reached through its enum class."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _qgis_names(tree)
    found = []
    outermost = set()
    for node in ast.walk(tree):  # only whole chains: skip the inner Attribute nodes of a chain
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            outermost.add(id(node.value))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in outermost:
            continue
        chain = _chain(node)
        if not chain or chain[0] not in names:
            continue
        module, name = names[chain[0]]
        value = getattr(importlib.import_module(module), name, None)
        for depth, attribute in enumerate(chain[1:], start=1):
            try:
                value = getattr(value, attribute)
            except AttributeError:
                break  # a name this QGIS lacks (guarded in the code) cannot be judged here
            if _is_enum_member(value) and chain[depth - 1] != type(value).__name__:
                found.append((node.lineno, ".".join(chain[:depth + 1]), type(value).__name__))
                break
    return found


@pytest.mark.parametrize("path", [p for p in SOURCES if p != SHIM], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_enum_is_used_by_its_scoped_name(path):
    assert unscoped_enum_uses(path) == []


def test_the_check_catches_unscoped_names(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from qgis.PyQt.QtCore import Qt\nfrom qgis.core import QgsWkbTypes\n"
                      "a = Qt.AlignLeft\nb = Qt.AlignmentFlag.AlignLeft\nc = QgsWkbTypes.Polygon\n")
    found = unscoped_enum_uses(sample)
    assert [(line, chain) for line, chain, _ in found][0] == (3, "Qt.AlignLeft")
    assert 4 not in [line for line, _, _ in found]
    assert 5 in [line for line, _, _ in found]  # QgsWkbTypes.Polygon is Type.Polygon (or GeometryType)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_api_that_qt6_removed(path):
    text = path.read_text()
    assert not re.search(r"\.exec_\(", text), "exec_() is gone in Qt 6: use exec()"
    assert not re.search(r"^\s*(from|import)\s+(PyQt5|PyQt6|sip)\b", text, flags=re.MULTILINE), \
        "Qt only through qgis.PyQt"
    if path != SHIM:
        assert "QVariant." not in text, "QVariant types only through algorithms.compat.field_type"


def test_metadata_claims_qgis_4_the_way_plugins_qgis_org_reads_it():
    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "metadata.txt", encoding="utf-8")
    general = metadata["general"]
    assert general["qgisMaximumVersion"] == "4.99"
    assert "supportsqt6" not in general  # QGIS 4 ignores the key; qgisMaximumVersion >= 4.0 is what lists it
    assert general["qgisMinimumVersion"] == "3.22"
