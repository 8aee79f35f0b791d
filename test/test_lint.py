"""Style is part of the build: ament's flake8 and pep257 rules (as ruff) and Python 3.10 syntax."""

import glob
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_files():
    skip = {'.venv', '.venv-humble', 'build', '.git'}
    return [p for p in ROOT.rglob('*.py') if not skip.intersection(p.relative_to(ROOT).parts)]


def test_ruff_reports_no_violations():
    ruff = shutil.which('ruff', path=os.path.dirname(sys.executable)) or shutil.which('ruff')
    assert ruff, 'ruff is not installed in the environment'
    result = subprocess.run([ruff, 'check', '--no-cache', str(ROOT)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sources_compile_on_python_3_10():
    """The drone runs Humble on Python 3.10: no 3.11-only syntax may creep in."""
    candidates = [shutil.which('python3.10'),
                  *sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.10*/bin/python3.10')))]
    usable = [p for p in candidates if p and subprocess.run(
        [p, '--version'], capture_output=True).returncode == 0]
    if not usable:
        pytest.skip('python3.10 is not installed on this host')
    python310 = usable[0]
    code = ('import sys, ast\n'
            'for p in sys.argv[1:]:\n'
            '    ast.parse(open(p, encoding="utf-8").read(), p, feature_version=(3, 10))\n'
            '    compile(open(p, encoding="utf-8").read(), p, "exec")\n')
    result = subprocess.run([python310, '-c', code, *map(str, _python_files())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# rclpy calls the drone's Humble (rclpy 3.3.x) lacks: pattern -> what to use instead.
NEWER_THAN_HUMBLE = {
    r'\.call\([^)]*timeout_sec': 'Client.call(timeout_sec=...) is Jazzy on: call_async and wait',
}


def test_no_rclpy_call_newer_than_humble():
    found = [f'{p.relative_to(ROOT)}:{n}: {why}'
             for p in _python_files() if p.name != 'test_lint.py'
             for n, line in enumerate(p.read_text(encoding='utf-8').splitlines(), 1)
             for pattern, why in NEWER_THAN_HUMBLE.items() if re.search(pattern, line)]
    assert not found, '\n'.join(found)
