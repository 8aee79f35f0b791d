"""The benchmark's bare subscriber: the transport floor, with nothing but a callback.

`python -m gps_denied_inference.bench_peers OUT.json TOPIC...` subscribes to every TOPIC
with sensor-data QoS, records (frame_id, latency) per message, and when its stdin closes
(the benchmark's signal to stop) writes {topic: [[frame_id, latency_s], ...]} to OUT.json.
"""

import json
import sys
import threading
from typing import Dict, List, Optional, Tuple

from gps_denied_inference.bench_frames import age_s
from gps_denied_inference.bench_ros import CAMERA_QOS, SpunNode


def main(argv: Optional[List[str]] = None) -> int:
    """Record until stdin closes, then write the JSON file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print('usage: bench_peers OUT.json TOPIC...', file=sys.stderr)
        return 2
    out, topics = args[0], args[1:]
    from sensor_msgs.msg import Image

    lock = threading.Lock()
    received: Dict[str, List[Tuple[str, float]]] = {topic: [] for topic in topics}
    with SpunNode('bench_bare_subscriber') as ros:
        for topic in topics:
            def record(msg: Image, topic: str = topic) -> None:
                latency = age_s(msg.header)
                with lock:
                    received[topic].append((msg.header.frame_id, latency))
            ros.node.create_subscription(Image, topic, record, CAMERA_QOS)
        print('ready', flush=True)
        sys.stdin.read()
    with lock, open(out, 'w') as stream:
        json.dump(received, stream)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
