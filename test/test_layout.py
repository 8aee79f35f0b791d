"""The flight code imports no tooling: the node pulls in no benchmark or demo module."""

import json
import subprocess
import sys

import pytest

TOOLING = ('gps_denied_inference.bench', 'gps_denied_inference.demo',
           'gps_denied_inference.selftest')


def imported_after(statement: str) -> list:
    """The package's modules a fresh interpreter holds after running `statement`."""
    probe = (f'{statement}; import json, sys; '
             'print(json.dumps(sorted(m for m in sys.modules '
             "if m.startswith('gps_denied_inference'))))")
    out = subprocess.run([sys.executable, '-c', probe], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.parametrize('statement', [
    'import gps_denied_inference.node',
    'from gps_denied_inference.node.lifecycle_node import InferenceNode, main',
    'import gps_denied_inference.node.model_worker, gps_denied_inference.node.inference_core',
])
def test_flight_node_imports_no_benchmark_demo_or_scene_code(statement):
    modules = imported_after(statement)
    assert modules, 'the probe saw no package module at all'
    assert [m for m in modules if m.startswith(TOOLING)] == []


def test_the_probe_sees_tooling_when_it_is_imported():
    assert 'gps_denied_inference.demo.scene' in imported_after(
        'import gps_denied_inference.demo.scene')
