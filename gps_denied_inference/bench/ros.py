"""The ROS scaffolding the benchmark's child processes share: a node spun on its own thread.

Each child owns one rclpy context; close() stops the executor and joins its thread before
rclpy shuts down (a process that exits while an executor thread spins aborts).
"""

from typing import Any

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from gps_denied_inference.spin_thread import SpinThread

# The camera side: sensor-data QoS (best effort, keep last 5), like a camera driver.
CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
# The node's outputs are reliable; a consumer subscribes reliable with room for a burst.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                        reliability=ReliabilityPolicy.RELIABLE)


class SpunNode:
    """An rclpy context, one node and a single-threaded executor spinning it on a thread."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = SpinThread(self.executor, f'{name}-spin').start()

    def close(self) -> None:
        """Stop spinning, join the thread, destroy the node, shut the context down."""
        import rclpy

        self._spinner.stop()
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)

    def __enter__(self) -> 'SpunNode':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
