"""The node's publishers: each tracked frame's outputs (target, mask, detections, debug image) and the
diagnostics. Frames are published from the worker thread, diagnostics from a timer."""

from __future__ import annotations

import threading
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import Node as LifecycleNode
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from segtrack.msg import TrackedTarget
from segtrack_core.visualize import draw_overlay

from . import conversions
from .memory import resident_bytes
from .qos import reliable_qos
from .worker import Report, Tracked


class Outputs:
    """Creates the publishers on ``node`` and owns them until ``destroy``.

    Frames are published only while open, checked under a lock: once the worker is stopped (deactivate,
    shutdown) a frame it is still finishing can never publish on a dead context."""

    def __init__(self, node: LifecycleNode, depth: int, debug_enabled: bool) -> None:
        qos = reliable_qos(depth)
        self._node = node
        self._target = node.create_lifecycle_publisher(TrackedTarget, "~/target", qos)
        self._mask = node.create_lifecycle_publisher(Image, "~/mask", qos)
        self._detections = node.create_lifecycle_publisher(Detection2DArray, "~/detections", qos)
        # Always created so that publish_debug_image can be switched live.
        self._debug = node.create_lifecycle_publisher(Image, "~/debug_image", qos)
        self._diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._mask_writer = conversions.MaskImageWriter()
        self._lock = threading.Lock()
        self._open = False
        self.debug_enabled = debug_enabled

    def set_open(self, is_open: bool) -> None:
        with self._lock:
            self._open = is_open

    def publish(self, tracked: Tracked) -> Optional[float]:
        """Publish a tracked frame's outputs; the stamp -> publish latency (ms), None once closed."""
        frame, result, target_id = tracked.frame, tracked.result, tracked.target_id
        header = frame.header()
        target = conversions.tracked_target(header, target_id, result, tracked.tracker_ms)
        mask = self._mask_writer.message(header, result.mask)
        detections = conversions.detections(target)
        with self._lock:
            if not self._open:
                return None
            target.latency_ms = latency_ms = (self._node.get_clock().now().nanoseconds - frame.stamp_ns) * 1e-6
            self._target.publish(target)
            self._mask.publish(mask)
            self._detections.publish(detections)
        if self.debug_enabled and self._debug.get_subscription_count() > 0:
            overlay = draw_overlay(tracked.image, result, label=f"target {target_id}")
            message = conversions.image_from_array(overlay, header)
            with self._lock:
                if self._open:
                    self._debug.publish(message)
        return latency_ms

    def publish_diagnostics(self, device: str, report: Report, values: dict[str, Any]) -> None:
        rss = resident_bytes()
        values = {**values, **report.values, "memory_rss_mb": "" if rss is None else f"{rss / (1 << 20):.1f}"}
        status = DiagnosticStatus(name=f"segtrack: {self._node.get_fully_qualified_name()}", hardware_id=device,
                                  level=DiagnosticStatus.WARN if report.warn else DiagnosticStatus.OK,
                                  message=report.message,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._diagnostics.publish(array)

    def destroy(self) -> None:
        self.set_open(False)
        for pub in (self._target, self._mask, self._detections, self._debug):
            self._node.destroy_lifecycle_publisher(pub)
        self._node.destroy_publisher(self._diagnostics)
