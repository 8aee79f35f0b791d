"""The lifecycle node: the thin ROS boundary around InferenceCore and the model workers.

It reads parameters, creates and destroys ROS entities and calls the core; engine loading,
gating, budgets, thermal reads, image decoding and preprocessing live in ROS-free modules.
No exception escapes a transition callback: a refused configuration returns FAILURE, a fault
returns ERROR, and both log the cause. The node never calls rclpy.init, so it composes with
other nodes in one executor.
"""

import faulthandler
import signal
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import (
    LifecycleNode,
    LifecycleNodeMixin,
    LifecycleState,
    TransitionCallbackReturn,
)
from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.signals import uninstall_signal_handlers
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from gps_denied_inference.errors import (
    ConfigError,
    EngineGateError,
    EngineLoadError,
    OutOfMemoryError,
)
from gps_denied_inference.imaging import geometry
from gps_denied_inference.imaging.geometry import Calibration
from gps_denied_inference.node import diagnostics
from gps_denied_inference.node.bond import LifecycleBond
from gps_denied_inference.node.camera_info_pairing import CameraInfoPairing
from gps_denied_inference.node.command_line import refuse_or_help
from gps_denied_inference.node.inference_core import InferenceCore, LoadedModel, RuntimeFactory
from gps_denied_inference.node.lifecycle_guard import transition_refusal
from gps_denied_inference.node.model_stats import ModelStats, StatsSnapshot
from gps_denied_inference.node.model_worker import Frame, ModelWorker, Outputs
from gps_denied_inference.node.output_publisher import OutputPublisher
from gps_denied_inference.node.parameters import (
    camera_info_topic_beside,
    GLOBAL_PARAMETERS,
    node_config_from_values,
    NodeConfig,
)
from gps_denied_inference.resources.measured_usage import measure_usage
from gps_denied_inference.resources.shm_segments import reclaim_dead_segments
from gps_denied_inference.resources.thermal import (
    ThermalLevel,
    ThermalState,
    ThermalStatePublisher,
    ThermalZoneReader,
)
from gps_denied_inference.runtimes.protocol import build_inference_runtime

try:
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

INPUT_DEPTH = 5
# After the shutdown transition, how long the process keeps serving before it exits (_linger).
SHUTDOWN_LINGER_S = 0.5
# How often main() wakes the executor to see whether a signal has shut the context down.
SIGNAL_POLL_S = 0.1
REFUSALS = (ConfigError, EngineGateError, EngineLoadError, OutOfMemoryError)
_LEVELS = {'OK': DiagnosticStatus.OK, 'WARN': DiagnosticStatus.WARN,
           'ERROR': DiagnosticStatus.ERROR, 'STALE': DiagnosticStatus.STALE}


class IncompatibleQos(NamedTuple):
    """The latest incompatible-QoS event of one model: what, when, frames received by then."""

    message: str
    at: float
    received: int


def input_qos(kind: str) -> QoSProfile:
    """Camera-topic QoS: sensor data (best effort) or reliable, keep last INPUT_DEPTH.

    The node's own one-slot mailbox bounds latency and counts every overwritten frame; a
    reader history of 1 would let DDS discard frames the node never sees (and cannot count)
    whenever the executor is a moment late, so the reader keeps the few frames of
    `qos_profile_sensor_data` and the mailbox does the dropping.
    """
    reliability = (ReliabilityPolicy.BEST_EFFORT if kind == 'sensor_data'
                   else ReliabilityPolicy.RELIABLE)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=INPUT_DEPTH,
                      reliability=reliability)


def calibration_from_msg(msg: CameraInfo) -> Calibration:
    """A CameraInfo message's fields but its header, as plain data."""
    roi = msg.roi
    return Calibration(
        width=int(msg.width), height=int(msg.height), distortion_model=str(msg.distortion_model),
        d=tuple(float(v) for v in msg.d), k=tuple(float(v) for v in msg.k),
        r=tuple(float(v) for v in msg.r), p=tuple(float(v) for v in msg.p),
        binning_x=int(msg.binning_x), binning_y=int(msg.binning_y),
        roi=geometry.RegionOfInterest(int(roi.x_offset), int(roi.y_offset), int(roi.height),
                                      int(roi.width), bool(roi.do_rectify)))


def camera_info_msg(header: Any, calibration: Calibration) -> CameraInfo:
    """A CameraInfo message; every field of the exact type Humble's setters check."""
    roi = calibration.roi
    return CameraInfo(
        header=header, width=int(calibration.width), height=int(calibration.height),
        distortion_model=calibration.distortion_model,
        d=[float(v) for v in calibration.d], k=[float(v) for v in calibration.k],
        r=[float(v) for v in calibration.r], p=[float(v) for v in calibration.p],
        binning_x=int(calibration.binning_x), binning_y=int(calibration.binning_y),
        roi=RegionOfInterest(x_offset=int(roi.x_offset), y_offset=int(roi.y_offset),
                             height=int(roi.height), width=int(roi.width),
                             do_rectify=bool(roi.do_rectify)))


def stamp_ns(header: Any) -> int:
    """A header's stamp in integer nanoseconds, the key frames and CameraInfos pair by."""
    return int(header.stamp.sec) * 10 ** 9 + int(header.stamp.nanosec)


def output_qos(depth: int) -> QoSProfile:
    """Reliable keep-last outputs: serves both reliable and best-effort subscribers."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE)


class InferenceNode(LifecycleNode):
    """Gated engines on configure, budget on activate, inference on image topics."""

    def __init__(self, node_name: str = 'gps_denied_inference', *,
                 runtime_factory: RuntimeFactory = build_inference_runtime,
                 **kwargs: Any) -> None:
        """Create the node; `runtime_factory` lets tests inject faults into a real runtime.

        Every override is declared, global `--ros-args -p` ones too (rclpy's default
        `use_global_arguments=True`: they reach every node of the process), and configure
        refuses names the node does not know (parameters.py; docs/humble.md, Composition).
        """
        kwargs.setdefault('automatically_declare_parameters_from_overrides', True)
        super().__init__(node_name, **kwargs)
        for name, (default, description) in GLOBAL_PARAMETERS.items():
            if not self.has_parameter(name):
                self.declare_parameter(name, default, ParameterDescriptor(
                    description=description, dynamic_typing=True))
        self._runtime_factory = runtime_factory
        self._config: Optional[NodeConfig] = None
        self._core: Optional[InferenceCore] = None
        self._thermal: Optional[ThermalStatePublisher] = None
        self._workers: Dict[str, ModelWorker] = {}
        self._stats: Dict[str, ModelStats] = {}
        self._previous_stats: Dict[str, StatsSnapshot] = {}
        self._output_publishers: Dict[str, Dict[str, Any]] = {}
        self._image_subscriptions: Dict[str, Any] = {}
        self._camera_info_publishers: Dict[str, Any] = {}
        self._camera_info_subscriptions: Dict[str, Any] = {}
        self._pairings: Dict[str, CameraInfoPairing] = {}
        self._activated_at = 0.0
        self._incompatible_qos: Dict[str, IncompatibleQos] = {}
        self._state_label = 'unconfigured'
        self._bond = LifecycleBond(self)
        self.finalized = Future()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(
            self._declared('diagnostics_period_s', 1.0), self._publish_diagnostics)
        if self._declared('autostart', False) is True:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # Lifecycle transitions -------------------------------------------------------------

    def _guarded_change_state(self, transition_id: int) -> TransitionCallbackReturn:
        """Refuse (FAILURE, logged) a transition the current state does not allow.

        Humble's rclpy lets the RCLError of such a request escape the change_state service
        and kill the process (lifecycle_guard.py); newer releases answer it themselves.
        """
        machine = self._state_machine
        refusal = transition_refusal(transition_id, machine.current_state,
                                     machine.available_transitions, machine.transition_graph)
        if refusal is None:
            try:
                return LifecycleNodeMixin._LifecycleNodeMixin__change_state(self, transition_id)
            except _rclpy.RCLError as err:
                refusal = f'transition {transition_id} rejected by rcl_lifecycle: {err}'
        self.get_logger().error(f'lifecycle request refused: {refusal}')
        return TransitionCallbackReturn.FAILURE

    # The change_state service and every trigger_*() call the mixin's private __change_state.
    _LifecycleNodeMixin__change_state = _guarded_change_state

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read parameters, gate and load every model, create the output publishers."""
        return self._transition('configure', self._configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enforce the budgets, allocate and warm up, then subscribe and start workers."""
        result = self._transition('activate', self._activate)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._state_label = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop processing within one frame; engines and reservations stay."""
        result = self._transition('deactivate', self._stop_processing)
        if result == TransitionCallbackReturn.SUCCESS:
            self._state_label = 'inactive'
            return super().on_deactivate(state)
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release every engine; the memory ledger returns to zero."""
        return self._transition('cleanup', self._teardown)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything (idempotent) before the node goes away."""
        result = self._transition('shutdown', self._teardown)
        self._state_label = 'finalized'
        self.finalized.set_result(True)
        return result

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything so the node returns to unconfigured, clean."""
        return self._transition('error processing', self._teardown)

    def _transition(self, name: str, step: Callable[[], None]) -> TransitionCallbackReturn:
        """Run one transition step; map refusals to FAILURE and faults to ERROR, logged."""
        try:
            step()
            return TransitionCallbackReturn.SUCCESS
        except REFUSALS as err:
            self.get_logger().error(f'{name} refused: {err}')
            self._rollback(name)
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # noqa: B902 - nothing may escape a transition callback
            if not self.context.ok():  # a signal shut the context down under this transition
                self._console_logger().warning(
                    f'{name} cut short by shutdown: {type(err).__name__}: {err}')
            else:
                self.get_logger().error(
                    f'{name} failed with a fault: {type(err).__name__}: {err}\n'
                    f'{traceback.format_exc()}')
            self._rollback(name)
            return TransitionCallbackReturn.ERROR

    def _rollback(self, name: str) -> None:
        try:
            if name == 'configure':
                self._teardown()
            elif name == 'activate':
                self._stop_processing()
        except Exception as err:  # noqa: B902 - report, the transition already failed
            self.get_logger().error(f'rollback after failed {name} also failed: {err}')

    def _configure(self) -> None:
        self._teardown()
        config = node_config_from_values(
            {name: param.value for name, param in self.get_parameters_by_prefix('').items()})
        self._config = config
        self._thermal = ThermalStatePublisher(ThermalZoneReader(config.thermal),
                                              config.thermal.poll_period_s)
        self._thermal.start()
        self._core = InferenceCore(config, thermal=self._thermal,
                                   runtime_factory=self._runtime_factory)
        loaded = self._core.configure()
        for model in loaded:
            self._stats[model.config.name] = ModelStats()
            self._output_publishers[model.config.name] = self._create_output_publishers(
                model, config)
            self._create_camera_info_pairing(model, config)
        self._reset_diagnostics_timer(config.diagnostics_period_s)
        self._state_label = 'inactive'
        self.get_logger().info(
            'configured ' + ', '.join(f'{m.config.name} ({m.runtime.current_runtime_label()}, '
                                      f'{m.handle.manifest.artifact_sha256[:12]})'
                                      for m in loaded))

    def _activate(self) -> None:
        assert self._core is not None and self._config is not None
        self._core.activate()
        qos = input_qos(self._config.input_qos)
        for model in self._core.models:
            name = model.config.name
            pairing = self._pairings[name]
            worker = ModelWorker(model, self._stats[name],
                                 publish=self._publisher_for(name),
                                 warn=self._throttled_warning,
                                 is_throttled=self._is_throttled,
                                 publish_geometry=lambda header, plan, p=pairing: p.on_frame(
                                     header, stamp_ns(header), plan))
            self._workers[name] = worker
            callbacks = SubscriptionEventCallbacks(incompatible_qos=lambda event, n=name: (
                self._on_incompatible_qos(n, 'input subscription', event)))
            self._image_subscriptions[name] = self.create_subscription(
                Image, model.config.input_topic,
                lambda msg, w=worker: self._on_image(w, msg), qos,
                event_callbacks=callbacks)
            self._camera_info_subscriptions[name] = self.create_subscription(
                CameraInfo, pairing.topic,
                lambda msg, n=name, p=pairing: self._on_camera_info(n, p, msg),
                input_qos('sensor_data'))
            worker.start()
        self._activated_at = time.monotonic()
        self._bond.start()

    def _stop_processing(self) -> None:
        self._bond.stop()
        for subscriptions in (self._image_subscriptions, self._camera_info_subscriptions):
            for name, subscription in list(subscriptions.items()):
                self.destroy_subscription(subscription)
                del subscriptions[name]
        stuck = [name for name, worker in self._workers.items() if not worker.stop()]
        self._workers.clear()
        if stuck:
            raise RuntimeError(f'worker(s) did not stop in time: {", ".join(stuck)}')

    def _teardown(self) -> None:
        self._stop_processing()
        for publishers in self._output_publishers.values():
            for publisher in publishers.values():
                self.destroy_lifecycle_publisher(publisher)
        self._output_publishers.clear()
        for publisher in self._camera_info_publishers.values():
            self.destroy_lifecycle_publisher(publisher)
        self._camera_info_publishers.clear()
        self._pairings.clear()
        self._stats.clear()
        self._previous_stats.clear()
        self._incompatible_qos.clear()
        core, self._core = self._core, None
        thermal, self._thermal = self._thermal, None
        self._state_label = 'unconfigured'
        try:
            if core is not None:
                names = ', '.join(m.config.name for m in core.models) or 'none loaded'
                core.cleanup()
                budget = core.budget
                self._console_logger().info(
                    f'released engines ({names}); memory ledger GPU '
                    f'{budget.gpu.resident_bytes} B, host {budget.host.resident_bytes} B')
        finally:
            if thermal is not None:
                thermal.stop()

    # Data path ---------------------------------------------------------------------------

    def _create_output_publishers(self, model: LoadedModel, config: NodeConfig) -> Dict[str, Any]:
        qos = output_qos(config.output_depth)
        name = model.config.name
        callbacks = PublisherEventCallbacks(incompatible_qos=lambda event: (
            self._on_incompatible_qos(name, 'output publisher', event)))
        publishers = {output: self.create_lifecycle_publisher(
            Image, f'~/{name}/{output}', qos, event_callbacks=callbacks)
            for output in model.outputs}
        publishers['__nonfinite__'] = self.create_lifecycle_publisher(
            Header, f'~/{name}/nonfinite_frames', qos, event_callbacks=callbacks)
        return publishers

    def _create_camera_info_pairing(self, model: LoadedModel, config: NodeConfig) -> None:
        """~/M/camera_info and the pairing that feeds it, from the camera's CameraInfo topic.

        That topic is M.camera_info_topic, or `camera_info` beside the resolved input topic
        (image_transport's pairing), resolved here so diagnostics show the name subscribed to.
        """
        name = model.config.name
        topic = self.resolve_topic_name(
            model.config.camera_info_topic
            or camera_info_topic_beside(self.resolve_topic_name(model.config.input_topic)))
        publisher = self.create_lifecycle_publisher(
            CameraInfo, f'~/{name}/camera_info', output_qos(config.output_depth))
        self._camera_info_publishers[name] = publisher
        self._pairings[name] = CameraInfoPairing(
            lambda header, calibration: publisher.publish(camera_info_msg(header, calibration)),
            topic, model.contract.resize, model.contract.width, model.contract.height)

    def _on_camera_info(self, model: str, pairing: CameraInfoPairing, msg: CameraInfo) -> None:
        try:
            pairing.on_camera_info(stamp_ns(msg.header), calibration_from_msg(msg))
        except Exception as err:  # noqa: B902 - a subscription callback must not kill the executor
            self._throttled_warning(f'model {model}: CameraInfo not used: '
                                    f'{type(err).__name__}: {err}')

    def _on_image(self, worker: ModelWorker, msg: Image) -> None:
        worker.submit(Frame(msg.header, msg.encoding, msg.height, msg.width, msg.step,
                            msg.is_bigendian, msg.data, time.monotonic()))

    def _publisher_for(self, model: str) -> Callable[[Any, Outputs, bool], None]:
        publishers = dict(self._output_publishers[model])
        return OutputPublisher(publishers, publishers.pop('__nonfinite__'), Image)

    def _throttled_warning(self, message: str) -> None:
        # Workers may warn of the frame in flight after a signal has shut the context down.
        self._console_logger().warning(message, throttle_duration_sec=5.0)

    def _is_throttled(self) -> bool:
        config, thermal = self._config, self._thermal
        return bool(config and config.thermal.throttle and thermal is not None
                    and thermal.latest().level == ThermalLevel.CRITICAL)

    def _on_incompatible_qos(self, model: str, side: str, event: Any) -> None:
        policy = getattr(event, 'last_policy_kind', '?')
        policy_name = getattr(policy, 'name', str(policy))
        stats = self._stats.get(model)
        message = (f'{side}: {event.total_count} incompatible endpoint(s), last offending '
                   f'policy {policy_name}')
        self._incompatible_qos[model] = IncompatibleQos(
            message, time.monotonic(), stats.snapshot().received if stats else 0)
        self.get_logger().error(f'model {model}: incompatible QoS with a peer: {message}')

    def _incompatible_qos_report(self, model: str, received: int, hold_s: float) -> str:
        """The model's incompatible-QoS message until frames flow again ('' once they do).

        An event is reported for at least `hold_s` (so a dashboard sees it even while frames
        flow) and clears once frames have arrived after it.
        """
        latest = self._incompatible_qos.get(model)
        if latest is None or (received > latest.received
                              and time.monotonic() - latest.at >= hold_s):
            return ''
        return latest.message

    # Diagnostics ---------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        try:
            reports = self._diagnostic_reports()
        except Exception as err:  # noqa: B902 - a timer callback must never kill the executor
            self.get_logger().error(f'diagnostics failed: {type(err).__name__}: {err}')
            return
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        hardware_id = self._hardware_id()
        array.status = [DiagnosticStatus(level=_LEVELS[r.level], name=r.name, message=r.message,
                                         hardware_id=hardware_id,
                                         values=[KeyValue(key=k, value=v) for k, v in r.values])
                        for r in reports]
        self._diagnostics_pub.publish(array)

    def _diagnostic_reports(self) -> List[diagnostics.StatusReport]:
        node = self.get_name()
        reports = [diagnostics.lifecycle_status(node, self._state_label)]
        core, config = self._core, self._config
        throttling = self._is_throttled()
        thermal = (self._thermal.latest() if self._thermal is not None
                   else ThermalState.unavailable('node not configured'))
        reports.append(diagnostics.thermal_status(node, thermal, throttling))
        if core is None or config is None:
            return reports
        active = self._state_label == 'active'
        for model in core.models:
            name = model.config.name
            stats = self._stats[name].snapshot()
            pairing = self._pairings.get(name)
            starvation = None
            if active:
                age = stats.last_frame_age_s
                since_activation = time.monotonic() - self._activated_at
                starvation = diagnostics.StarvationState(
                    matched_publishers=self.count_publishers(model.config.input_topic),
                    seconds_without_frames=min(age, since_activation) if age is not None
                    else since_activation,
                    timeout_s=config.starvation_timeout_s,
                    incompatible_qos=self._incompatible_qos_report(
                        name, stats.received, config.starvation_timeout_s))
            reports.append(diagnostics.model_status(
                node, name, active, model.runtime.current_runtime_label(),
                model.handle.manifest.artifact_sha256, stats, self._previous_stats.get(name),
                config.persistent_fault_frames, throttling, starvation,
                pairing.report() if pairing is not None else None,
                model.config.latency_limit_ms))
            self._previous_stats[name] = stats
        budget = core.budget
        reports.append(diagnostics.memory_status(
            node, budget.gpu.resident_bytes, budget.gpu.budget_bytes,
            budget.host.resident_bytes, budget.host.budget_bytes, measure_usage()))
        return reports

    def _hardware_id(self) -> str:
        if self._core is None or not self._core.models:
            return 'unknown'
        return self._core.models[0].manifest.device.name

    def _console_logger(self) -> Any:
        """The node's logger, or once the context is shut down (a signal) one without rosout."""
        if self.context.ok():
            return self.get_logger()
        return rclpy.logging.get_logger(f'{self.get_logger().name}.exit')

    def release_all(self) -> None:
        """Release every engine and thread without a transition (process exit, signals)."""
        self._transition('release on exit', self._teardown)

    def destroy_node(self) -> Any:
        """Release everything (as release_all) before the ROS entities go.

        A container or integrator that destroys a composed node must not leave its workers,
        thermal poller and bond running or its engines loaded.
        """
        self.release_all()
        return super().destroy_node()

    # Helpers -------------------------------------------------------------------------------

    def _declared(self, name: str, fallback: Any) -> Any:
        value = self.get_parameter(name).value
        return value if isinstance(value, type(fallback)) and value else fallback

    def _reset_diagnostics_timer(self, period_s: float) -> None:
        self.destroy_timer(self._diagnostics_timer)
        self._diagnostics_timer = self.create_timer(period_s, self._publish_diagnostics)

    def _autostart(self) -> None:
        """Configure, then activate; a step already done by a lifecycle manager is refused."""
        self.destroy_timer(self._autostart_timer)
        for name, step in (('configure', self.trigger_configure),
                           ('activate', self.trigger_activate)):
            if step() != TransitionCallbackReturn.SUCCESS:
                state = self._state_machine.current_state[1]
                self.get_logger().error(f'autostart: {name} did not succeed; node is {state}')
                return


def _linger(executor: SingleThreadedExecutor, seconds: float) -> None:
    """Keep the participant alive a moment after the shutdown transition.

    The shutdown response has been written when the transition returns, but a reader in
    another process may not have taken it yet: with the shared-memory transport the sample
    lives in this process's segment, and a reliable resend needs this participant. A test
    that exited at once saw its shutdown call fail once in a full suite run.
    """
    deadline = time.monotonic() + seconds
    while rclpy.ok() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=max(0.0, deadline - time.monotonic()))


def _spin(executor: SingleThreadedExecutor, finalized: Future, context: Context) -> None:
    """Spin until the shutdown transition, then linger; a signal's shutdown ends it too.

    SIGINT / SIGTERM shut the context down from rclpy's signal thread. When that lands
    between the executor's check of the context and its building of a wait set, rclpy raises
    RCLError ('the given context is not valid': seen once in a full suite run, the node then
    exited 1 after releasing everything) instead of ExternalShutdownException. It is the same
    external shutdown and is reported as one; an RCLError while the context is valid is a
    fault and propagates.
    """
    try:
        executor.spin_until_future_complete(finalized)
        if not context.ok():
            raise ExternalShutdownException()
        _linger(executor, SHUTDOWN_LINGER_S)
    except _rclpy.RCLError as err:
        if context.ok():
            raise
        raise ExternalShutdownException() from err


def _route_signals_through_rclpy() -> List[int]:
    """Make SIGINT and SIGTERM mean "shut the context down", never a Python exception.

    Called before rclpy.init, whose handlers chain to these: rclpy's own signal thread then
    wakes the executor and shuts the context down, and the spin ends between callbacks. Python's
    default SIGINT handler would instead raise KeyboardInterrupt in the main thread while
    that thread was still being woken, so the teardown in main() ran concurrently with rclpy's
    signal thread walking its list of guard conditions (docs/shutdown.md). After
    uninstall_signal_handlers these handlers are back in place, so a repeated signal during
    the teardown is noted instead of killing the process before the engines are released.
    Returns the list the signals received are appended to.
    """
    received: List[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: received.append(number))
    return received


def main(args: Optional[List[str]] = None) -> int:
    """Run the node alone (`ros2 run gps_denied_inference inference_node`).

    Exits 0 after the shutdown transition, or on SIGINT / SIGTERM once every engine and
    thread is released and the executor has stopped (before rclpy itself). A single-threaded
    executor: every callback is short (inference runs on the model workers), and rclpy's
    multi-threaded executor costs enough per callback to lose camera frames on a busy CPU.

    The teardown order is what makes the exit safe (docs/shutdown.md): first rclpy's signal
    thread is stopped and joined, so from then on only this thread touches the context, the
    guard conditions and the node; then the executor stops; then the model workers and the
    thermal thread are joined, so no thread publishes or infers; then the node (and with it
    the DDS participant and its shared-memory segment) is destroyed; the context last.
    faulthandler stays on for the life of the process: a native crash prints every thread's
    Python stack to stderr before the previous handler (the default: a core dump) runs.
    Before its own participant exists, it reclaims the Fast DDS shared-memory segments that
    dead processes (a predecessor killed by SIGKILL, say) left under /dev/shm.
    """
    refused = refuse_or_help(args)
    if refused is not None:
        return refused
    faulthandler.enable(file=sys.stderr, all_threads=True)
    reclaimed = reclaim_dead_segments()
    received = _route_signals_through_rclpy()
    rclpy.init(args=args)
    try:
        node = InferenceNode()
    except _rclpy.RCLError:
        if rclpy.ok():
            raise
        return 0  # a signal shut the context down while the node was being created
    if reclaimed.segments:
        node.get_logger().info(reclaimed.describe())
    # rclpy's signal thread wakes the executor before it shuts the context down, so the
    # executor may look at the context in between and wait again: this wakes it, whatever
    # the other timers' periods, so a signal ends the spin within SIGNAL_POLL_S.
    node.create_timer(SIGNAL_POLL_S, lambda: None)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if not received:  # else a signal came before rclpy's handlers were installed
            _spin(executor, node.finalized, node.context)
    except ExternalShutdownException:
        pass
    finally:
        uninstall_signal_handlers()
        if received:
            node._console_logger().info(
                'shutting down on ' + ', '.join(signal.Signals(n).name for n in received))
        executor.shutdown()
        node.release_all()
        node.destroy_node()
        node.context.try_shutdown()
    return 0
