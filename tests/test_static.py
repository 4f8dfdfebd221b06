"""The house rules a machine can check: types in registry/ and hub/, no unused names, layering."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_mypy_registry_and_hub() -> None:
    out = subprocess.run([str(BIN / "mypy"), "registry", "hub"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_pyflakes_clean() -> None:
    out = subprocess.run([str(BIN / "ruff"), "check", "--select", "F,E9", "registry", "hub", "apps", "tests",
                          "bench", "scripts"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_registry_imports_no_web_or_ui_framework() -> None:
    banned = {"fastapi", "starlette", "gradio", "streamlit", "hub", "apps", "uvicorn"}
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & banned) for p in (ROOT / "registry").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def _public_defs(tree: ast.Module) -> list[ast.AST]:
    """Module-level public functions and classes, and the public methods of public classes."""
    out: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            out.append(node)
            if isinstance(node, ast.ClassDef):
                out += [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and not m.name.startswith("_")]
    return out


def test_every_public_function_and_route_has_a_docstring() -> None:
    missing = []
    for package in ("registry", "hub", "apps"):
        for path in (ROOT / package).rglob("*.py"):
            for node in _public_defs(ast.parse(path.read_text())):
                if ast.get_docstring(node) is None:  # type: ignore[arg-type]
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")  # type: ignore[attr-defined]
    assert missing == []
