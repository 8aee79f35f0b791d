r"""Shutdown stress: the whole lifecycle over real services, then a signal with frames in flight.

One run starts `python -m gps_denied_inference.node` as its own process, with the shipped
Fast DDS profile as the launch file applies it, and drives it as a lifecycle manager and a
camera would: configure, activate, 20 frames (each one published back), malformed frames,
one more good frame, deactivate, cleanup, and a configure refused because the model file was
tampered with. Then SIGINT or SIGTERM lands at a random moment while a camera streams:
- 'refused': in the unconfigured state the refusal left (the issue's sequence);
- 'active': the model restored, configured and activated, frames in flight;
- 'transition': during the configure or activate of the restored model.

A run is abnormal unless the node exits 0 within EXIT_TIMEOUT_S, with no 'terminate called',
no 'Fatal Python error' (faulthandler's report of a native crash), no Python traceback, and
none of its own Fast DDS shared-memory segments left under /dev/shm. Its own segments are
those whose `_el` lock file it holds open (read from /proc/PID/fd before the signal; Fast DDS
keeps that file locked for the life of the segment): the segments of other processes on
this machine, which the node maps too, are never looked at.

`make reliability` and `make test` run it through test_shutdown_stress.py; as a script it
prints one line per run and a summary, optionally beside CPU hogs:

    tools/env.sh python test/reliability/shutdown_stress.py --runs 300 --hogs 1
    tools/env.sh python test/reliability/shutdown_stress.py --runs 30 --hogs 1 --pin-cpu 0 \
        --amplify
"""

import argparse
from collections import Counter
from dataclasses import dataclass
import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parent), str(HERE)) if p not in sys.path]

from node_harness import mono8, wait_until  # noqa: E402
import numpy as np  # noqa: E402
from reliability_support import NodeProcess, ProcessClient  # noqa: E402
from sealed_models import make_sealed_onnx  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

PROFILE = HERE.parents[1] / 'config' / 'fastdds_large_data.xml'
# The variable Fast DDS 3.x reads (Kilted wheels here); the launch file also sets the 2.x one.
# Fast DDS 3.x reads the first, 2.x (Humble; Jazzy's wheels) the second.
PROFILE_ENV = {'FASTDDS_DEFAULT_PROFILES_FILE': str(PROFILE),
               'FASTRTPS_DEFAULT_PROFILES_FILE': str(PROFILE)}
WHERE = ('refused', 'active', 'transition')
SIGNALS = ('SIGINT', 'SIGTERM')
EXIT_TIMEOUT_S = 20.0
STEP_TIMEOUT_S = 30.0
FRAMES = 20
CAMERA_PERIOD_S = 0.01
_SEGMENT_LOCK = re.compile(r'/dev/shm/((?:fastdds|fastrtps)_[0-9a-z]{16})_el')


@dataclass(frozen=True)
class RunResult:
    """One run: where and how the signal landed, and everything that makes the exit abnormal."""

    index: int
    where: str
    signal_name: str
    hogs: int
    pinned: bool
    amplified: bool
    exit_code: Optional[int]
    exit_s: float
    problems: tuple
    leftover_segments: tuple

    @property
    def abnormal(self) -> bool:
        """True for anything but a clean exit 0."""
        return bool(self.problems or self.leftover_segments) or self.exit_code != 0

    def line(self) -> str:
        """One line for the log."""
        return (f'run {self.index} {self.where} {self.signal_name} hogs={self.hogs} '
                f'pinned={int(self.pinned)} amplified={int(self.amplified)} '
                f'exit={self.exit_code} in {self.exit_s:.2f} s'
                + (f' PROBLEMS {"; ".join(self.problems)}' if self.problems else '')
                + (f' LEFT {",".join(self.leftover_segments)}' if self.leftover_segments
                   else ''))


def owned_segments(pid: int) -> FrozenSet[str]:
    """The Fast DDS segments process `pid` owns: it holds their `_el` lock files open."""
    names = set()
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return frozenset()
    for fd in fds:
        try:
            match = _SEGMENT_LOCK.fullmatch(os.readlink(f'/proc/{pid}/fd/{fd}'))
        except OSError:
            continue
        if match:
            names.add(match.group(1))
    return frozenset(names)


def existing(segments: Sequence[str]) -> tuple:
    """Those of `segments` whose segment or lock file is still under /dev/shm."""
    return tuple(sorted(s for s in segments if os.path.exists(f'/dev/shm/{s}')
                        or os.path.exists(f'/dev/shm/{s}_el')))


# With the amplifier, every free() of a small block goes to glibc's per-thread cache, which
# writes a random key 8 bytes into the freed block: a use after free of an 8-byte slot there
# (a pointer list's second entry) then reads garbage every time instead of now and then.
AMPLIFIER_ENV = {'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=65000'}


def rclpy_signal_thread(pid: int) -> Optional[int]:
    """The thread id of rclpy's signal-handling thread in node process `pid`, or None.

    rclpy.init starts it just before the node's first Fast DDS thread ('dds.*') starts, and
    Linux hands out thread ids in increasing order: it is the newest thread older than every
    Fast DDS thread.
    """
    threads = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            name = Path(f'/proc/{pid}/task/{tid}/comm').read_text().strip()
        except OSError:
            continue
        threads.append((int(tid), name))
    dds = [tid for tid, name in threads if name.startswith('dds.')]
    if not dds:
        return None
    older = [tid for tid, name in threads if tid < min(dds) and tid != pid]
    return max(older) if older else None


def starve_signal_thread(pid: int) -> bool:
    """Put rclpy's signal thread in process `pid` under SCHED_IDLE; False if not found.

    The race amplifier (with a CPU hog on the node's one CPU and AMPLIFIER_ENV): a SCHED_IDLE
    thread is preempted the moment the main thread wakes and runs again only when the main
    thread waits, so a teardown in the main thread that overlaps the signal thread's work
    happens nearly every time instead of under rare load.
    """
    tid = rclpy_signal_thread(pid)
    if tid is None:
        return False
    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    return True


class CpuHogs:
    """Busy-looping processes, optionally pinned to one CPU, for the length of a `with`."""

    def __init__(self, count: int, cpu: Optional[int] = None) -> None:
        self._count = count
        self._cpu = cpu
        self._processes: List[subprocess.Popen] = []

    def __enter__(self) -> 'CpuHogs':
        cpus = None if self._cpu is None else {self._cpu}
        for _ in range(self._count):
            self._processes.append(subprocess.Popen(
                [sys.executable, '-c', 'while True: pass'],
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self._processes:
            process.kill()
            process.wait(10.0)


class Camera:
    """Publishes 16 x 16 mono8 frames from its own thread until stopped."""

    def __init__(self, client: ProcessClient, stop_when: Callable[[], bool]) -> None:
        self._client = client
        self._stop_when = stop_when
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name='stress-camera', daemon=True)
        self.sent = 0

    def __enter__(self) -> 'Camera':
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join(10.0)

    def _run(self) -> None:
        pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        while not self._stopped.is_set() and not self._stop_when():
            self._client.camera.publish(mono8(pixels, frame_id=f's{self.sent}'))
            self.sent += 1
            time.sleep(CAMERA_PERIOD_S)


def malformed_frames() -> Iterator[Image]:
    """Frames the node must reject and count: bad step, short data, unknown encoding, empty."""
    for encoding, height, width, step, size in (('mono8', 16, 16, 8, 128),
                                                ('mono8', 16, 16, 16, 100),
                                                ('yuv422', 16, 16, 32, 512),
                                                ('mono8', 0, 0, 0, 0),
                                                ('rgb8', 16, 16, 48, 16 * 48 + 7)):
        msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step)
        msg.data = bytes(size)
        msg.header.frame_id = 'malformed'
        yield msg


class StressRun:
    """One node process through the whole sequence, then a signal; see the module docstring."""

    def __init__(self, context: object, work_dir: Path, index: int, where: str,
                 signal_name: str, rng: random.Random, hogs: int = 0,
                 pin_cpu: Optional[int] = None, amplify: bool = False) -> None:
        self.index = index
        self.where = where
        self.signal_name = signal_name
        self.hogs = hogs
        self.pin_cpu = pin_cpu
        self.amplify = amplify
        self._rng = rng
        self._context = context
        self._dir = work_dir
        self._name = f'stress_{os.getpid()}_{index}'
        self._camera_topic = f'/{self._name}/camera'
        self._problems: List[str] = []

    def run(self) -> RunResult:
        """Run the sequence; never raises for a misbehaving node, records it instead."""
        model = make_sealed_onnx(self._dir, f'{self._name}.onnx')
        intact = model.read_bytes()
        node = NodeProcess(self._dir, self._name, {
            'models': ['tiny'], 'tiny.engine_path': str(model),
            'tiny.input_topic': self._camera_topic, 'tiny.runtime': 'onnxruntime'},
            extra_env={**PROFILE_ENV, **(AMPLIFIER_ENV if self.amplify else {})},
            cpus=None if self.pin_cpu is None else frozenset({self.pin_cpu}))
        client = ProcessClient(self._context, f'/{self._name}', self._camera_topic)
        outputs = f'/{self._name}/tiny/doubled'
        client.collect(outputs, lambda msg: msg.header.frame_id)
        segments: FrozenSet[str] = frozenset()
        exit_code: Optional[int] = None
        exit_s = 0.0
        try:
            with CpuHogs(self.hogs, self.pin_cpu):
                node.start()
                self._sequence(node, client, model, intact)
                segments = owned_segments(node.pid)
                self._check(bool(segments), 'no Fast DDS segment found for the node', node)
                exit_code, exit_s = self._signal_and_wait(node, client, model, intact)
        except _SequenceError as err:
            self._problems.append(str(err))
            _dump_stacks(node)
        finally:
            client.close()
            node.kill()
        stdout, stderr = node.output()
        for marker in ('terminate called', 'Fatal Python error', 'Traceback'):
            if marker in stdout + stderr:
                self._problems.append(f'{marker!r} in the output')
        if exit_code is None and node.process is not None:
            exit_code = node.process.returncode
        leftover = existing(sorted(segments)) if exit_code == 0 else ()
        result = RunResult(self.index, self.where, self.signal_name, self.hogs,
                           self.pin_cpu is not None, self.amplify, exit_code, exit_s,
                           tuple(self._problems), leftover)
        if result.abnormal:
            keep = self._dir / 'abnormal'
            keep.mkdir(exist_ok=True)
            (keep / f'{self._name}.log').write_text(
                f'{result.line()}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n')
        return result

    def _check(self, ok: bool, what: str, node: NodeProcess) -> None:
        if not ok:
            code = node.process.poll() if node.process else None
            raise _SequenceError(f'{what} (node exit {code})')

    def _frame_round_trip(self, node: NodeProcess, client: ProcessClient, frame_id: str) -> None:
        pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        # Best-effort camera QoS: resend until the output comes back.
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline and node.process.poll() is None:
            client.camera.publish(mono8(pixels, frame_id=frame_id))
            if wait_until(lambda: frame_id in client.collected(), 0.5, period_s=0.005):
                return
        values = client.model_values('tiny') or {}
        seen = {k: v for k, v in values.items() if k.startswith('frames_')}
        publishers = client.node.count_publishers(f'/{self._name}/tiny/doubled')
        self._check(False, f'no output for frame {frame_id} (node diagnostics {seen}, '
                    f'output publishers seen {publishers})', node)

    def _sequence(self, node: NodeProcess, client: ProcessClient, model: Path,
                  intact: bytes) -> None:
        lifecycle = client.lifecycle
        self._check(lifecycle.wait_for_services(STEP_TIMEOUT_S * 2), 'services', node)
        self._check(lifecycle.change('configure'), 'configure', node)
        self._check(lifecycle.change('activate'), 'activate', node)
        self._check(client.wait_for_camera_subscriber(STEP_TIMEOUT_S), 'camera match', node)
        for i in range(FRAMES):
            self._frame_round_trip(node, client, f'r{self.index}f{i}')
        for msg in malformed_frames():
            client.camera.publish(msg)
        self._frame_round_trip(node, client, f'r{self.index}after-malformed')
        self._check(lifecycle.change('deactivate'), 'deactivate', node)
        self._check(lifecycle.change('cleanup'), 'cleanup', node)
        tampered = bytearray(intact)
        tampered[len(tampered) // 2] ^= 0xFF
        model.write_bytes(bytes(tampered))
        self._check(not lifecycle.change('configure'), 'tampered model was not refused', node)
        self._check(lifecycle.state() == 'unconfigured', 'state after the refusal', node)

    def _signal_and_wait(self, node: NodeProcess, client: ProcessClient, model: Path,
                         intact: bytes) -> tuple:
        lifecycle = client.lifecycle
        signum = getattr(signal, self.signal_name)
        exited = lambda: node.process.poll() is not None  # noqa: E731
        with Camera(client, exited):
            if self.where == 'refused':
                time.sleep(self._rng.uniform(0.0, 0.3))
            else:
                model.write_bytes(intact)
            if self.where == 'transition':
                delay = self._rng.uniform(0.0, 0.15)
                timer = threading.Timer(delay, self._send, (node, signum))
                timer.start()
                if lifecycle.change('configure', timeout_s=5.0):
                    lifecycle.change('activate', timeout_s=5.0)
                timer.join()
            else:
                if self.where == 'active':
                    self._check(lifecycle.change('configure'), 'configure (restored)', node)
                    self._check(lifecycle.change('activate'), 'activate (restored)', node)
                    self._check(client.wait_for_camera_subscriber(STEP_TIMEOUT_S),
                                'camera match (restored)', node)
                    time.sleep(self._rng.uniform(0.05, 0.4))
                self._send(node, signum)
            sent = time.monotonic()
            try:
                code = node.process.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._problems.append(f'no exit within {EXIT_TIMEOUT_S} s of {self.signal_name}')
                code = None
        return code, time.monotonic() - sent


    def _send(self, node: NodeProcess, signum: int) -> None:
        if self.amplify and not starve_signal_thread(node.pid):
            self._problems.append("amplifier: rclpy's signal thread not found")
        node.process.send_signal(signum)


def _dump_stacks(node: NodeProcess) -> None:
    """Make a node that stalled print every thread's Python stack (faulthandler on SIGABRT)."""
    if node.process is not None and node.process.poll() is None:
        node.process.send_signal(signal.SIGABRT)
        try:
            node.process.wait(10.0)
        except subprocess.TimeoutExpired:
            pass


class _SequenceError(Exception):
    """The sequence could not go on: the node misbehaved before the signal."""


def plan(runs: int, seed: int, signals: Sequence[str] = SIGNALS) -> List[Dict[str, str]]:
    """`runs` (where, signal) pairs covering every combination evenly, in a seeded order."""
    combos = [{'where': w, 'signal_name': s} for w in WHERE for s in signals]
    schedule = [combos[i % len(combos)] for i in range(runs)]
    random.Random(seed).shuffle(schedule)
    return schedule


def run_many(context: object, work_dir: Path, runs: int, seed: int, hogs: int = 0,
             pin_cpu: Optional[int] = None, amplify: bool = False,
             signals: Sequence[str] = SIGNALS, first_index: int = 0,
             report: Callable[[RunResult], None] = lambda result: None) -> List[RunResult]:
    """Run `runs` stress runs; every result is passed to `report` as it comes."""
    rng = random.Random(seed)
    results = []
    for offset, combo in enumerate(plan(runs, seed, signals)):
        run_dir = work_dir / f'run{first_index + offset}'
        run_dir.mkdir(parents=True, exist_ok=True)
        result = StressRun(context, run_dir, first_index + offset, rng=rng, hogs=hogs,
                           pin_cpu=pin_cpu, amplify=amplify, **combo).run()
        report(result)
        results.append(result)
    return results


def summary(results: Sequence[RunResult]) -> str:
    """Exit codes per condition and the abnormal runs."""
    lines = [f'shutdowns {len(results)} abnormal {sum(r.abnormal for r in results)}']
    by_condition: Dict[str, Counter] = {}
    for result in results:
        key = (f'{result.where}/{result.signal_name}/hogs={result.hogs}'
               f'/pinned={int(result.pinned)}/amplified={int(result.amplified)}')
        by_condition.setdefault(key, Counter())[result.exit_code] += 1
    lines.extend(f'  {key}: exit codes {dict(counts)}' for key, counts in
                 sorted(by_condition.items()))
    exits = sorted(r.exit_s for r in results if r.exit_code == 0)
    if exits:
        lines.append(f'  seconds from signal to exit: median {exits[len(exits) // 2]:.2f}, '
                     f'max {exits[-1]:.2f}')
    lines.extend(f'  ABNORMAL {r.line()}' for r in results if r.abnormal)
    lines.append(f'  load average at the end {os.getloadavg()}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the stress from the command line; exit 1 when any run was abnormal."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=60)
    parser.add_argument('--hogs', type=int, default=0, help='busy-looping processes beside it')
    parser.add_argument('--pin-cpu', type=int, default=None,
                        help='pin the node (and the hogs) to this CPU')
    parser.add_argument('--amplify', action='store_true',
                        help="the race amplifier (use with --pin-cpu and --hogs 1): SCHED_IDLE "
                             "for rclpy's signal thread when the signal is sent, and every "
                             'small free() through the thread cache (docs/shutdown.md)')
    parser.add_argument('--signal', choices=SIGNALS, default=None, help='only this signal')
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--keep', type=Path, default=None,
                        help='directory for run files (logs of abnormal runs stay there)')
    args = parser.parse_args(argv)
    import rclpy
    from rclpy.context import Context

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print(f'seed {seed} runs {args.runs} hogs {args.hogs} pin_cpu {args.pin_cpu} '
          f'amplify {args.amplify} '
          f'ROS_DOMAIN_ID {os.environ.get("ROS_DOMAIN_ID")}', flush=True)
    context = Context()
    rclpy.init(context=context)
    with tempfile.TemporaryDirectory(prefix='shutdown_stress_') as scratch:
        work_dir = args.keep or Path(scratch)
        try:
            results = run_many(context, work_dir, args.runs, seed, args.hogs, args.pin_cpu,
                               args.amplify, (args.signal,) if args.signal else SIGNALS,
                               report=lambda result: print(result.line(), flush=True))
        finally:
            rclpy.try_shutdown(context=context)
    print(summary(results), flush=True)
    return 1 if any(r.abnormal for r in results) else 0


if __name__ == '__main__':
    raise SystemExit(main())
