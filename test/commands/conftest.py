"""The `cli` fixture: run the real cli.main with only the commands that exist in this tree."""

import importlib.util

import pytest

from gps_denied_inference import cli as cli_module


@pytest.fixture
def cli(monkeypatch, capsys):
    """Call cli.main(argv) and return (exit code, stdout, stderr)."""
    present = tuple(name for name in cli_module.COMMANDS if importlib.util.find_spec(
        f'gps_denied_inference.commands.{name}') is not None)
    monkeypatch.setattr(cli_module, 'COMMANDS', present)

    def run(*argv):
        code = cli_module.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
