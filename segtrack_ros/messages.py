"""segtrack_core values <-> ROS messages: service requests to targets, results to output messages."""

from __future__ import annotations

import array
from typing import Optional

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis,
                             ObjectHypothesisWithPose)

from segtrack.msg import TrackedTarget
from segtrack.srv import SetTarget
from segtrack_core.errors import InvalidTargetError
from segtrack_core.image_conversion import mask_to_mono8, mono8_to_mask, to_byte_array
from segtrack_core.types import Box, MaskTarget, PointsTarget, RotatedBox, Target, TrackResult, TrackState

STATE_CODES = {
    TrackState.TRACKING: TrackedTarget.STATE_TRACKING,
    TrackState.UNCERTAIN: TrackedTarget.STATE_UNCERTAIN,
    TrackState.LOST: TrackedTarget.STATE_LOST,
}
CLASS_ID = "target"


def stamp_to_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def target_from_request(request: SetTarget.Request, frame: np.ndarray) -> Target:
    """The core target a SetTarget request describes, on ``frame`` (BGR, needed by point prompts)."""
    kind = request.type
    if kind in (SetTarget.Request.TYPE_BOX, SetTarget.Request.TYPE_ROTATED_BOX):
        center = request.box.center
        cx, cy, w, h = center.position.x, center.position.y, request.box.size_x, request.box.size_y
        if kind == SetTarget.Request.TYPE_BOX:
            return Box(cx - w / 2.0, cy - h / 2.0, w, h)
        return RotatedBox(cx, cy, w, h, center.theta)
    if kind == SetTarget.Request.TYPE_MASK:
        m = request.mask
        return MaskTarget(mono8_to_mask(m.encoding, m.height, m.width, m.step, m.data))
    if kind == SetTarget.Request.TYPE_POINTS:
        foreground = [(p.x, p.y) for p in request.foreground_points]
        background = [(p.x, p.y) for p in request.background_points]
        return PointsTarget(tuple(foreground), tuple(background))
    raise InvalidTargetError(f"unknown target type {kind}; use TYPE_BOX, TYPE_ROTATED_BOX, TYPE_MASK "
                             "or TYPE_POINTS")


def fill_bounding_box(msg: BoundingBox2D, cx: float, cy: float, w: float, h: float, theta: float) -> None:
    msg.center.position.x = float(cx)
    msg.center.position.y = float(cy)
    msg.center.theta = float(theta)
    msg.size_x = float(w)
    msg.size_y = float(h)


def tracked_target(header: Header, target_id: int, result: TrackResult, tracker_ms: float) -> TrackedTarget:
    """TrackedTarget for ``result``; latency_ms is filled in right before publishing."""
    msg = TrackedTarget()
    msg.header = header
    msg.target_id = target_id
    msg.state = STATE_CODES[result.state]
    msg.score = float(result.score)
    msg.tracker_ms = float(tracker_ms)
    box, rbox = result.box, result.rotated_box
    msg.has_box = box is not None
    if box is not None:
        fill_bounding_box(msg.box, box.x + box.w / 2.0, box.y + box.h / 2.0, box.w, box.h, 0.0)
        fill_bounding_box(msg.rotated_box, *rbox.as_tuple())
    return msg


def detections(header: Header, target_id: int, result: TrackResult) -> Detection2DArray:
    """One detection (the rotated box) while the target is found, none when lost."""
    msg = Detection2DArray()
    msg.header = header
    rbox = result.rotated_box
    if rbox is not None:
        detection = Detection2D()
        detection.header = header
        detection.id = str(target_id)
        hypothesis = ObjectHypothesisWithPose(hypothesis=ObjectHypothesis(class_id=CLASS_ID, score=float(result.score)))
        detection.results = [hypothesis]
        fill_bounding_box(detection.bbox, *rbox.as_tuple())
        msg.detections = [detection]
    return msg


class MaskImageWriter:
    """mono8 mask messages written straight into a reused byte buffer (one pass per frame, no copies).

    Publishing serialises the message synchronously, so the buffer may be rewritten for the next frame.
    """

    def __init__(self) -> None:
        self._data = array.array("B")
        self._view: Optional[np.ndarray] = None

    def message(self, header: Header, mask: np.ndarray) -> Image:
        height, width = mask.shape
        if self._view is None or self._view.shape != (height, width):
            self._view = None  # release the export so the array may be reallocated
            self._data = array.array("B", bytes(height * width))
            self._view = np.frombuffer(self._data, dtype=np.uint8).reshape(height, width)
        mask_to_mono8(mask, out=self._view)
        msg = Image(header=header, height=height, width=width, encoding="mono8", is_bigendian=0, step=width)
        msg.data = self._data
        return msg


def bgr8_image(header: Header, image: np.ndarray) -> Image:
    height, width = image.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3)
    msg.data = to_byte_array(image)
    return msg
