"""ROS 2 lifecycle node `segtrack`: camera images in, target mask / boxes / state out.

The node is lifecycle, parameters, wiring and diagnostics. Tracking runs on a TrackingWorker
(segtrack_ros.worker) thread fed by the image callback, which publishes through segtrack_ros.outputs;
service handlers await the worker's futures as coroutines, so the one executor thread keeps taking images
and answering other requests meanwhile. All tracking logic lives in segtrack_core, every message
conversion in segtrack_ros.conversions.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from concurrent.futures import Future
from typing import Any, Callable, Optional

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import SetBool, Trigger

from segtrack.srv import SetTarget
from segtrack_core import SegtrackError, create_tracker
from segtrack_core.errors import ConfigError

from . import conversions
from .cdr import parse_image
from .frame_buffer import FrameRing
from .frames import CompressedFrame, InputFrame, RawFrame
from .memory import limit_heap_arenas
from .outputs import Outputs
from .parameters import (LIVE_PARAMETERS, NODE_NAME, NODE_PARAMETERS, STARTUP_PARAMETERS, TRACKER_PREFIX,
                         parameter_error, tracker_config, tracker_parameters, unknown_parameter_warnings, when,
                         with_tracker_values)
from .qos import image_qos, reliable_qos
from .worker import LOG_THROTTLE_S, TrackingWorker

WORKER_JOIN_TIMEOUT_S = 10.0
DIAGNOSTICS_PERIOD_S = 1.0
MIB = 1 << 20
STOP_POLL_S = 0.1  # how often the executor loop looks for a SIGINT/SIGTERM


class SegtrackNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._override_errors: list[str] = []  # params-file / -p values of the wrong type (configure fails)
        for name, (default, description) in NODE_PARAMETERS.items():
            self._declare(name, default, ParameterDescriptor(
                description=f"{description} [{when(name)}]", read_only=name in STARTUP_PARAMETERS))
        self._tracker_parameter_error = self._declare_tracker_parameters()
        self._warn_unknown_overrides()
        # ros2 param set: every change is validated, then applied at once or refused with the reason.
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        # A service coroutine awaiting the worker keeps its callback group busy: each kind of callback
        # gets its own group so images, the wake-up below and other requests still get through.
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        # Wakes the executor when the worker finished a service request (see _call_worker).
        self._wake = self.create_guard_condition(lambda: None, callback_group=ReentrantCallbackGroup())
        self._params: dict[str, Any] = {}
        self._tracker = None
        self._device = ""
        self._outputs: Optional[Outputs] = None
        self._ring: Optional[FrameRing[InputFrame]] = None
        self._worker: Optional[TrackingWorker] = None  # exists while configured; its thread while active
        self._subscriptions_active: list = []
        self._tracker_services: list = []
        self._diagnostics_timer = None
        self._image_topic = ""

    # ---- lifecycle -------------------------------------------------------------------------------------

    def _declare_tracker_parameters(self) -> Optional[str]:
        """Declare tracker.* from the backend's config and parameter set; the error if they cannot be read
        (configure then fails with it)."""
        backend, parameter_set = (self.get_parameter(n).value for n in ("backend", "parameter_set"))
        try:
            settings = tracker_parameters(backend, parameter_set)
        except SegtrackError as exc:
            return str(exc.args[0] if exc.args else exc)
        for info in settings:
            self._declare(info.name, info.value, ParameterDescriptor(description=f"{info.help} [{when(info.name)}]"))
        return None

    def _declare(self, name: str, default: Any, descriptor: ParameterDescriptor) -> None:
        """Declare a parameter. A given value of the wrong type would raise here and kill the node: an
        integer for a float parameter is taken as that float (``1`` for ``1.0``); any other mismatch keeps
        the default and is reported, and configure refuses to start until it is fixed."""
        given = self._parameter_overrides.get(name)
        if given is not None and isinstance(default, float) and given.type_ is Parameter.Type.INTEGER:
            self._parameter_overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(given.value))
        try:
            self.declare_parameter(name, default, descriptor)
        except InvalidParameterTypeException:
            del self._parameter_overrides[name]
            self.declare_parameter(name, default, descriptor)
            error = f"parameter {name} must be a {type(default).__name__}, got {given.value!r}"
            self._override_errors.append(error)
            self.get_logger().error(error)

    def _warn_unknown_overrides(self) -> None:
        """ROS keeps params-file and -p values for undeclared names without a word: name each one."""
        overrides = self._parameter_overrides.keys()  # rclpy's overrides for this node, by name
        if self._tracker_parameter_error:  # tracker.* were not declared; configure reports why
            overrides = [name for name in overrides if not name.startswith(TRACKER_PREFIX)]
        declared = self.list_parameters([], 0).names
        for warning in unknown_parameter_warnings(overrides, declared):
            self.get_logger().warning(warning)

    def _tracker_values(self) -> dict[str, Any]:
        return {TRACKER_PREFIX + name: p.value for name, p in self.get_parameters_by_prefix("tracker").items()}

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        params = {name: self.get_parameter(name).value for name in NODE_PARAMETERS}
        try:
            if self._tracker_parameter_error or self._override_errors:
                raise ConfigError("; ".join(filter(None, [self._tracker_parameter_error, *self._override_errors])))
            for name, value in params.items():  # values given at start never went through _check_parameters
                error = parameter_error(name, value)
                if error:
                    raise ConfigError(error)
            self._image_qos = image_qos(params["qos.reliability"], params["qos.depth"])
            self._ring = FrameRing(params["frame_buffer_size"], params["frame_buffer_max_mb"] * MIB)
            config = tracker_config(params["backend"], params["parameter_set"], self._tracker_values())
            self._tracker = create_tracker(params["backend"], config)
        except (SegtrackError, ValueError) as exc:
            reason = exc.args[0] if exc.args else exc  # KeyError-based errors would print quoted
            self.get_logger().error(f"configure failed: {reason}; fix the parameters, then configure again "
                                    "(ros2 lifecycle set <node> configure)")
            return TransitionCallbackReturn.FAILURE
        self._params = params
        self._device = self._tracker.device
        self._outputs = Outputs(self, params["qos.output_depth"], params["publish_debug_image"])
        self._worker = TrackingWorker(self._tracker, self._ring, self._outputs.publish,
                                      lambda: self.get_clock().now().nanoseconds, self.get_logger(),
                                      enabled=params["enabled"])
        requests_qos = reliable_qos(params["service_queue_depth"])
        self._tracker_services = [
            self.create_service(kind, name, callback, qos_profile=requests_qos, callback_group=self._service_group)
            for kind, name, callback in ((SetTarget, "~/set_target", self._on_set_target),
                                         (Trigger, "~/reset", self._on_reset),
                                         (SetBool, "~/enable", self._on_enable))
        ]
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info(f"configured: backend {params['backend']} on {self._device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        compressed = self._params["use_compressed"]
        self._image_topic = self.resolve_topic_name("image") + ("/compressed" if compressed else "")
        self._worker.start(self._image_topic)
        self._outputs.set_open(True)
        if compressed:
            sub = self.create_subscription(CompressedImage, self._image_topic, self._on_compressed,
                                           self._image_qos, callback_group=self._image_group)
        else:
            # Raw: the pixels stay in the received buffer (see segtrack_ros.cdr).
            sub = self.create_subscription(Image, "image", self._on_image, self._image_qos,
                                           callback_group=self._image_group, raw=True)
        self._subscriptions_active = [sub]
        self.get_logger().info(f"active: tracking images from {self._image_topic}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._ring.clear()  # frames from before a deactivation must not seed a later set_target
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        for sub in self._subscriptions_active:
            self.destroy_subscription(sub)
        self._subscriptions_active = []
        if self._outputs is not None:
            self._outputs.set_open(False)
        if self._worker is not None and not self._worker.stop(WORKER_JOIN_TIMEOUT_S):
            # A frame still in the tracker; the thread ends after it.
            self.get_logger().warning(f"tracker thread still busy after {WORKER_JOIN_TIMEOUT_S:.0f} s")

    def _release(self) -> None:
        for service in self._tracker_services:
            self.destroy_service(service)
        self._tracker_services = []
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._outputs is not None:
            self._outputs.destroy()
        self._tracker = self._worker = self._outputs = None

    def shutdown(self) -> None:
        """Stop the worker (whatever the lifecycle state) before the node is destroyed."""
        self._stop_worker()

    # ---- parameters (executor thread) -------------------------------------------------------------------

    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Validate a ros2 param set before it happens: refuse bad values, and configure-time parameters
        while configured (they would silently wait for the next configure)."""
        values = {p.name: p.value for p in parameters}
        configured = self._tracker is not None
        try:
            for name, value in values.items():
                error = parameter_error(name, value)
                if error is None and configured and name not in LIVE_PARAMETERS:
                    error = (f"{name} needs reconfigure: it is read at configure; deactivate and clean up the "
                             f"node (ros2 lifecycle set {self.get_fully_qualified_name()} cleanup), set it, "
                             "then configure")
                if error:
                    raise ConfigError(error)
            tracker_values = {n: v for n, v in values.items() if n.startswith(TRACKER_PREFIX)}
            if tracker_values and not self._tracker_parameter_error:
                base = (self._tracker.config if configured else
                        tracker_config(self.get_parameter("backend").value, self.get_parameter("parameter_set").value,
                                       self._tracker_values()))
                with_tracker_values(base, tracker_values)
        except SegtrackError as exc:
            self.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        values = {p.name: p.value for p in parameters}
        if self._tracker is None or not values:
            return  # not configured: configure reads them
        self._params.update({n: v for n, v in values.items() if n in NODE_PARAMETERS})
        tracker_values = {n: v for n, v in values.items() if n.startswith(TRACKER_PREFIX)}
        if tracker_values:  # live ones only: the others were refused while configured
            self._tracker.config = with_tracker_values(self._tracker.config, tracker_values)
        self._outputs.debug_enabled = self._params["publish_debug_image"]
        self._worker.enabled = self._params["enabled"]
        self.get_logger().info("applied " + ", ".join(f"{k}={v!r}" for k, v in values.items()))

    # ---- executor side: callbacks ----------------------------------------------------------------------

    def _on_image(self, serialized: bytes) -> None:
        received_ns = time.time_ns()
        try:
            image = parse_image(serialized)
        except SegtrackError as exc:
            if self._worker is not None:
                self._worker.count_bad_frame()
            self.get_logger().warning(f"dropping an unreadable image: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        self._enqueue(RawFrame(image, received_ns))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._enqueue(CompressedFrame(msg, time.time_ns()))

    def _enqueue(self, frame: InputFrame) -> None:
        worker = self._worker
        if worker is None or not worker.put_frame(frame):
            return
        if frame.nbytes > self._params["frame_buffer_max_mb"] * MIB:
            self.get_logger().warning(
                f"a {frame.nbytes / MIB:.1f} MiB image exceeds frame_buffer_max_mb "
                f"({self._params['frame_buffer_max_mb']} MiB): only the newest frame is kept for set_target",
                throttle_duration_sec=LOG_THROTTLE_S)

    async def _call_worker(self, submit: Callable[[TrackingWorker], Future]) -> tuple[bool, str, Any]:
        """Queue a command on the worker (``submit`` does) and await it: (success, message, its value).

        A coroutine: the executor thread keeps serving images and other services while it waits."""
        worker = self._worker
        if worker is None or not worker.active:
            return False, "node is not active; activate it (lifecycle) first", None
        try:
            job = submit(worker)
        except SegtrackError as exc:  # the request itself is bad: answered as a refused command
            job = Future()
            job.set_exception(exc)
        finished: RclpyFuture = RclpyFuture()

        def wake_executor(_: Any) -> None:  # runs on the worker thread
            finished.set_result(None)
            self._wake.trigger()

        job.add_done_callback(wake_executor)
        await finished
        try:
            return True, "", job.result()
        except SegtrackError as exc:
            self.get_logger().warning(f"request refused: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return False, str(exc), None
        except Exception as exc:  # noqa: BLE001 - report to the caller, keep the node alive
            self.get_logger().error(f"service request failed:\n{traceback.format_exc()}")
            return False, f"internal error: {type(exc).__name__}: {exc}", None

    async def _on_set_target(self, request: SetTarget.Request, response: SetTarget.Response) -> SetTarget.Response:
        stamp_ns = conversions.stamp_to_ns(request.stamp) if request.use_stamp else None
        response.success, response.message, target_id = await self._call_worker(
            lambda worker: worker.set_target(conversions.target_from_request(request), stamp_ns))
        if response.success:
            response.target_id = target_id
            response.message = f"tracking target {target_id}"
        return response

    async def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message, _ = await self._call_worker(lambda w: w.reset())
        if response.success:
            response.message = "tracker reset; set a new target to track"
        return response

    async def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message, _ = await self._call_worker(lambda w: w.set_enabled(request.data))
        if response.success:
            self.set_parameters([Parameter("enabled", Parameter.Type.BOOL, request.data)])  # keep it in step
            response.message = "tracking enabled" if request.data else "tracking disabled: no outputs until enabled"
        return response

    # ---- diagnostics (the timer exists while configured, as the worker does) ---------------------------

    def _publish_diagnostics(self) -> None:
        frames, nbytes = self._ring.usage()
        self._outputs.publish_diagnostics(self._device, self._worker.report(), {
            "backend": self._params["backend"], "device": self._device, "image_topic": self._image_topic,
            "frame_buffer_frames": frames, "frame_buffer_mb": f"{nbytes / MIB:.1f}"})


def main(args: Optional[list[str]] = None) -> int:
    """Run the node until SIGINT or SIGTERM (once or repeatedly): then the worker stops, outputs close and
    the context shuts down, in that order, and the process exits 0."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()  # a repeated signal changes nothing: the shutdown below is already bounded

    # Our handlers instead of rclpy's: rclpy's shut the context down at once, under a worker still
    # publishing, and a second Ctrl-C killed the process.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    limit_heap_arenas()  # before rclpy and the worker start their threads
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = SegtrackNode()
    # One thread: rclpy's MultiThreadedExecutor delays image callbacks by up to a second now and then
    # (measured with `make ros-bench`); tracking runs on the worker thread and service calls are
    # coroutines, so a single executor thread is never blocked.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value and not stop.is_set():
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS and not stop.is_set():
                node.trigger_activate()
        while not stop.is_set():
            executor.spin_once(timeout_sec=STOP_POLL_S)
    except ExternalShutdownException:
        pass
    finally:
        node.shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(uninstall_handlers=False)  # uninstalling would restore SIG_DFL for a second Ctrl-C
        # Python restores SIG_DFL for handled signals while the interpreter finalises: a late second
        # signal would then kill the process (exit -2 / -15). Everything is stopped; ignore them.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    main()
