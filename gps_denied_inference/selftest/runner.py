"""Runs the check families in order; a family that breaks becomes one FAIL line, not a crash.

Order matters: `build` makes the demo model and engine the later families use. Each family
is a module with `run(session, report)`.
"""

import importlib
import traceback
from typing import Callable, Optional

from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import SelftestOptions, Session

FAMILIES = ('environment', 'build', 'int8', 'load', 'budget', 'inference', 'threads',
            'release', 'correctness', 'sync_cost')


def run_selftest(options: SelftestOptions,
                 echo: Optional[Callable[[str], None]] = None) -> Report:
    """Every family, in order; returns the finished report."""
    report = Report(strict=options.require_gpu, echo=echo)
    report.options = options.describe()
    session = Session(options)
    try:
        for family in FAMILIES:
            module = importlib.import_module(f'gps_denied_inference.selftest.{family}')
            try:
                module.run(session, report)
            except Exception as err:  # noqa: B902 - one broken family must not hide the rest
                last = traceback.extract_tb(err.__traceback__)[-1]
                report.failed(getattr(module, 'FAMILY', family), 'family',
                              'the checks of this family ran to the end', 'stopped',
                              reason=f'{type(err).__name__}: {err} (at {last.filename}:'
                                     f'{last.lineno})')
    finally:
        try:
            session.close()
        except Exception as err:  # noqa: B902 - reported, the report still comes back
            report.failed('selftest', 'close', 'the selftest gives back its primary context',
                          'failed', reason=f'{type(err).__name__}: {err}')
        report.finish()
    return report
