"""A/B of the node's per-frame output path, in one process: what each step costs per frame.

`python -m gps_denied_inference.bench.publish_cost [--model dense|superpoint|corners]
[--rounds N] [--frames N]` times, for one model's outputs (shapes and dtypes from its
manifest, values from a real ONNX Runtime run), each variant of each per-frame step, in
alternation (A, B, A, B, ...) so the machine's drift falls on both: the NaN/Inf check (a
full isfinite pass vs a sum that proves the frame finite), the encoding into the message
(an array('B') copy in a new Image vs a view in a reused one) and the whole publish (before
vs after, through a real rclpy publisher with a bare subscriber in another process, frames
50 ms apart so the receiver keeps up). Every frame gets freshly written outputs, as a
runtime returns them. Prints per-round medians and writes
build/bench/publish_cost.json. A script, not a test: it asserts nothing about time.
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from gps_denied_inference.imaging.output_encoding import (
    count_nonfinite,
    encode_output,
    image_layout_for,
    message_data,
)
from gps_denied_inference.node.output_publisher import attach_data, OutputPublisher

ROOT = Path(__file__).resolve().parents[2]
Outputs = Dict[str, np.ndarray]


def model_outputs(kind: str, out: Path) -> Outputs:
    """One real frame's outputs of the demo model `kind` at 640x480."""
    from gps_denied_inference.bench.raw import create_session, preprocessed_input
    from gps_denied_inference.demo.models import write_demo_model
    from gps_denied_inference.demo.scene import AerialScene

    path = out / f'publish_cost_{kind}.onnx'
    manifest = write_demo_model(path, superpoint=kind == 'superpoint', dense=kind == 'dense')
    session = create_session(str(path))
    names = [spec.name for spec in manifest.outputs]
    tensor = preprocessed_input(manifest, AerialScene(seed=7))
    return dict(zip(names, session.run(names, {manifest.inputs[0].name: tensor})))


def fresh(template: Outputs) -> Outputs:
    """New arrays holding the template's values: the runtime writes new memory per frame."""
    return {name: np.array(tensor, copy=True) for name, tensor in template.items()}


def old_check(outputs: Outputs) -> bool:
    """The node's check: one isfinite pass (and its boolean array) per output."""
    return any(count_nonfinite(tensor) for tensor in outputs.values())


def sum_check(outputs: Outputs) -> bool:
    """The candidate: a finite sum proves every value finite (NaN and Inf propagate).

    Not kept: as fast as the isfinite pass, within noise, on numpy 1.21 and 2.x; both are one
    memory-bound pass over the data.
    """
    return not all(np.isfinite(np.add.reduce(tensor, axis=None))
                   for tensor in outputs.values())


def old_encode(outputs: Outputs) -> List[Any]:
    """Before: a new Image per output, its data an array('B') copy of the tensor."""
    from sensor_msgs.msg import Image

    messages = []
    for name, tensor in outputs.items():
        layout = image_layout_for(tensor.shape, str(tensor.dtype), name=name)
        msg = Image(height=layout.height, width=layout.width, encoding=layout.encoding,
                    is_bigendian=0, step=layout.step)
        msg.data = message_data(encode_output(tensor, layout))
        messages.append(msg)
    return messages


def new_encoder(message_type: Any) -> Callable[[Outputs], List[Any]]:
    """After: one reused Image per output, its data a view of the tensor."""
    messages: Dict[str, Any] = {}

    def encode(outputs: Outputs) -> List[Any]:
        for name, tensor in outputs.items():
            layout = image_layout_for(tensor.shape, tensor.dtype, name=name)
            if name not in messages:
                messages[name] = message_type(height=layout.height, width=layout.width,
                                              encoding=layout.encoding, is_bigendian=0,
                                              step=layout.step)
            attach_data(messages[name], encode_output(tensor, layout), zero_copy=True)
        return list(messages.values())
    return encode


def old_publisher(publishers: Dict[str, Any]) -> Callable[[Any, Outputs, bool], None]:
    """The node's publish function before this change, for the A/B."""
    def publish(header: Any, outputs: Outputs, nonfinite: bool) -> None:
        for msg, name in zip(old_encode(outputs), outputs):
            msg.header = header
            publishers[name].publish(msg)
    return publish


def timed(step: Callable[[Outputs], Any], template: Outputs, frames: int,
          pause_s: float) -> List[float]:
    """Seconds per frame of `step` over `frames` freshly written frames, `pause_s` apart."""
    seconds = []
    for _ in range(frames):
        outputs = fresh(template)
        started = time.perf_counter()
        step(outputs)
        seconds.append(time.perf_counter() - started)
        time.sleep(pause_s)
    return seconds


def alternate(variants: Dict[str, Callable[[Outputs], Any]], template: Outputs, rounds: int,
              frames: int, pause_s: float = 0.0) -> Dict[str, List[float]]:
    """Per variant, the median seconds of each round; rounds alternate the variants."""
    medians: Dict[str, List[float]] = {name: [] for name in variants}
    for round_ in range(rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            medians[name].append(float(np.median(
                timed(variants[name], template, frames, pause_s))))
    return medians


def main(argv: Optional[List[str]] = None) -> int:
    """Run the A/B; print and write the medians."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='dense', choices=('dense', 'superpoint', 'corners'))
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--out', type=Path, default=ROOT / 'build' / 'bench')
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from sensor_msgs.msg import Image

    from gps_denied_inference.bench.frames import restamp
    from gps_denied_inference.bench.ros import OUTPUT_QOS, SpunNode

    template = model_outputs(args.model, args.out)
    nbytes = sum(t.nbytes for t in template.values())
    topics = {name: f'/publish_cost/{name}' for name in template}
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    receiver = subprocess.Popen(
        [sys.executable, '-m', 'gps_denied_inference.bench.peers', os.devnull,
         *[f'output:{topic}' for topic in topics.values()]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        receiver.stdout.readline()
        with SpunNode('publish_cost') as ros:
            publishers = {name: ros.node.create_publisher(Image, topic, OUTPUT_QOS)
                          for name, topic in topics.items()}
            deadline = time.monotonic() + 20.0
            while (time.monotonic() < deadline
                   and not all(p.get_subscription_count() for p in publishers.values())):
                time.sleep(0.05)
            stamped = Image()
            new = OutputPublisher(publishers, None, Image)
            old = old_publisher(publishers)

            def publish_with(publish: Callable[[Any, Outputs, bool], None],
                             check: Callable[[Outputs], bool]) -> Callable[[Outputs], None]:
                def step(outputs: Outputs) -> None:
                    restamp(stamped, 'frame')
                    publish(stamped.header, outputs, check(outputs))
                return step

            results = {
                'nonfinite_check': alternate({'full isfinite pass': old_check,
                                              'sum proves finite': sum_check},
                                             template, args.rounds, args.frames),
                'encode': alternate({'array copy, new Image': old_encode,
                                     'view, reused Image': new_encoder(Image)},
                                    template, args.rounds, args.frames),
                'check + encode + publish': alternate(
                    {'before': publish_with(old, old_check),
                     'after': publish_with(new, old_check)},
                    template, args.rounds, args.frames, pause_s=0.05),
            }
    finally:
        receiver.stdin.close()
        receiver.wait(15.0)
    report = {'model': args.model, 'output_bytes': int(nbytes),
              'outputs': {n: [list(t.shape), str(t.dtype)] for n, t in template.items()},
              'zero_copy': new.zero_copy, 'rounds': args.rounds, 'frames': args.frames,
              'load_average': os.getloadavg(), 'median_ms_per_round': {
                  step: {name: [round(1e3 * s, 4) for s in values]
                         for name, values in variants.items()}
                  for step, variants in results.items()}}
    (args.out / 'publish_cost.json').write_text(json.dumps(report, indent=1))
    print(f'{args.model}: {nbytes / 1e6:.2f} MB per frame, {args.rounds} alternating rounds '
          f'of {args.frames} frames, load {report["load_average"][0]:.1f}')
    for step, variants in report['median_ms_per_round'].items():
        for name, values in variants.items():
            print(f'  {step:26s} {name:24s} median of rounds {np.median(values):7.3f} ms  '
                  f'rounds {values}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
