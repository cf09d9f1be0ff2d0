"""Every error MC Hub raises for a person derives from mchub.errors.MCHubError, which the
command and the pages show as it is, and the hierarchy drawn in its docstring names them all."""

import importlib
import inspect
import re
import sys
from pathlib import Path

import mchub.errors
from mchub.errors import MCHubError

ROOT = Path(__file__).resolve().parent.parent
# Raised inside a module only, never to a caller.
PRIVATE = "_"


def test_every_exception_class_of_mchub_is_an_mchub_error_named_in_the_hierarchy() -> None:
    classes = list(_exception_classes())
    assert len(classes) > 15, "the test finds no exception classes"
    assert [name for name, cls in classes if not issubclass(cls, MCHubError)] == []
    drawn = set(re.findall(r"── (\w+)", mchub.errors.__doc__))
    assert [name for name, _ in classes if name.rpartition(".")[2] not in drawn] == []


def _exception_classes():
    for path in sorted((ROOT / "mchub").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if "__pycache__" in path.parts or name.endswith("__main__") or name == "mchub.orchestration.flow_engine":
            continue  # run as programs: importing them runs them
        module = sys.modules.get(name) or importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name
                and not attribute.startswith(PRIVATE) and value is not MCHubError
            ):
                yield f"{name}.{attribute}", value
