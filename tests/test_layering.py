"""Arrows run one way: cli -> orchestration (grid, eval, launchers) -> engine -> methods -> encoders/hallucination;
datasets, protocols and results never import the engine; common/ imports nothing of ours but
errors (not even config). Checked on every module's import statements (a static read, nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "halp_bench"

# part -> the parts of halp_bench it must not import
FORBIDDEN = {
    "common": (
        "engine",
        "orchestration",
        "cli",
        "methods",
        "encoders",
        "datasets",
        "protocols",
        "results",
        "hallucination",
        "identity",
        "weights",
        "config",
        "registry",
        "skeleton",
        "suites",
    ),
    "hallucination": ("engine", "orchestration", "cli", "methods", "datasets", "protocols", "results"),
    "encoders": ("engine", "orchestration", "cli", "methods", "protocols", "results"),
    "methods": ("engine", "orchestration", "cli", "protocols", "results"),
    "datasets": ("engine", "orchestration", "cli", "methods", "protocols", "results"),
    "protocols": ("engine", "orchestration", "cli", "results"),
    "results": ("engine", "orchestration", "cli", "methods", "protocols"),
    "engine": ("orchestration", "cli"),
    "orchestration": ("cli",),
}


def _imported(path: Path) -> set[str]:
    """The halp_bench parts a module imports (the first name after `halp_bench.`)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            if name.startswith("halp_bench."):
                parts.add(name.split(".")[1])
            elif name == "halp_bench" and isinstance(node, ast.ImportFrom):
                parts.update(a.name for a in node.names)
    return parts


def test_imports_run_one_way():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        part = relative.parts[0].removesuffix(".py")
        bad = _imported(path) & set(FORBIDDEN.get(part, ()))
        violations += [f"{relative} imports halp_bench.{name}" for name in sorted(bad)]
    assert not violations, "\n".join(violations)
