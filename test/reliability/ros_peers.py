"""Peers of the node that the crash tests kill with SIGKILL: each runs as its own process.

`python ros_peers.py camera TOPIC` publishes 16 x 16 mono8 frames at 30 Hz until killed and
prints 'MATCHED' once the node subscribes. `python ros_peers.py lifecycle NODE T` calls
transition T on NODE, printing 'CALLING' just before the call and 'RESULT <bool>' after it.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from gps_denied_inference.demo.lifecycle_client import LifecycleClient
from gps_denied_inference.spin_thread import SpinThread


def camera(topic: str) -> None:
    """Publish forever; SIGKILL is the only way this ends."""
    node = rclpy.create_node('crash_camera')
    publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    matched = False
    index = 0
    while True:
        msg = Image(height=16, width=16, encoding='mono8', is_bigendian=0, step=16,
                    data=pixels.tobytes())
        msg.header.frame_id = f'crash{index}'
        publisher.publish(msg)
        index += 1
        if not matched and publisher.get_subscription_count() > 0:
            matched = True
            print('MATCHED', flush=True)
        time.sleep(1 / 30)


def lifecycle(node_name: str, transition: str) -> None:
    """Call one transition and report it."""
    node = rclpy.create_node('crash_lifecycle_client')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = SpinThread(executor).start()
    client = LifecycleClient(node, node_name)
    if not client.wait_for_services(30.0):
        print('NO SERVICES', flush=True)
        return
    print('CALLING', flush=True)
    print(f'RESULT {client.change(transition)}', flush=True)
    spinner.stop()


def main() -> int:
    """Run the peer named by argv[1]."""
    rclpy.init()
    try:
        if sys.argv[1] == 'camera':
            camera(sys.argv[2])
        else:
            lifecycle(sys.argv[2], sys.argv[3])
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
