"""The benchmark's null node: the node's transport without the node, the floor it is read against.

`python -m gps_denied_inference.bench.null_node NAME MODEL MANIFEST INPUT_TOPIC` subscribes to
INPUT_TOPIC exactly as the inference node does (its input QoS for `input_qos: sensor_data`,
the same process environment and so the same Fast DDS profile) and answers every frame at
once, in the subscription callback, with precomputed outputs of the model's real sizes and
encodings (as the node lays them out) on `/NAME/MODEL/<output>`, reliable with the node's
output QoS, each carrying the input's header. Its end-to-end latency, camera stamp to the last
output received, is what the node cannot go below: input transport, output transport and the
receiver. It runs until its stdin closes (the benchmark's signal to stop), as the bare
subscriber does.
"""

import sys
from typing import Any, Dict, List, Optional

from gps_denied_inference.bench.frames import output_messages

# The node's default output_depth (node/parameters.py).
OUTPUT_DEPTH = 5


class NullNode:
    """On `node`: one input subscription, one publisher per output, nothing in between."""

    def __init__(self, node: Any, model: str, manifest: Any, input_topic: str,
                 output_depth: int = OUTPUT_DEPTH) -> None:
        from sensor_msgs.msg import Image

        from gps_denied_inference.node.lifecycle_node import input_qos, output_qos

        self.messages: Dict[str, Any] = output_messages(manifest)
        qos = output_qos(output_depth)
        self._pairs = [(node.create_publisher(Image, f'~/{model}/{name}', qos), msg)
                       for name, msg in self.messages.items()]
        self.answered = 0
        self.subscription = node.create_subscription(Image, input_topic, self._on_image,
                                                     input_qos('sensor_data'))

    @property
    def publishers(self) -> List[Any]:
        """The output publishers, in manifest order."""
        return [publisher for publisher, _ in self._pairs]

    def _on_image(self, msg: Any) -> None:
        for publisher, output in self._pairs:
            output.header = msg.header
            publisher.publish(output)
        self.answered += 1


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print('usage: bench_null_node NAME MODEL MANIFEST INPUT_TOPIC', file=sys.stderr)
        return 2
    name, model, manifest_path, input_topic = args
    from pathlib import Path

    from gps_denied_inference.artifacts.manifest import Manifest
    from gps_denied_inference.bench.ros import SpunNode

    manifest = Manifest.from_json(Path(manifest_path).read_text())
    with SpunNode(name) as ros:
        null = NullNode(ros.node, model, manifest, input_topic)
        print('ready', flush=True)
        sys.stdin.read()
    print(f'answered {null.answered} frames', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
