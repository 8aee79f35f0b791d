"""The benchmark's bare subscriber: the transport floor, with nothing but a callback.

`python -m gps_denied_inference.bench.peers OUT.json QOS:TOPIC...` subscribes to every TOPIC
with its QOS (`camera`: sensor-data, best effort, as the node's inputs; `output`: reliable, as
a consumer of the node's outputs), records (frame_id, latency) per message, and when its stdin
closes (the benchmark's signal to stop) writes {topic: [[frame_id, latency_s], ...]} to
OUT.json.
"""

import json
import sys
import threading
from typing import Dict, List, Optional, Tuple

from gps_denied_inference.bench.frames import age_s
from gps_denied_inference.bench.ros import CAMERA_QOS, OUTPUT_QOS, SpunNode

QOS_BY_NAME = {'camera': CAMERA_QOS, 'output': OUTPUT_QOS}


def parse_topics(specs: List[str]) -> Dict[str, str]:
    """{topic: qos name} from QOS:TOPIC arguments; ValueError naming a malformed one."""
    topics = {}
    for spec in specs:
        qos, _, topic = spec.partition(':')
        if qos not in QOS_BY_NAME or not topic:
            raise ValueError(f'{spec!r} is not QOS:TOPIC with QOS one of {sorted(QOS_BY_NAME)}')
        topics[topic] = qos
    return topics


def main(argv: Optional[List[str]] = None) -> int:
    """Record until stdin closes, then write the JSON file."""
    args = sys.argv[1:] if argv is None else argv
    try:
        topics = parse_topics(args[1:]) if len(args) >= 2 else None
    except ValueError as err:
        print(f'bench_peers: {err}', file=sys.stderr)
        return 2
    if not topics:
        print('usage: bench_peers OUT.json QOS:TOPIC...', file=sys.stderr)
        return 2
    out = args[0]
    from sensor_msgs.msg import Image

    lock = threading.Lock()
    received: Dict[str, List[Tuple[str, float]]] = {topic: [] for topic in topics}
    with SpunNode('bench_bare_subscriber') as ros:
        for topic, qos in topics.items():
            def record(msg: Image, topic: str = topic) -> None:
                latency = age_s(msg.header)
                with lock:
                    received[topic].append((msg.header.frame_id, latency))
            ros.node.create_subscription(Image, topic, record, QOS_BY_NAME[qos])
        print('ready', flush=True)
        sys.stdin.read()
    with lock, open(out, 'w') as stream:
        json.dump(received, stream)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
