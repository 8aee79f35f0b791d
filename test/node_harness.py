"""A real InferenceNode in a real rclpy context, driven by a client node over real services.

Both nodes spin in one MultiThreadedExecutor on a background thread (the node composes with
another node, as on the drone); the client publishes images, collects outputs and
/diagnostics, and calls the lifecycle services like a lifecycle manager.
"""

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from gps_denied_inference.demo.lifecycle_client import LifecycleClient
from gps_denied_inference.imaging.output_encoding import message_data
from gps_denied_inference.node.lifecycle_node import InferenceNode
from gps_denied_inference.spin_thread import SpinThread

SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                          reliability=ReliabilityPolicy.RELIABLE)


def model_parameters(name: str, path: str, topic: str = '/camera/image_raw',
                     **extra: Any) -> Dict[str, Any]:
    """Parameters of one ONNX Runtime model."""
    values = {f'{name}.engine_path': path, f'{name}.input_topic': topic,
              f'{name}.runtime': 'onnxruntime'}
    values.update({f'{name}.{k}': v for k, v in extra.items()})
    return values


def as_overrides(values: Dict[str, Any]) -> List[Parameter]:
    """Rclpy parameter overrides from plain values (lists of str become STRING_ARRAY)."""
    return [Parameter(name, value=value) for name, value in values.items()]


class NodeHarness:
    """Starts the node and a client; collects everything the node publishes."""

    def __init__(self, context, parameters: Dict[str, Any], node_name: str = 'inference',
                 runtime_factory: Optional[Callable[..., Any]] = None) -> None:
        kwargs = {'context': context, 'parameter_overrides': as_overrides(parameters)}
        if runtime_factory is not None:
            kwargs['runtime_factory'] = runtime_factory
        self.node = InferenceNode(node_name, **kwargs)
        from rclpy.node import Node
        self.client = Node(f'{node_name}_client', context=context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self.lifecycle = LifecycleClient(self.client, f'/{node_name}')
        self.node_name = node_name
        self.outputs: Dict[str, List[Image]] = {}
        self.diagnostics: List[DiagnosticArray] = []
        self._lock = threading.Lock()
        self._publishers: Dict[str, Any] = {}
        self.client.create_subscription(DiagnosticArray, '/diagnostics',
                                        self.diagnostics.append, 10)
        self.spinner = SpinThread(self.executor, f'{node_name}-harness').start()
        found = self.lifecycle.wait_for_services(30.0)
        assert found, f'lifecycle services of {node_name} not found'

    def subscribe(self, model: str, output: str, qos: QoSProfile = RELIABLE_QOS) -> str:
        """Collect `~/model/output` messages; returns the topic."""
        topic = f'/{self.node_name}/{model}/{output}'

        def store(msg: Image) -> None:
            with self._lock:
                self.outputs.setdefault(topic, []).append(msg)
        self.client.create_subscription(Image, topic, store, qos)
        return topic

    def received(self, topic: str) -> List[Image]:
        """Messages received so far on `topic`."""
        with self._lock:
            return list(self.outputs.get(topic, []))

    def publish(self, topic: str, msg: Image) -> None:
        """Publish one image with sensor-data QoS."""
        if topic not in self._publishers:
            self._publishers[topic] = self.client.create_publisher(Image, topic, SENSOR_QOS)
        self._publishers[topic].publish(msg)

    def statuses_since(self, mark: int, suffix: str) -> List[DiagnosticStatus]:
        """Statuses whose name ends with `suffix` in every array after the first `mark`.

        Take `mark = len(harness.diagnostics)` before causing an event: a WARN lasts one
        diagnostics period, so a stalled test thread can miss it in the newest array alone.
        """
        return [status for array in self.diagnostics[mark:] for status in array.status
                if status.name.endswith(suffix)]

    def wait_for_subscription(self, topic: str, timeout_s: float = 30.0) -> bool:
        """True once the node's subscription on `topic` has matched our publisher."""
        if topic not in self._publishers:
            self._publishers[topic] = self.client.create_publisher(Image, topic, SENSOR_QOS)
        publisher = self._publishers[topic]
        return wait_until(lambda: publisher.get_subscription_count() > 0, timeout_s)

    def close(self) -> None:
        """Stop spinning, then destroy both nodes (the node releases its engines)."""
        self.spinner.stop()
        self.node.release_all()
        self.node.destroy_node()
        self.client.destroy_node()


def wait_until(condition: Callable[[], bool], timeout_s: float, period_s: float = 0.02) -> bool:
    """Poll `condition` until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(period_s)


def mono8(pixels: np.ndarray, frame_id: str = 'cam', stamp_ns: int = 0) -> Image:
    """A mono8 Image of `pixels` (uint8 HxW)."""
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='mono8',
                is_bigendian=0, step=pixels.shape[1])
    msg.data = message_data(np.asarray(pixels, dtype=np.uint8))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    return msg
