"""Lifecycle cycling: configure -> activate -> frames -> deactivate -> cleanup, many times.

Every transition succeeds over the real services, every frame of every cycle is processed,
the memory ledger is empty after each cleanup, no worker thread survives it, and the
process RSS after the last cycle is within 5 MiB of the RSS after the first.

The node and its client spin in one SingleThreadedExecutor, as `main()` runs the node in
flight: under rclpy's MultiThreadedExecutor, a transition that destroys a publisher or a
subscription races the executor thread adding that entity's QoS event handler to its next
wait set (rclpy EventHandler.add_to_wait_set re-enters a handle whose destruction was
requested; ros2/rclpy#1284, #1206), and InvalidHandle ends the executor's spin.
"""

import gc
import os
from pathlib import Path
import threading
import time

import node_harness
from node_harness import model_parameters, mono8, wait_until
import numpy as np
from rclpy.executors import SingleThreadedExecutor

from gps_denied_inference.resources.measured_usage import current_rss_bytes

CAMERA = '/camera/image_raw'
MIB = 1 << 20
FRAMES_PER_CYCLE = 3
FIGURES = Path(__file__).resolve().parents[2] / 'build' / 'reliability'


def _workers():
    return [t.name for t in threading.enumerate() if t.name.startswith('worker-')]


def test_lifecycle_cycles_return_every_byte(start, model, sizing, monkeypatch):
    monkeypatch.setattr(node_harness, 'MultiThreadedExecutor',
                        lambda num_threads, context: SingleThreadedExecutor(context=context))
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'diagnostics_period_s': 3600.0})
    node = harness.node
    frame = np.arange(256, dtype=np.uint8).reshape(16, 16)
    publishers, subscriptions = len(list(node.publishers)), len(list(node.subscriptions))
    rss = []
    started = time.monotonic()
    for cycle in range(sizing.lifecycle_cycles):
        assert harness.lifecycle.change('configure'), f'cycle {cycle}: configure'
        assert harness.lifecycle.change('activate'), f'cycle {cycle}: activate'
        assert _workers() == ['worker-tiny']
        assert harness.wait_for_subscription(CAMERA)
        stats = node._stats['tiny']
        for i in range(FRAMES_PER_CYCLE):
            harness.publish(CAMERA, mono8(frame, frame_id=f'c{cycle}f{i}'))
            assert wait_until(lambda n=i, s=stats: s.processed == n + 1, 30.0), \
                f'cycle {cycle}: frame {i} not processed: {stats.snapshot()}'
        core = node._core
        assert not core.budget.is_empty()
        assert harness.lifecycle.change('deactivate'), f'cycle {cycle}: deactivate'
        assert harness.lifecycle.change('cleanup'), f'cycle {cycle}: cleanup'
        assert core.budget.is_empty(), f'cycle {cycle}: ledger {core.budget.snapshot()}'
        assert node._core is None and core.models == []
        assert wait_until(lambda: not _workers(), 30.0), f'cycle {cycle}: {_workers()}'
        assert (len(list(node.publishers)), len(list(node.subscriptions))) == \
            (publishers, subscriptions)
        assert harness.lifecycle.state() == 'unconfigured'
        gc.collect()
        rss.append(current_rss_bytes())
    elapsed = time.monotonic() - started
    growth = rss[-1] - rss[0]
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f'lifecycle_cycling{"_full" if sizing.full else ""}.txt').write_text(
        f'cycles {len(rss)}\nframes_per_cycle {FRAMES_PER_CYCLE}\n'
        f'rss_after_first_cycle_bytes {rss[0]}\nrss_after_last_cycle_bytes {rss[-1]}\n'
        f'rss_growth_bytes {growth}\nrss_max_bytes {max(rss)}\nelapsed_s {elapsed:.1f}\n'
        f'load_average {os.getloadavg()}\n')
    # One-sided: the allocator may return earlier tests' garbage to the OS during the run.
    assert growth <= 5 * MIB, f'RSS grew by {growth / MIB:.2f} MiB over {len(rss)} cycles'
