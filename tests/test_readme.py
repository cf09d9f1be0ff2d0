"""The README is the product's manual: every setting and every command is in it."""

from pathlib import Path

from mchub.cli.commands import _parser
from mchub.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f"MCHUB_{name.upper()}" for name in Settings.model_fields if f"`MCHUB_{name.upper()}`" not in README]
    assert not missing, f"add these settings to the README's configuration table: {missing}"


def test_every_command_is_documented() -> None:
    subcommands = next(a for a in _parser()._actions if a.choices and a.metavar == "COMMAND").choices
    missing = [name for name in subcommands if f"`mchub {name}" not in README]
    assert not missing, f"add these commands to the README's command table: {missing}"
