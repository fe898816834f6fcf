"""Drive a segtrack node from Python: start it as a process, feed it images, call its services, collect
what it publishes. Used by the demo, the benchmark and the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import SetBool, Trigger
from vision_msgs.msg import Detection2DArray

from segtrack.msg import TrackedTarget
from segtrack.srv import SetTarget
from segtrack_core.image_conversion import to_byte_array
from segtrack_core.types import Box, Target
from segtrack_ros.conversions import image_from_array, ns_to_stamp, stamp_to_ns, target_request

from .env import CONFIG_DIR, REPO_ROOT, ros_environment

DEFAULT_PARAMS_FILE = CONFIG_DIR / "tracker.yaml"
RESEND_S = 5.0


def isolated_ros_env(domain_id: int, home: Optional[str] = None) -> dict[str, str]:
    """Environment for a node process: this venv's ROS, the shipped DDS profile, a private domain on
    localhost only, and ROS_HOME/ROS_LOG_DIR under ``home`` (a new temp dir if None)."""
    home = home or tempfile.mkdtemp(prefix="segtrack_ros_")
    env = {**os.environ, **ros_environment()}
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_HOME=home,
               ROS_LOG_DIR=str(Path(home) / "log"), PYTHONUNBUFFERED="1")
    return env


def configure_this_process(domain_id: int, home: Optional[str] = None) -> None:
    """Same settings for this process's own rclpy; call before rclpy.init (LD_LIBRARY_PATH is not needed
    by an already running interpreter, the rest is read when DDS starts)."""
    env = isolated_ros_env(domain_id, home)
    for key in ("RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_DOMAIN_ID",
                "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_HOME", "ROS_LOG_DIR", "AMENT_PREFIX_PATH"):
        os.environ[key] = env[key]


class NodeProcess:
    """The checkout's segtrack node in its own process (``python -m segtrack_ros.node``), always stopped on
    exit."""

    def __init__(self, domain_id: int, parameters: Optional[dict[str, Any]] = None,
                 params_file: Optional[Path] = DEFAULT_PARAMS_FILE, namespace: str = "",
                 remappings: Optional[dict[str, str]] = None, log_path: Optional[Path] = None) -> None:
        self.home = tempfile.mkdtemp(prefix="segtrack_node_")
        self.log_path = Path(log_path) if log_path else Path(self.home) / "node.log"
        args = [sys.executable, "-m", "segtrack_ros.node", "--ros-args"]
        if params_file:
            args += ["--params-file", str(params_file)]
        for name, value in (parameters or {}).items():
            args += ["-p", f"{name}:={_param_text(value)}"]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        for source, target in (remappings or {}).items():
            args += ["-r", f"{source}:={target}"]
        self._log = open(self.log_path, "w")
        self._final_log: Optional[str] = None
        self.process = subprocess.Popen(args, env=isolated_ros_env(domain_id, self.home), stdout=self._log,
                                        stderr=subprocess.STDOUT, cwd=str(REPO_ROOT))

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        if self._final_log is not None:
            return self._final_log
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 5.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if not self._log.closed:
            self._log.close()
            if self.log_path.parent == Path(self.home):  # the log lives in the temp home: keep its text
                self._final_log = self.log_path.read_text(errors="replace")
            shutil.rmtree(self.home, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return str(value)


@dataclass
class Received:
    """Messages a client got from the node, each with its receipt time (ns, system clock)."""

    targets: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    detections: list = field(default_factory=list)
    debug_images: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)


def diagnostic_value(array_msg: Any, key: str) -> Optional[str]:
    """Value of ``key`` in a diagnostic_msgs/DiagnosticArray, or None if absent."""
    for status in (array_msg.status if array_msg is not None else []):
        for value in status.values:
            if value.key == key:
                return value.value
    return None


class TrackerClient:
    """A client node (own rclpy context) that publishes images to the tracker and records its outputs."""

    def __init__(self, domain_id: int, node_name: str = "segtrack", namespace: str = "",
                 image_topic: str = "image", image_qos: Optional[QoSProfile] = None,
                 debug_image: bool = False, keep_masks: bool = True) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("segtrack_client", context=self.context)
        prefix = f"{namespace.rstrip('/')}/{node_name}" if namespace else f"/{node_name}"
        self.prefix = prefix if prefix.startswith("/") else "/" + prefix
        self.received = Received()
        self._lock = threading.Condition()
        self._keep_masks = keep_masks
        self._answered: set = set()  # service clients whose response path is known to work
        image_qos = image_qos or QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                                            reliability=ReliabilityPolicy.BEST_EFFORT)
        topic = image_topic if image_topic.startswith("/") else f"{namespace.rstrip('/')}/{image_topic}"
        self.image_topic = topic if topic.startswith("/") else "/" + topic
        self.image_pub = self.node.create_publisher(Image, self.image_topic, image_qos)
        self.compressed_pub = self.node.create_publisher(CompressedImage, self.image_topic + "/compressed",
                                                         image_qos)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(TrackedTarget, f"{self.prefix}/target", self._keep("targets"), out_qos)
        self.node.create_subscription(Image, f"{self.prefix}/mask", self._keep("masks"), out_qos)
        self.node.create_subscription(Detection2DArray, f"{self.prefix}/detections", self._keep("detections"),
                                      out_qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep("diagnostics"), 10)
        if debug_image:
            self.node.create_subscription(Image, f"{self.prefix}/debug_image", self._keep("debug_images"),
                                          out_qos)
        self.set_target_client = self.node.create_client(SetTarget, f"{self.prefix}/set_target")
        self.reset_client = self.node.create_client(Trigger, f"{self.prefix}/reset")
        self.enable_client = self.node.create_client(SetBool, f"{self.prefix}/enable")
        self.set_parameters_client = self.node.create_client(SetParameters, f"{self.prefix}/set_parameters")
        self.get_parameters_client = self.node.create_client(GetParameters, f"{self.prefix}/get_parameters")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - context shut down while spinning
            pass

    def _keep(self, kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            now = time.time_ns()
            if kind == "masks" and not self._keep_masks:
                msg = SimpleNamespace(header=msg.header, height=msg.height, width=msg.width)
            with self._lock:
                getattr(self.received, kind).append((now, msg))
                self._lock.notify_all()
        return callback

    # ---- waiting ---------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
            return True

    def wait_for_services(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        for client in (self.set_target_client, self.reset_client, self.enable_client):
            if not client.wait_for_service(timeout_sec=max(deadline - time.monotonic(), 0.0)):
                return False
        return True

    def wait_for_subscriber(self, timeout: float = 20.0, compressed: bool = False) -> bool:
        pub = self.compressed_pub if compressed else self.image_pub
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pub.get_subscription_count() > 0:
                return True
            time.sleep(0.05)
        return False

    def clear(self) -> None:
        with self._lock:
            self.received = Received()

    def outputs_for(self, stamp: int) -> Optional[tuple[Any, Any, Any]]:
        """(target, mask, detections) the node published for the image stamped ``stamp``, if all arrived."""
        found = []
        with self._lock:
            for kind in ("targets", "masks", "detections"):
                msgs = [m for _, m in getattr(self.received, kind) if stamp_to_ns(m.header.stamp) == stamp]
                if not msgs:
                    return None
                found.append(msgs[-1])
        return tuple(found)

    def track_frame(self, frame: np.ndarray, timeout: float = 10.0) -> Optional[tuple[Any, Any, Any]]:
        """Publish ``frame`` and wait for the node's outputs for it (None if none came within timeout)."""
        stamp = self.publish_frame(frame)
        if not self.wait_for(lambda _: self.outputs_for(stamp) is not None, timeout):
            return None
        return self.outputs_for(stamp)

    def start_tracking(self, frame: np.ndarray, box: Sequence[float], timeout: float = 20.0) -> Any:
        """Publish ``frame`` until the node has it, then set ``box`` (x, y, w, h) on it; returns the response.

        Best-effort delivery right after discovery may lose the first images, hence the retries."""
        deadline = time.monotonic() + timeout
        while True:
            stamp = self.publish_frame(frame)
            time.sleep(0.2)
            response = self.set_target(Box(*box), stamp=stamp)
            if response.success or time.monotonic() > deadline or "no buffered frame" not in response.message:
                return response

    # ---- inputs ----------------------------------------------------------------------------------------

    def image_message(self, frame: np.ndarray, stamp: Optional[int] = None) -> Image:
        """A bgr8 Image of ``frame`` stamped ``stamp`` (ns; now if None)."""
        header = Header(stamp=ns_to_stamp(time.time_ns() if stamp is None else stamp), frame_id="camera")
        return image_from_array(frame, header)

    def publish(self, msg: Image) -> int:
        """Publish ``msg`` (stamped now unless already stamped); returns its stamp in ns."""
        if msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0:
            msg.header.stamp = ns_to_stamp(time.time_ns())
        self.image_pub.publish(msg)
        return stamp_to_ns(msg.header.stamp)

    def publish_frame(self, frame: np.ndarray, stamp: Optional[int] = None) -> int:
        """Publish a BGR frame stamped ``stamp`` (ns; now if None); returns the stamp."""
        return self.publish(self.image_message(frame, stamp))

    def publish_compressed(self, jpeg: bytes, stamp: Optional[int] = None) -> int:
        msg = CompressedImage(format="jpeg")
        msg.header.stamp = ns_to_stamp(time.time_ns() if stamp is None else stamp)
        msg.data = to_byte_array(np.frombuffer(jpeg, np.uint8))
        self.compressed_pub.publish(msg)
        return stamp_to_ns(msg.header.stamp)

    # ---- services --------------------------------------------------------------------------------------

    def call(self, client: Any, request: Any, timeout: float = 30.0) -> Any:
        """Send ``request`` and wait for the answer. Until ``client`` has had one answer, the request is
        sent again every RESEND_S and the first answer to any copy counts: Fast DDS drops a response when
        the server has not matched the client's response reader 100 ms after the request, though
        wait_for_service has returned (seen once in CI, under load). So a client's first request must be
        one that may arrive twice."""
        deadline = time.monotonic() + timeout
        answered = threading.Event()
        futures = []
        try:
            while True:
                future = client.call_async(request)
                future.add_done_callback(lambda _: answered.set())
                futures.append(future)
                wait = deadline - time.monotonic()
                if client not in self._answered:
                    wait = min(wait, RESEND_S)
                if answered.wait(max(wait, 0.0)):
                    self._answered.add(client)
                    return next(f for f in futures if f.done()).result()
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no answer from {client.srv_name} within {timeout} s")
        finally:
            for future in futures:
                if not future.done():
                    client.remove_pending_request(future)

    def set_target(self, target: Target, stamp: Optional[int] = None) -> Any:
        """Call ~/set_target with a Box, RotatedBox, MaskTarget or PointsTarget on the frame stamped
        ``stamp`` (ns; None: the node's newest)."""
        return self.call(self.set_target_client, target_request(target, stamp))

    def reset(self) -> Any:
        return self.call(self.reset_client, Trigger.Request())

    def enable(self, enabled: bool) -> Any:
        return self.call(self.enable_client, SetBool.Request(data=enabled))

    def set_parameters(self, **values: Any) -> list:
        """Set node parameters one by one, as `ros2 param set` does (dots in names as __: qos__depth);
        returns each rcl_interfaces/SetParametersResult."""
        request = SetParameters.Request(parameters=[Parameter(name.replace("__", "."), value=value).to_parameter_msg()
                                                    for name, value in values.items()])
        return list(self.call(self.set_parameters_client, request).results)

    def get_parameters(self, *names: str) -> dict[str, Any]:
        response = self.call(self.get_parameters_client, GetParameters.Request(names=list(names)))
        return {name: parameter_value_to_python(value) for name, value in zip(names, response.values)}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._spinner.join(timeout=2.0)

    def __enter__(self) -> "TrackerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
