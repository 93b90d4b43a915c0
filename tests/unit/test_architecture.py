"""The layers and what each may import (README, "Architecture"): a lower layer never imports
a higher one, the vocabulary package (domain) imports nothing of the project, only
adapters/ tells the protocols apart, and every package is installed under mailgate.*."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "store", "adapters", "gateway", "events", "api", "migrations")
# What each layer may import of the project, besides itself.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "store": {"domain"},
    "adapters": {"domain", "store"},
    "gateway": {"domain", "store", "adapters.base", "adapters.registry", "adapters.sending"},
    "events": {"domain", "store", "gateway", "adapters.base", "adapters.sending"},
    "api": {"domain", "gateway", "events"},
    "migrations": {"domain", "store"},
}
PROTOCOL_NAMES = {"imap", "pop3"}


def _modules(layer: str) -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / layer).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse((ROOT / path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _allowed(layer: str, target: str) -> bool:
    return any(
        target == allowed or target.startswith(allowed + ".")
        for allowed in (layer, *ALLOWED[layer])
    )


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_what_is_below_it(layer: str) -> None:
    wrong = [
        f"{path}: {name}"
        for path in _modules(layer)
        for name in _imports(path)
        if name.startswith("mailgate.") and not _allowed(layer, name.removeprefix("mailgate."))
    ]
    assert wrong == []


def test_the_layers_are_imported_by_their_installed_name_only() -> None:
    """`from store import ...` would import a second copy of a module that is installed as
    mailgate.store (or nothing, outside the checkout)."""
    files = [p for d in (*LAYERS, "tests", "bench") for p in _modules(d)]
    bare = [
        f"{path}: {name}"
        for path in files
        for name in _imports(path)
        if name.split(".")[0] in LAYERS
    ]
    assert bare == []


def _switches_on_protocol(tree: ast.AST) -> list[ast.Constant]:
    """Protocol names where code decides by them: compared (==, !=, in), as dict keys or in
    a set. (The enum of the account schema and a field's name are no switch.)"""
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                found += [c for c in ast.walk(side) if isinstance(c, ast.Constant)]
        elif isinstance(node, ast.Dict):
            found += [k for k in node.keys if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Set):
            found += [e for e in node.elts if isinstance(e, ast.Constant)]
    return [c for c in found if c.value in PROTOCOL_NAMES]


def test_only_adapters_tell_the_protocols_apart() -> None:
    named = [
        f"{path}:{node.lineno}: {node.value!r}"
        for layer in LAYERS
        if layer != "adapters"
        for path in _modules(layer)
        for node in _switches_on_protocol(ast.parse((ROOT / path).read_text()))
    ]
    assert named == []
    in_adapters = [
        path
        for path in _modules("adapters")
        if _switches_on_protocol(ast.parse((ROOT / path).read_text()))
    ]
    assert in_adapters == [Path("adapters/registry.py")]  # the one switch


def test_every_package_is_installed_under_mailgate() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        "mailgate." + ".".join(init.parent.relative_to(ROOT).parts)
        for layer in LAYERS
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk
    assert setuptools["package-dir"] == {f"mailgate.{layer}": layer for layer in LAYERS}
