"""The layout's rules (docs/architecture.md, "who may import whom"), checked on the code.

The domain, mchub/ but its CLI and its orchestration, imports neither Prefect, Streamlit nor
the sandbox, so it can be used and tested without them; and no two modules of mchub/ import
each other, directly or around a longer loop, so each can be read (and changed) after the
ones it uses. Import statements are read from the source at any depth: an import inside a
function counts."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("prefect", "streamlit", "sandbox")


def test_the_domain_imports_no_prefect_streamlit_or_sandbox() -> None:
    domain = domain_modules()
    assert {"mchub.spec.model", "mchub.terraform.runner", "mchub.cluster.workspace"} <= set(domain)
    imported = subprocess.run(
        [sys.executable, "-c", "import importlib, sys\n"
         "for name in sys.argv[1:]: importlib.import_module(name)\n"
         "print(' '.join(sorted({module.split('.')[0] for module in sys.modules})))", *domain],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert [name for name in FORBIDDEN if name in imported] == []


def test_no_module_of_mchub_imports_itself_around_a_loop() -> None:
    modules = set(modules_of("mchub"))
    graph = {
        module: {target for name in imports for target in [_innermost(name, modules)] if target not in (None, module)}
        for module, imports in imports_of("mchub").items()
    }
    loop = _cycle(graph)
    assert not loop, f"import loop: {' → '.join(loop)}"


def domain_modules() -> list[str]:
    """Every module of mchub/ but those of its CLI and its orchestration."""
    outside = ("mchub.cli", "mchub.orchestration")
    return sorted(name for name in modules_of("mchub") if not _within(name, outside))


def modules_of(folder: str) -> dict[str, Path]:
    """The modules under ROOT/folder by dotted name (a package by its own name)."""
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imports_of(folder: str) -> dict[str, set[str]]:
    """What each module under `folder` imports: `from a.b import c` counts as a.b and a.b.c."""
    found: dict[str, set[str]] = {}
    for module, path in modules_of(folder).items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found[module] = set(_imported(ast.parse(path.read_text()), package))
    return found


def _imported(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def _innermost(name: str, modules: set[str]) -> str | None:
    """The module `name` is or lies in (an imported class or function lies in its module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One loop of imports, as the modules along it, or [] when there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return []
        for target in sorted(graph.get(module, ())):
            loop = visit(target, [*path, module])
            if loop:
                return loop
        done.add(module)
        return []

    for module in sorted(graph):
        loop = visit(module, [])
        if loop:
            return loop
    return []
