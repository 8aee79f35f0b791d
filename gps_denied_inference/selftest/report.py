"""The selftest's result: one line per check (status, criterion, measured, limit), as text or JSON.

A line is PASS, FAIL or SKIP. A SKIP always says why (TensorRT missing, no GPU, not a
Jetson); in strict mode (`--require-gpu`, for the drone) a check skipped because TensorRT,
PyCUDA or the GPU is missing is a FAIL instead. The exit code is 0 only when no line failed.
The JSON layout is SCHEMA below and docs/selftest.md.
"""

from dataclasses import asdict, dataclass
import datetime
import json
import platform
import socket
from typing import Any, Dict, List, Optional

PASS = 'PASS'
FAIL = 'FAIL'
SKIP = 'SKIP'
STATUSES = (PASS, FAIL, SKIP)
SCHEMA = 'gps_denied_inference.selftest/1'
CHECK_FIELDS = ('family', 'check', 'status', 'criterion', 'measured', 'limit', 'reason')
TOP_LEVEL_FIELDS = ('schema', 'started_utc', 'finished_utc', 'duration_s', 'host', 'options',
                    'summary', 'exit_code', 'checks')


@dataclass(frozen=True)
class CheckLine:
    """One check's outcome; `measured` and `limit` are short human-readable figures."""

    family: str
    check: str
    status: str
    criterion: str
    measured: str = ''
    limit: str = ''
    reason: str = ''

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f'check status {self.status!r} is not one of {STATUSES}')
        if self.status == SKIP and not self.reason:
            raise ValueError(f'SKIP of {self.family}/{self.check} must say why')


class Report:
    """Lines in the order the checks ran, printed as they arrive when `echo` is set."""

    def __init__(self, *, strict: bool = False, echo: Optional[Any] = None) -> None:
        self.strict = strict
        self.lines: List[CheckLine] = []
        self._echo = echo
        self._started = _now()
        self._finished: Optional[datetime.datetime] = None
        self.options: Dict[str, Any] = {}

    def add(self, line: CheckLine) -> CheckLine:
        """Record a line (and print it when echoing)."""
        self.lines.append(line)
        if self._echo is not None:
            self._echo(format_line(line))
        return line

    def add_line(self, family: str, check: str, status: str, criterion: str,
                 measured: str = '', limit: str = '', reason: str = '') -> CheckLine:
        """A line of any status."""
        return self.add(CheckLine(family, check, status, criterion, measured, limit, reason))

    def passed(self, family: str, check: str, criterion: str, measured: str = '',
               limit: str = '') -> CheckLine:
        """A PASS line."""
        return self.add(CheckLine(family, check, PASS, criterion, measured, limit))

    def failed(self, family: str, check: str, criterion: str, measured: str = '',
               limit: str = '', reason: str = '') -> CheckLine:
        """A FAIL line; `reason` says what went wrong beyond the figures."""
        return self.add(CheckLine(family, check, FAIL, criterion, measured, limit, reason))

    def verdict(self, ok: bool, family: str, check: str, criterion: str, measured: str = '',
                limit: str = '', reason: str = '') -> CheckLine:
        """PASS when `ok`, else FAIL with `reason`."""
        if ok:
            return self.passed(family, check, criterion, measured, limit)
        return self.failed(family, check, criterion, measured, limit, reason)

    def skipped(self, family: str, check: str, criterion: str, reason: str,
                limit: str = '') -> CheckLine:
        """A SKIP that is fine anywhere (e.g. trtexec not installed, not a Jetson)."""
        return self.add(CheckLine(family, check, SKIP, criterion, '', limit, reason))

    def unavailable(self, family: str, check: str, criterion: str, reason: str,
                    limit: str = '') -> CheckLine:
        """TensorRT, PyCUDA or the GPU is missing: SKIP, or FAIL in strict mode."""
        if self.strict:
            return self.add(CheckLine(family, check, FAIL, criterion, 'not run', limit,
                                      f'{reason} (--require-gpu)'))
        return self.skipped(family, check, criterion, reason, limit)

    def finish(self) -> None:
        """Stamp the end time (the JSON's finished_utc and duration_s)."""
        self._finished = _now()

    def count(self, status: str) -> int:
        """How many lines have this status."""
        return sum(1 for line in self.lines if line.status == status)

    @property
    def exit_code(self) -> int:
        """0 when no line failed (SKIPs do not fail), 1 otherwise."""
        return 1 if self.count(FAIL) else 0

    def to_dict(self) -> Dict[str, Any]:
        """The documented JSON object (SCHEMA)."""
        finished = self._finished or _now()
        return {
            'schema': SCHEMA,
            'started_utc': _iso(self._started),
            'finished_utc': _iso(finished),
            'duration_s': round((finished - self._started).total_seconds(), 3),
            'host': {'hostname': socket.gethostname(), 'machine': platform.machine(),
                     'python': platform.python_version()},
            'options': dict(self.options),
            'summary': {'pass': self.count(PASS), 'fail': self.count(FAIL),
                        'skip': self.count(SKIP),
                        'verdict': FAIL if self.exit_code else PASS},
            'exit_code': self.exit_code,
            'checks': [asdict(line) for line in self.lines],
        }

    def to_json(self) -> str:
        """to_dict() as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + '\n'

    def summary_line(self) -> str:
        """'selftest: FAIL (31 pass, 2 fail, 9 skip)'."""
        verdict = FAIL if self.exit_code else PASS
        return (f'selftest: {verdict} ({self.count(PASS)} pass, {self.count(FAIL)} fail, '
                f'{self.count(SKIP)} skip)')


def format_line(line: CheckLine) -> str:
    """'PASS  family/check  criterion | measured ... | limit ...' and the reason, if any."""
    text = f'{line.status:<4}  {line.family}/{line.check}  {line.criterion}'
    if line.measured:
        text += f' | measured {line.measured}'
    if line.limit:
        text += f' | limit {line.limit}'
    if line.reason:
        text += f' | {line.reason}'
    return text


def validate_report_dict(data: Any) -> List[str]:
    """What is wrong with a report object against SCHEMA (empty when it conforms)."""
    if not isinstance(data, dict):
        return ['the report is not a JSON object']
    problems = [f'missing field {name!r}' for name in TOP_LEVEL_FIELDS if name not in data]
    if data.get('schema') != SCHEMA:
        problems.append(f'schema is {data.get("schema")!r}, expected {SCHEMA!r}')
    checks = data.get('checks')
    if not isinstance(checks, list):
        return problems + ['checks is not a list']
    for index, check in enumerate(checks):
        if not isinstance(check, dict) or sorted(check) != sorted(CHECK_FIELDS):
            problems.append(f'checks[{index}] does not have exactly the fields {CHECK_FIELDS}')
            continue
        if not all(isinstance(check[name], str) for name in CHECK_FIELDS):
            problems.append(f'checks[{index}] has a field that is not a string')
        if check['status'] not in STATUSES:
            problems.append(f'checks[{index}].status is {check["status"]!r}')
        if check['status'] == SKIP and not check['reason']:
            problems.append(f'checks[{index}] is a SKIP without a reason')
    summary = data.get('summary', {})
    for status in STATUSES:
        counted = sum(1 for c in checks if isinstance(c, dict) and c.get('status') == status)
        if not isinstance(summary, dict) or summary.get(status.lower()) != counted:
            problems.append(f'summary.{status.lower()} disagrees with the checks ({counted})')
    failed = any(isinstance(c, dict) and c.get('status') == FAIL for c in checks)
    if data.get('exit_code') != (1 if failed else 0):
        problems.append(f'exit_code {data.get("exit_code")!r} disagrees with the checks')
    return problems


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')
