"""The layout's one hard rule (ARCHITECTURE.md): the domain, mchub/ but its CLI, imports
neither Prefect, Streamlit nor the sandbox, so it can be used and tested without them."""

import subprocess
import sys
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


def domain_modules() -> list[str]:
    """Every module of mchub/ but those of its CLI and its orchestration."""
    outside = {"cli", "orchestration"}
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "mchub").rglob("*.py")
        if path.relative_to(ROOT / "mchub").parts[0] not in outside and "__pycache__" not in path.parts
    )
