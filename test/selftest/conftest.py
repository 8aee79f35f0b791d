"""Fixtures: selftest options sized for tests, the GPU fakes, a host without them."""

from fakes import gpu
import pytest

from gps_denied_inference.selftest.session import SelftestOptions


def small_options(work_dir, **changes):
    """Options for a 96 x 128 demo model (it finds corners) and few repetitions."""
    values = {'work_dir': work_dir, 'height': 96, 'width': 128, 'loads': 2, 'infer_runs': 2,
              'cycles': 2, 'sync_runs': 2, 'thermal_root': str(work_dir / 'no-thermal'),
              'etc_root': str(work_dir / 'no-etc'), 'nvpmodel': ('false',)}
    values.update(changes)
    return SelftestOptions(**values)


def lines_by_check(report):
    """{'family/check': CheckLine}, refusing duplicate names."""
    lines = {}
    for line in report.lines:
        key = f'{line.family}/{line.check}'
        assert key not in lines, f'two lines named {key}'
        lines[key] = line
    return lines


@pytest.fixture
def fake():
    """The GPU fakes (TensorRT, PyCUDA, Polygraphy)."""
    with gpu.installed() as device:
        yield device


@pytest.fixture
def no_gpu():
    """A host where `import tensorrt` and `import pycuda.driver` fail."""
    with gpu.installed() as device:
        device.blocked.update({'tensorrt', 'pycuda', 'polygraphy'})
        yield device


def built_session(work_dir, **changes):
    """A Session whose `build` family has run: demo model (and engine, with the fakes)."""
    from gps_denied_inference.selftest import build
    from gps_denied_inference.selftest.report import Report
    from gps_denied_inference.selftest.session import Session
    session = Session(small_options(work_dir, **changes))
    build.run(session, Report())
    return session
