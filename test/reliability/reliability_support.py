"""What the reliability tests share: footprints, fault injection, odd models, processes.

The node's footprint (state, ledger, threads, ROS entities) is what a refused input must leave
unchanged; the node and its peers run as separate processes where a crash or a signal must be
real.
"""

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from node_harness import wait_until

from gps_denied_inference.artifacts.sealing import manifest_from_onnx, seal_artifact
from gps_denied_inference.resources.measured_usage import current_rss_bytes
from gps_denied_inference.spin_thread import SpinThread

HERE = Path(__file__).resolve().parent
ROS_PEERS = HERE / 'ros_peers.py'


@dataclass(frozen=True)
class Footprint:
    """Everything a refused input must leave as it was: state, ledger, threads, entities."""

    state: Optional[str]
    configured: bool
    gpu_resident_bytes: int
    host_resident_bytes: int
    worker_threads: Tuple[str, ...]
    thermal_threads: int
    image_subscriptions: int
    publishers: int
    subscriptions: int


def footprint(harness: Any) -> Footprint:
    """The node's footprint now (lifecycle state asked over its real service)."""
    node = harness.node
    core = node._core
    names = [t.name for t in threading.enumerate() if t.is_alive()]
    return Footprint(
        state=harness.lifecycle.state(),
        configured=core is not None,
        gpu_resident_bytes=core.budget.gpu.resident_bytes if core is not None else 0,
        host_resident_bytes=core.budget.host.resident_bytes if core is not None else 0,
        worker_threads=tuple(sorted(n for n in names if n.startswith('worker-'))),
        thermal_threads=names.count('thermal-publisher'),
        image_subscriptions=len(node._image_subscriptions),
        publishers=len(list(node.publishers)),
        subscriptions=len(list(node.subscriptions)))


def settled_footprint(harness: Any, expected: Footprint, timeout_s: float = 5.0) -> Footprint:
    """The footprint once it equals `expected` (threads take a moment to exit), else the last."""
    last = [footprint(harness)]

    def matches() -> bool:
        last[0] = footprint(harness)
        return last[0] == expected
    wait_until(matches, timeout_s, period_s=0.05)
    return last[0]


class Faults:
    """Faults to inject, per model name, into FaultyRuntime; tests change them at run time."""

    def __init__(self) -> None:
        self.on_load: Dict[str, BaseException] = {}
        self.on_prepare: Dict[str, BaseException] = {}
        self.on_infer: Dict[str, BaseException] = {}
        self.prepare_delay_s = 0.0
        self.prepare_started = threading.Event()
        self.released: List[str] = []
        self.infer_calls = 0

    def factory(self, build: Any) -> Any:
        """A runtime factory for InferenceNode that wraps what `build` makes."""
        def make(label: str, **kwargs: Any) -> 'FaultyRuntime':
            return FaultyRuntime(build(label, **kwargs), self)
        return make


class FaultyRuntime:
    """A real runtime strategy that raises the injected faults at load, prepare or infer."""

    def __init__(self, inner: Any, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def deserialize_engine(self, name: str, path: str, expected: Any) -> Any:
        """Load, unless a fault is injected for `name`."""
        fault = self._faults.on_load.get(name)
        if fault is not None:
            raise fault
        return self._inner.deserialize_engine(name, path, expected)

    def prepare_execution(self, handle: Any) -> None:
        """Prepare after the injected delay, unless a fault is injected for the model."""
        self._faults.prepare_started.set()
        time.sleep(self._faults.prepare_delay_s)
        fault = self._faults.on_prepare.get(handle.name)
        if fault is not None:
            raise fault
        self._inner.prepare_execution(handle)

    def infer(self, handle: Any, inputs: Any) -> Any:
        """Infer, unless a fault is injected for the model."""
        self._faults.infer_calls += 1
        fault = self._faults.on_infer.get(handle.name)
        if fault is not None:
            raise fault
        return self._inner.infer(handle, inputs)

    def release_engine(self, handle: Any) -> None:
        """Release and record which engine was released."""
        self._inner.release_engine(handle)
        self._faults.released.append(handle.name)


def make_sealed_graph(path: Path, nodes: Sequence[Any], outputs: Sequence[Any],
                      initializers: Sequence[Any] = (), height: int = 16,
                      width: int = 16) -> Path:
    """Seal an ONNX graph with input `image` float32 [1, 1, H, W] and the given outputs."""
    import onnx
    from onnx import helper, TensorProto

    graph = helper.make_graph(
        list(nodes), 'reliability',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, height, width])],
        list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    seal_artifact(path, manifest_from_onnx(path))
    return path


def write_params_file(path: Path, node_name: str, parameters: Dict[str, Any]) -> Path:
    """A ROS 2 params file; every value is written as JSON, which YAML reads as is."""
    lines = [f'{node_name}:', '  ros__parameters:']
    lines.extend(f'    {name}: {json.dumps(value)}' for name, value in parameters.items())
    path.write_text('\n'.join(lines) + '\n')
    return path


@dataclass
class NodeProcess:
    """`python -m gps_denied_inference.node` as its own process, output kept in files.

    `extra_env` is added to this process's environment; `cpus` pins the node to those CPUs.
    """

    tmp_path: Path
    node_name: str
    parameters: Dict[str, Any]
    process: Optional[subprocess.Popen] = None
    extra_env: Dict[str, str] = field(default_factory=dict)
    cpus: Optional[FrozenSet[int]] = None
    stdout_path: Path = field(init=False)
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout_path = self.tmp_path / f'{self.node_name}.stdout'
        self.stderr_path = self.tmp_path / f'{self.node_name}.stderr'

    def start(self) -> 'NodeProcess':
        """Start the node with its params file."""
        params = write_params_file(self.tmp_path / f'{self.node_name}.yaml', self.node_name,
                                   self.parameters)
        with open(self.stdout_path, 'wb') as out, open(self.stderr_path, 'wb') as err:
            self.process = subprocess.Popen(
                [sys.executable, '-m', 'gps_denied_inference.node', '--ros-args',
                 '-r', f'__node:={self.node_name}', '--params-file', str(params)],
                stdout=out, stderr=err, env={**os.environ, **self.extra_env},
                preexec_fn=self._pin if self.cpus else None)
        return self

    def _pin(self) -> None:
        assert self.cpus is not None
        os.sched_setaffinity(0, self.cpus)

    @property
    def pid(self) -> int:
        """The node's process id."""
        assert self.process is not None
        return self.process.pid

    def rss_bytes(self) -> int:
        """The node process's resident set."""
        return current_rss_bytes(f'/proc/{self.pid}')

    def output(self) -> Tuple[str, str]:
        """Its stdout and stderr so far."""
        return (self.stdout_path.read_text(errors='replace'),
                self.stderr_path.read_text(errors='replace'))

    def kill(self) -> None:
        """Kill it if it still runs (test teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10.0)


def start_peer(*args: str) -> subprocess.Popen:
    """Start ros_peers.py (a camera or a lifecycle client) as its own process."""
    return subprocess.Popen([sys.executable, str(ROS_PEERS), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ))


def read_line(process: subprocess.Popen, prefix: str, timeout_s: float) -> Optional[str]:
    """The first stdout line of `process` that starts with `prefix`, or None on timeout."""
    found: List[str] = []

    def reader() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors='replace').strip()
            if line.startswith(prefix):
                found.append(line)
                return
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return found[0] if found else None


def latest_status(harness: Any, suffix: str) -> Optional[Any]:
    """The newest DiagnosticStatus whose name ends with `suffix`, or None."""
    for array in reversed(list(harness.diagnostics)):
        for status in array.status:
            if status.name.endswith(suffix):
                return status
    return None


def status_values(status: Any) -> Dict[str, str]:
    """A DiagnosticStatus's key/value pairs as a dict."""
    return {kv.key: kv.value for kv in status.values}


class ProcessClient:
    """A camera, output collector and lifecycle manager for a node in another process."""

    def __init__(self, context: Any, target: str, camera_topic: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from gps_denied_inference.demo.lifecycle_client import LifecycleClient

        self.node = Node(f'{target.strip("/")}_driver', context=context)
        self.lifecycle = LifecycleClient(self.node, target)
        self.camera = self.node.create_publisher(Image, camera_topic, qos_profile_sensor_data)
        self.outputs: List[Any] = []
        self.diagnostics: List[Any] = []
        self._diagnostics_count = 0
        self._lock = threading.Lock()
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.spinner = SpinThread(self.executor).start()

    def collect(self, topic: str, keep: Any = lambda msg: msg) -> None:
        """Keep `keep(msg)` of every message on `topic` (reliable, depth 50)."""
        from node_harness import RELIABLE_QOS
        from sensor_msgs.msg import Image

        def store(msg: Any) -> None:
            with self._lock:
                self.outputs.append(keep(msg))
        self.node.create_subscription(Image, topic, store, RELIABLE_QOS)

    def collected(self) -> List[Any]:
        """What collect() kept so far."""
        with self._lock:
            return list(self.outputs)

    def _on_diagnostics(self, msg: Any) -> None:
        with self._lock:
            self.diagnostics.append(msg)
            del self.diagnostics[:-20]
            self._diagnostics_count += 1

    def diagnostics_mark(self) -> int:
        """How many DiagnosticArrays arrived so far: a mark for model_values_since()."""
        with self._lock:
            return self._diagnostics_count

    def model_values(self, model: str) -> Optional[Dict[str, str]]:
        """The newest diagnostic values of `model`, or None."""
        with self._lock:
            arrays = list(self.diagnostics)
        for array in reversed(arrays):
            for status in array.status:
                if status.name.endswith(f'model {model}'):
                    return status_values(status)
        return None

    def model_values_since(self, model: str, mark: int) -> List[Dict[str, str]]:
        """Diagnostic values of `model`, oldest first, in the arrays that arrived after `mark`.

        Only the newest 20 arrays are kept: older ones after the mark are not returned.
        """
        with self._lock:
            arrays = self.diagnostics[max(0, len(self.diagnostics)
                                          - (self._diagnostics_count - mark)):]
        return [status_values(status) for array in arrays for status in array.status
                if status.name.endswith(f'model {model}')]

    def wait_for_camera_subscriber(self, timeout_s: float) -> bool:
        """True once the node's image subscription matched the camera."""
        return wait_until(lambda: self.camera.get_subscription_count() > 0, timeout_s)

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self.spinner.stop()
        self.node.destroy_node()
