"""The layout's one hard rule (ARCHITECTURE.md): the domain, mchub/ but its CLI, imports
neither Prefect, Streamlit nor the sandbox, so it can be used and tested without them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("prefect", "streamlit", "sandbox")


def test_the_domain_imports_no_prefect_streamlit_or_sandbox() -> None:
    domain = sorted(f"mchub.{path.stem}" for path in (ROOT / "mchub").glob("*.py") if path.stem != "__init__")
    assert "mchub.spec" in domain
    imported = subprocess.run(
        [sys.executable, "-c", "import importlib, sys\n"
         "for name in sys.argv[1:]: importlib.import_module(name)\n"
         "print(' '.join(sorted({module.split('.')[0] for module in sys.modules})))", *domain],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert [name for name in FORBIDDEN if name in imported] == []
