"""A camera driver in its own process, so frames cross a real process boundary.

The issue this tests is about DDS transports between processes: a camera publisher in the
test's own process would share one participant with the node and prove nothing. The child
is driven line by line over stdin and answers one JSON line per command on stdout:

    wait_matched N TIMEOUT_S        -> {"matched": K}  (K >= N unless it timed out)
    publish ENCODING W H COUNT      -> {"published": COUNT, "first": I, "late": L}
                                       at the camera rate, L of them after a missed slot
    quit (or stdin closed)          -> the process releases ROS and exits 0

Run: `python test/camera_process.py TOPIC --qos sensor_data|reliable --rate-hz 30`. The
Fast DDS environment (profile variables, FASTDDS_BUILTIN_TRANSPORTS) is whatever the parent
passes, so a test can run it with the shipped profile or with Fast DDS defaults.
`CameraProcess` is the parent's side.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

CHANNELS = {'mono8': 1, 'rgb8': 3, 'bgr8': 3}


def _qos(kind: str) -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliability = (ReliabilityPolicy.BEST_EFFORT if kind == 'sensor_data'
                   else ReliabilityPolicy.RELIABLE)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=reliability)


def _image(encoding: str, width: int, height: int) -> Any:
    """One frame with a gradient (content is irrelevant to transport, size is not)."""
    import numpy as np
    from sensor_msgs.msg import Image

    from gps_denied_inference.imaging.output_encoding import message_data

    channels = CHANNELS[encoding]
    row = (np.arange(width * channels, dtype=np.uint32) % 251).astype(np.uint8)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                step=width * channels)
    msg.data = message_data(np.tile(row, height))
    msg.header.frame_id = 'camera'
    return msg


def _publish(node: Any, publisher: Any, msg: Any, count: int, rate_hz: float,
             first: int) -> int:
    """Publish `count` frames on a fixed schedule, frame ids first..first+count-1.

    Returns how many went out after a missed slot: when this process falls more than a period
    behind (descheduled on a loaded machine), the schedule restarts from now instead of catching
    up with back-to-back frames: a burst faster than the camera rate, which no real camera
    sends, overwrites frames in the keep-last histories between here and the node.
    """
    period = 1.0 / rate_hz
    next_at = time.monotonic()
    late = 0
    for index in range(first, first + count):
        now = time.monotonic()
        if now - next_at > period:
            late += 1
            next_at = now
        msg.header.frame_id = str(index)
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    return late


def main(argv: Optional[List[str]] = None) -> int:
    """Serve commands from stdin until `quit` or end of input."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('topic')
    parser.add_argument('--qos', choices=('sensor_data', 'reliable'), default='sensor_data')
    parser.add_argument('--rate-hz', type=float, default=30.0)
    args = parser.parse_args(argv)
    import rclpy
    from rclpy.context import Context
    from sensor_msgs.msg import Image

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('camera_process', context=context)
    publisher = node.create_publisher(Image, args.topic, _qos(args.qos))
    sent = 0
    try:
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == 'quit':
                break
            if words[0] == 'wait_matched':
                wanted, deadline = int(words[1]), time.monotonic() + float(words[2])
                while (publisher.get_subscription_count() < wanted
                       and time.monotonic() < deadline):
                    time.sleep(0.02)
                answer: Dict[str, Any] = {'matched': publisher.get_subscription_count()}
            elif words[0] == 'publish':
                encoding, width, height, count = words[1], *map(int, words[2:5])
                late = _publish(node, publisher, _image(encoding, width, height), count,
                                args.rate_hz, sent)
                answer = {'published': count, 'first': sent, 'late': late}
                sent += count
            else:
                answer = {'error': f'unknown command {words[0]!r}'}
            print(json.dumps(answer), flush=True)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    return 0


class CameraProcess:
    """The parent's side: start the child, send commands, read answers with a deadline."""

    def __init__(self, topic: str, qos: str = 'sensor_data', rate_hz: float = 30.0,
                 env: Optional[Dict[str, str]] = None) -> None:
        child_env = dict(os.environ if env is None else env)
        child_env['PYTHONUNBUFFERED'] = '1'
        self._process = subprocess.Popen(
            [sys.executable, __file__, topic, '--qos', qos, '--rate-hz', str(rate_hz)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=child_env)
        self._answers: 'queue.Queue[str]' = queue.Queue()
        self._stderr: List[str] = []
        threading.Thread(target=self._read, args=(self._process.stdout, self._on_stdout),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self._process.stderr, self._stderr.append),
                         daemon=True).start()

    @staticmethod
    def _read(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)

    def _on_stdout(self, line: str) -> None:
        # Answers are JSON objects; Fast DDS 2.x (Humble, Jazzy) logs to stdout, not stderr.
        if line.startswith('{'):
            self._answers.put(line)
        else:
            self._stderr.append(line)

    def command(self, line: str, timeout_s: float) -> Dict[str, Any]:
        """Send one command; its JSON answer, or AssertionError with the child's stderr."""
        self._process.stdin.write(line + '\n')
        self._process.stdin.flush()
        try:
            return json.loads(self._answers.get(timeout=timeout_s))
        except queue.Empty:
            raise AssertionError(f'camera process gave no answer to {line!r} in {timeout_s} s;'
                                 f' exit code {self._process.poll()}, stderr:\n'
                                 + ''.join(self._stderr)) from None

    def wait_matched(self, subscribers: int = 1, timeout_s: float = 10.0) -> int:
        """Matched subscriptions once `subscribers` matched or the timeout passed."""
        # The first answer also waits for the child to start (import rclpy, join the domain),
        # which takes seconds on a loaded machine.
        return self.command(f'wait_matched {subscribers} {timeout_s}', timeout_s + 30.0)[
            'matched']

    def publish(self, encoding: str, width: int, height: int, count: int,
                rate_hz: float = 30.0) -> Dict[str, Any]:
        """Publish `count` frames at the camera rate; returns once the last one is out."""
        return self.command(f'publish {encoding} {width} {height} {count}',
                            count / rate_hz + 30.0)

    @property
    def stderr(self) -> str:
        """The child's log so far: stderr and stdout that is not an answer (Fast DDS, rclpy)."""
        return ''.join(self._stderr)

    def close(self) -> int:
        """Ask the child to quit; its exit code (killed after 10 s: -9)."""
        if self._process.poll() is None:
            try:
                self._process.stdin.write('quit\n')
                self._process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                return self._process.wait(10.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode


if __name__ == '__main__':
    raise SystemExit(main())
