"""The pre-flight command line: `python -m gps_denied_inference COMMAND ...`.

Each command lives in `gps_denied_inference.commands.<name>` and provides
`register(subparsers)`, which adds its parser and sets `func(args) -> int` as the handler.
"""

import argparse
import importlib
import sys
from typing import List, Optional

from gps_denied_inference.errors import GpsDeniedInferenceError

COMMANDS = ('seal', 'verify', 'demo_model', 'compile', 'selftest')


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog='gps_denied_inference',
        description='Compile, seal and verify model artifacts before flight.')
    subparsers = parser.add_subparsers(dest='command', required=True)
    for name in COMMANDS:
        importlib.import_module(f'gps_denied_inference.commands.{name}').register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; package errors print one line to stderr and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GpsDeniedInferenceError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
