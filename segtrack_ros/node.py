"""ROS 2 lifecycle node `segtrack`: camera images in, target mask / boxes / state out.

Latency first: the image callback only parks the newest frame in a one-slot mailbox (a frame replaced
before the worker took it is dropped and counted), and a dedicated worker thread runs the tracker. Service
requests that touch the tracker are queued to that same worker, so they never race it; the handlers await
the worker as coroutines, so the one executor thread keeps taking images and answering other requests
meanwhile. All tracking logic lives in segtrack_core.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import SetBool, Trigger
from vision_msgs.msg import Detection2DArray

from segtrack.msg import TrackedTarget
from segtrack.srv import SetTarget
from segtrack_core import SegtrackError, TrackResult, TrackState, create_tracker
from segtrack_core.errors import ConfigError, InvalidFrameError
from segtrack_core.image_conversion import compressed_to_bgr, image_msg_to_bgr
from segtrack_core.registry import get_backend, make_config
from segtrack_core.visualize import draw_overlay

from . import messages
from .cdr import parse_image
from .frame_buffer import FrameRing, Mailbox
from .parameters import (LIVE_PARAMETERS, NODE_NAME, PARAMETERS, STARTUP_PARAMETERS, THRESHOLDS, backend_overrides,
                         parameter_error)

WORKER_JOIN_TIMEOUT_S = 10.0
LOG_THROTTLE_S = 5.0
DIAGNOSTICS_PERIOD_S = 1.0
MIB = 1 << 20
STOP_POLL_S = 0.1  # how often the executor loop looks for a SIGINT/SIGTERM
# A frame older than the target's frame by more than this is a clock jump (clock reset, bag loop, a target
# set on a future-stamped frame), not a frame that was in flight when the target was set.
STAMP_JUMP_NS = 1_000_000_000
# Stamps further ahead of this node's clock than this are reported (unsynchronised camera clock).
FUTURE_STAMP_NS = 1_000_000_000


class InputFrame(NamedTuple):
    """A received image, not yet converted: a RawImage (zero-copy view of a serialized Image) or a
    sensor_msgs/CompressedImage."""

    image: Any
    compressed: bool
    stamp_ns: int
    received_ns: int  # system time when the callback got it

    def to_bgr(self) -> np.ndarray:
        return compressed_to_bgr(self.image.data) if self.compressed else image_msg_to_bgr(self.image)

    @property
    def nbytes(self) -> int:
        """Bytes of image data it holds."""
        return len(self.image.data)

    def header(self) -> Header:
        if self.compressed:
            return self.image.header
        raw = self.image
        return Header(stamp=Time(sec=raw.stamp_sec, nanosec=raw.stamp_nanosec), frame_id=raw.frame_id)


class TargetRequestError(SegtrackError):
    """A set_target request cannot be served (no frame yet, unknown stamp, node inactive)."""


@dataclasses.dataclass
class Stats:
    """Counters for /diagnostics; written by the worker, read by the diagnostics timer."""

    processed: int = 0
    bad_frames: int = 0
    future_stamped: int = 0  # frames stamped more than FUTURE_STAMP_NS ahead of the node's clock
    stamp_jumps: int = 0  # stamps that went back by more than STAMP_JUMP_NS; tracking went on
    out_of_order: int = 0  # frames just older than the target's frame, skipped
    state: str = "no target"
    # Recent per-frame times (ms): stamp -> publish, tracker, stamp -> image callback (transport),
    # callback -> worker start (mailbox wait), worker time outside the tracker (node processing).
    samples: dict = dataclasses.field(default_factory=lambda: {
        name: deque(maxlen=256) for name in ("latency", "tracker", "transport", "wait", "processing")})


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    """The image subscription's QoS (values checked with the other parameters)."""
    policies = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policies[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def resident_bytes() -> Optional[int]:
    """This process's resident memory (Linux /proc), or None where that is not available."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def service_qos_profile(depth: int) -> QoSProfile:
    """The services' default QoS with a request queue of ``depth`` (rclpy's default of 10 drops the 11th
    concurrent call); ``depth`` was checked with the other parameters."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


class SegtrackNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description) in PARAMETERS.items():
            when = ("applied at once" if name in LIVE_PARAMETERS else
                    "read at start" if name in STARTUP_PARAMETERS else "read at configure")
            self.declare_parameter(name, default, ParameterDescriptor(
                description=f"{description} [{when}]", read_only=name in STARTUP_PARAMETERS))
        # ros2 param set: every change is validated, then applied at once or refused with the reason.
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        # A service coroutine awaiting the worker keeps its callback group busy: each kind of callback
        # gets its own group so images, the wake-up below and other requests still get through.
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        # Wakes the executor when the worker finished a service request (see _run_on_worker).
        self._wake = self.create_guard_condition(lambda: None, callback_group=ReentrantCallbackGroup())
        self._params: dict[str, Any] = {}
        self._tracker = None
        self._device = ""
        self._target_pub = self._mask_pub = self._detections_pub = self._debug_pub = None
        self._diagnostics_pub = None
        self._mailbox: Optional[Mailbox[InputFrame]] = None
        self._ring: Optional[FrameRing[InputFrame]] = None
        self._worker: Optional[threading.Thread] = None
        self._subscriptions_active: list = []
        self._tracker_services: list = []
        self._diagnostics_timer = None
        self._image_topic = ""
        self._target_id = 0
        self._init_stamp_ns: Optional[int] = None
        self._enabled = True
        self._debug_enabled = True
        self._threshold_defaults: dict[str, float] = {}
        self._stats = Stats()
        self._stats_lock = threading.Lock()
        self._last_diagnostics = (time.monotonic(), 0, 0, 0)
        self._mask_writer = messages.MaskImageWriter()
        # The worker publishes only while this is set, checked under the lock: once the worker is stopped
        # (deactivate, shutdown) a frame it is still finishing can never publish on a dead context.
        self._outputs_lock = threading.Lock()
        self._outputs_open = False

    # ---- lifecycle -------------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        try:
            for name, value in params.items():  # values given at start never went through _check_parameters
                error = parameter_error(name, value)
                if error:
                    raise ConfigError(error)
            self._image_qos = qos_profile(params["qos.reliability"], params["qos.depth"])
            service_qos = service_qos_profile(params["service_queue_depth"])
            self._ring = FrameRing(params["frame_buffer_size"], params["frame_buffer_max_mb"] * MIB)
            backend = params["backend"]
            overrides = backend_overrides(backend, params, self.get_logger().warning)
            source = params["tracker_config"] or None
            self._tracker = create_tracker(backend, source, **overrides)
            # What a negative threshold set later means: the backend config's own value.
            fields = {f.name for f in dataclasses.fields(get_backend(backend).config_cls)}
            base_config = make_config(backend, source)
            self._threshold_defaults = {name: getattr(base_config, name) for name in THRESHOLDS if name in fields}
        except (SegtrackError, ValueError) as exc:
            reason = exc.args[0] if exc.args else exc  # KeyError-based errors would print quoted
            self.get_logger().error(f"configure failed: {reason}; fix the parameters, then configure again "
                                    "(ros2 lifecycle set <node> configure)")
            return TransitionCallbackReturn.FAILURE
        self._params = params
        self._device = str(getattr(self._tracker, "device", "cpu"))
        self._enabled = params["enabled"]
        self._debug_enabled = params["publish_debug_image"]
        self._target_id = 0
        self._init_stamp_ns = None
        self._stats = Stats()
        self._last_diagnostics = (time.monotonic(), 0, 0, 0)

        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=params["qos.depth"],
                             reliability=ReliabilityPolicy.RELIABLE)
        self._target_pub = self.create_lifecycle_publisher(TrackedTarget, "~/target", out_qos)
        self._mask_pub = self.create_lifecycle_publisher(Image, "~/mask", out_qos)
        self._detections_pub = self.create_lifecycle_publisher(Detection2DArray, "~/detections", out_qos)
        # Always created so that publish_debug_image can be switched live.
        self._debug_pub = self.create_lifecycle_publisher(Image, "~/debug_image", out_qos)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tracker_services = [
            self.create_service(kind, name, callback, qos_profile=service_qos, callback_group=self._service_group)
            for kind, name, callback in ((SetTarget, "~/set_target", self._on_set_target),
                                         (Trigger, "~/reset", self._on_reset),
                                         (SetBool, "~/enable", self._on_enable))
        ]
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info(f"configured: backend {params['backend']} on {self._device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._mailbox = Mailbox()
        self._worker = threading.Thread(target=self._work, args=(self._mailbox,), name="segtrack-worker",
                                        daemon=True)
        self._worker.start()
        with self._outputs_lock:
            self._outputs_open = True
        if self._params["use_compressed"]:
            self._image_topic = self.resolve_topic_name("image") + "/compressed"
            sub = self.create_subscription(CompressedImage, self._image_topic, self._on_compressed,
                                           self._image_qos, callback_group=self._image_group)
        else:
            self._image_topic = self.resolve_topic_name("image")
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
        if self._mailbox is not None:
            self._mailbox.close()
        with self._outputs_lock:
            self._outputs_open = False
        if self._worker is not None:
            self._worker.join(WORKER_JOIN_TIMEOUT_S)
            if self._worker.is_alive():  # a frame still in the tracker; the thread ends after it
                self.get_logger().warning(f"tracker thread still busy after {WORKER_JOIN_TIMEOUT_S:.0f} s")
        self._mailbox, self._worker = None, None

    def _release(self) -> None:
        for service in self._tracker_services:
            self.destroy_service(service)
        self._tracker_services = []
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for pub in (self._target_pub, self._mask_pub, self._detections_pub, self._debug_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self._target_pub = self._mask_pub = self._detections_pub = self._debug_pub = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None
        self._tracker = None

    def shutdown(self) -> None:
        """Stop the worker (whatever the lifecycle state) before the node is destroyed."""
        self._stop_worker()

    # ---- parameters (executor thread) -------------------------------------------------------------------

    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Validate a ros2 param set before it happens: refuse bad values, and configure-time parameters
        while configured (they would silently wait for the next configure)."""
        values = {p.name: p.value for p in parameters if p.name in PARAMETERS}
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
            if configured:
                self._thresholds_config(values)
        except SegtrackError as exc:
            self.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        values = {p.name: p.value for p in parameters if p.name in PARAMETERS}
        if self._tracker is None or not values:
            return  # not configured: configure reads them
        self._params.update(values)
        config = self._thresholds_config(values)
        if config is not None:
            self._tracker.config = config  # backends read their thresholds from .config on every frame
        self._debug_enabled = self._params["publish_debug_image"]
        self._enabled = self._params["enabled"]
        self.get_logger().info("applied " + ", ".join(f"{k}={v!r}" for k, v in values.items()))

    def _thresholds_config(self, values: dict[str, Any]) -> Optional[Any]:
        """The tracker's config with the thresholds among ``values`` (negative = the configured default),
        None if there are none; raises ConfigError if the backend lacks one or they do not fit together."""
        changes = {}
        for name in THRESHOLDS:
            if name not in values:
                continue
            if name in self._threshold_defaults:
                changes[name] = values[name] if values[name] >= 0 else self._threshold_defaults[name]
            elif values[name] >= 0:
                raise ConfigError(f"backend {self._params['backend']!r} has no {name} setting")
        if not changes:
            return None
        return make_config(self._params["backend"], self._tracker.config, **changes)

    # ---- executor side: callbacks ----------------------------------------------------------------------

    def _on_image(self, serialized: bytes) -> None:
        received_ns = time.time_ns()
        try:
            image = parse_image(serialized)
        except SegtrackError as exc:
            with self._stats_lock:
                self._stats.bad_frames += 1
            self.get_logger().warning(f"dropping an unreadable image: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        self._enqueue(InputFrame(image, False, image.stamp_ns, received_ns))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._enqueue(InputFrame(msg, True, messages.stamp_to_ns(msg.header.stamp), time.time_ns()))

    def _enqueue(self, frame: InputFrame) -> None:
        mailbox, ring = self._mailbox, self._ring
        if mailbox is None or ring is None:
            return
        ring.append(frame.stamp_ns, frame, frame.nbytes)
        mailbox.put_frame(frame)
        if frame.nbytes > self._params["frame_buffer_max_mb"] * MIB:
            self.get_logger().warning(
                f"a {frame.nbytes / MIB:.1f} MiB image exceeds frame_buffer_max_mb "
                f"({self._params['frame_buffer_max_mb']} MiB): only the newest frame is kept for set_target",
                throttle_duration_sec=LOG_THROTTLE_S)

    async def _run_on_worker(self, command: Callable[[], Any]) -> tuple[bool, str, Any]:
        """Run ``command`` on the worker: (success, message, its return value).

        A coroutine: the executor thread keeps serving images and other services while it waits."""
        mailbox = self._mailbox
        if mailbox is None:
            return False, "node is not active; activate it (lifecycle) first", None
        job = mailbox.submit(command)
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
        response.success, response.message, target_id = await self._run_on_worker(lambda: self._set_target(request))
        if response.success:
            response.target_id = target_id
            response.message = f"tracking target {target_id}"
        return response

    async def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message, _ = await self._run_on_worker(self._reset)
        if response.success:
            response.message = "tracker reset; set a new target to track"
        return response

    async def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message, _ = await self._run_on_worker(lambda: self._set_enabled(request.data))
        if response.success:
            self.set_parameters([Parameter("enabled", Parameter.Type.BOOL, request.data)])  # keep it in step
            response.message = "tracking enabled" if request.data else "tracking disabled: no outputs until enabled"
        return response

    # ---- worker thread ---------------------------------------------------------------------------------

    def _work(self, mailbox: Mailbox) -> None:
        while not mailbox.closed:
            command, frame = mailbox.take(timeout=0.5)
            if command is not None:
                function, future = command
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function())
                    except BaseException as exc:  # noqa: BLE001 - handed to the waiting service call
                        future.set_exception(exc)
            elif frame is not None:
                try:
                    self._process(frame)
                except Exception:  # noqa: BLE001 - one bad frame must not stop tracking
                    self.get_logger().error(f"unexpected error processing a frame:\n{traceback.format_exc()}",
                                            throttle_duration_sec=LOG_THROTTLE_S)

    def _set_target(self, request: SetTarget.Request) -> int:
        ring = self._ring
        if request.use_stamp:
            stamp_ns = messages.stamp_to_ns(request.stamp)
            frame = ring.find(stamp_ns)
            if frame is None:
                span = ring.stamp_range()
                held = f"buffered stamps span {span[0]}..{span[1]} ns" if span else "no frame buffered yet"
                raise TargetRequestError(f"no buffered frame has stamp {stamp_ns} ns ({held})")
            image = frame.to_bgr()
        else:
            stamp_ns, image = self._newest_decodable(ring)
        target = messages.target_from_request(request, image)
        self._tracker.initialize(image, target)
        self._target_id += 1
        self._init_stamp_ns = stamp_ns
        with self._stats_lock:
            self._stats.state = "initialized"
        return self._target_id

    def _newest_decodable(self, ring: FrameRing) -> tuple[int, np.ndarray]:
        """(stamp, BGR image) of the newest buffered frame that converts; a broken newest frame is skipped."""
        error = None
        for stamp_ns, frame in ring.newest_first():
            try:
                return stamp_ns, frame.to_bgr()
            except SegtrackError as exc:
                error = error or exc
        if error is not None:
            raise TargetRequestError(f"none of the buffered frames from {self._image_topic} is usable "
                                     f"(newest: {error}); set_target needs a frame to initialise on")
        raise TargetRequestError(f"no image received yet on {self._image_topic}; "
                                 "set_target needs a frame to initialise on")

    def _reset(self) -> None:
        self._tracker.reset()
        self._init_stamp_ns = None
        with self._stats_lock:
            self._stats.state = "no target"

    def _set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    def _process(self, frame: InputFrame) -> None:
        started_ns = time.time_ns()
        stamp_ns = frame.stamp_ns
        ahead_ns = stamp_ns - self.get_clock().now().nanoseconds
        if ahead_ns > FUTURE_STAMP_NS:
            with self._stats_lock:
                self._stats.future_stamped += 1
            self.get_logger().warning(f"image stamped {ahead_ns * 1e-9:.3f} s ahead of this node's clock "
                                      "(camera clock not synchronised?); tracking it anyway",
                                      throttle_duration_sec=LOG_THROTTLE_S)
        tracker = self._tracker
        if not self._enabled or tracker is None or not tracker.initialized:
            return
        init_stamp_ns = self._init_stamp_ns
        if init_stamp_ns is not None and stamp_ns < init_stamp_ns:
            if init_stamp_ns - stamp_ns <= STAMP_JUMP_NS:
                with self._stats_lock:
                    self._stats.out_of_order += 1
                return  # was in flight when the target was set on a newer frame
            with self._stats_lock:
                self._stats.stamp_jumps += 1
            self.get_logger().warning(
                f"image stamps jumped back {(init_stamp_ns - stamp_ns) * 1e-9:.3f} s before the frame the target "
                "was set on (clock reset, bag loop or a future-stamped frame); tracking goes on from this frame",
                throttle_duration_sec=LOG_THROTTLE_S)
            self._init_stamp_ns = None
        try:
            image = frame.to_bgr()
        except SegtrackError as exc:
            with self._stats_lock:
                self._stats.bad_frames += 1
            self.get_logger().warning(f"dropping a bad image: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        start = time.perf_counter()
        try:
            result = tracker.track(image)
        except InvalidFrameError as exc:
            # E.g. the camera changed resolution: report the target lost until a new target is set.
            self.get_logger().warning(f"target lost: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            result = TrackResult(np.zeros(image.shape[:2], bool), 0.0, None, None, TrackState.LOST)
        tracker_ms = (time.perf_counter() - start) * 1e3

        header = frame.header()
        target = messages.tracked_target(header, self._target_id, result, tracker_ms)
        mask = self._mask_writer.message(header, result.mask)
        detections = messages.detections(header, self._target_id, result)
        with self._outputs_lock:
            if not self._outputs_open:
                return
            target.latency_ms = latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6
            self._target_pub.publish(target)
            self._mask_pub.publish(mask)
            self._detections_pub.publish(detections)
        debug_pub = self._debug_pub
        if self._debug_enabled and debug_pub is not None and debug_pub.get_subscription_count() > 0:
            overlay = messages.bgr8_image(header, draw_overlay(image, result, label=f"target {self._target_id}"))
            with self._outputs_lock:
                if self._outputs_open:
                    debug_pub.publish(overlay)

        finished_ns = time.time_ns()
        with self._stats_lock:
            stats = self._stats
            stats.processed += 1
            stats.state = result.state.value
            for name, value in (("latency", latency_ms), ("tracker", tracker_ms),
                                ("transport", (frame.received_ns - stamp_ns) * 1e-6),
                                ("wait", (started_ns - frame.received_ns) * 1e-6),
                                ("processing", (finished_ns - started_ns) * 1e-6 - tracker_ms)):
                stats.samples[name].append(value)

    # ---- diagnostics -----------------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        mailbox = self._mailbox
        now = time.monotonic()
        with self._stats_lock:
            stats = self._stats
            processed, bad, state = stats.processed, stats.bad_frames, stats.state
            future, jumps, out_of_order = stats.future_stamped, stats.stamp_jumps, stats.out_of_order
            medians = {name: statistics.median(values) if values else None
                       for name, values in stats.samples.items()}
        buffered = self._ring.usage() if self._ring is not None else (0, 0)
        rss = resident_bytes()
        last_time, last_processed, last_future, last_jumps = self._last_diagnostics
        self._last_diagnostics = (now, processed, future, jumps)
        fps = (processed - last_processed) / max(now - last_time, 1e-6)
        if mailbox is None:
            state = "inactive"
        elif not self._enabled:
            state = "disabled"
        status = DiagnosticStatus(name=f"segtrack: {self.get_fully_qualified_name()}", hardware_id=self._device)
        stamp_trouble = [what for what, new in (("images stamped in the future", future > last_future),
                                                 ("image stamps jumped back", jumps > last_jumps)) if new]
        if mailbox is None or state == TrackState.LOST.value or stamp_trouble:
            status.level, status.message = DiagnosticStatus.WARN, "; ".join([state] + stamp_trouble)
        else:
            status.level, status.message = DiagnosticStatus.OK, state
        values = {
            "backend": self._params["backend"],
            "device": self._device,
            "state": state,
            "target_id": self._target_id,
            "fps": f"{fps:.1f}",
            **{f"{name}_ms_median": "" if value is None else f"{value:.2f}" for name, value in medians.items()},
            "frames_received": mailbox.received if mailbox else 0,
            "frames_processed": processed,
            "frames_dropped": mailbox.dropped if mailbox else 0,
            "bad_frames": bad,
            "future_stamped_frames": future,
            "stamp_jumps": jumps,
            "out_of_order_frames": out_of_order,
            "image_topic": self._image_topic,
            "frame_buffer_frames": buffered[0],
            "frame_buffer_mb": f"{buffered[1] / MIB:.1f}",
            "memory_rss_mb": "" if rss is None else f"{rss / MIB:.1f}",
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


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
