"""Every conversion between segtrack_core values and ROS messages, both directions, in one place: stamps,
tracking states, boxes, masks and images, set_target requests <-> targets, results <-> output messages.
The node, the development harness and the tests all use these, so each mapping is written once."""

from __future__ import annotations

import array
from typing import Optional

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis,
                             ObjectHypothesisWithPose)

from segtrack.msg import TrackedTarget
from segtrack.srv import SetTarget
from segtrack_core.errors import InvalidTargetError
from segtrack_core.image_conversion import mask_to_mono8, mono8_to_mask, to_byte_array
from segtrack_core.types import Box, MaskTarget, PointsTarget, RotatedBox, Target, TrackResult, TrackState

NS_PER_S = 1_000_000_000
_STATE_CODES = {
    TrackState.TRACKING: TrackedTarget.STATE_TRACKING,
    TrackState.UNCERTAIN: TrackedTarget.STATE_UNCERTAIN,
    TrackState.LOST: TrackedTarget.STATE_LOST,
}
_STATES = {code: state for state, code in _STATE_CODES.items()}
CLASS_ID = "target"

# ---- stamps and states ---------------------------------------------------------------------------------


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * NS_PER_S + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def state_code(state: TrackState) -> int:
    """TrackedTarget.STATE_* for ``state``."""
    return _STATE_CODES[state]


def state_from_code(code: int) -> TrackState:
    return _STATES[code]


# ---- boxes (vision_msgs BoundingBox2D: center, size, theta) -----------------------------------------------


def box_to_msg(box: Box) -> BoundingBox2D:
    cx, cy = box.center
    return _bounding_box(cx, cy, box.w, box.h, 0.0)


def box_from_msg(msg: BoundingBox2D) -> Box:
    """The axis-aligned box of ``msg``'s center and size (its theta is not read)."""
    cx, cy, w, h = msg.center.position.x, msg.center.position.y, msg.size_x, msg.size_y
    return Box(cx - w / 2.0, cy - h / 2.0, w, h)


def rotated_box_to_msg(rbox: RotatedBox) -> BoundingBox2D:
    return _bounding_box(*rbox.as_tuple())


def rotated_box_from_msg(msg: BoundingBox2D) -> RotatedBox:
    return RotatedBox(msg.center.position.x, msg.center.position.y, msg.size_x, msg.size_y, msg.center.theta)


def _bounding_box(cx: float, cy: float, w: float, h: float, theta: float) -> BoundingBox2D:
    msg = BoundingBox2D(size_x=float(w), size_y=float(h))
    msg.center.position.x, msg.center.position.y, msg.center.theta = float(cx), float(cy), float(theta)
    return msg


# ---- images and masks ------------------------------------------------------------------------------------


def image_from_array(image: np.ndarray, header: Header, encoding: str = "bgr8") -> Image:
    """An Image of ``image``'s pixels (HxW or HxWxC, rows unpadded) in ``encoding``."""
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    msg = Image(header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
                step=width * channels * image.itemsize)
    msg.data = to_byte_array(image)
    return msg


def mask_from_image(msg: Image) -> np.ndarray:
    """HxW bool mask (nonzero = target) from a mono8 Image (a ~/mask output or a set_target mask)."""
    return mono8_to_mask(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def mask_to_image(mask: np.ndarray, header: Optional[Header] = None) -> Image:
    """mono8 Image of ``mask``, 255 = target, in a buffer of its own."""
    return image_from_array(mask_to_mono8(mask), header or Header(), "mono8")


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


# ---- set_target requests <-> targets ---------------------------------------------------------------------


def target_from_request(request: SetTarget.Request) -> Target:
    """The core target a SetTarget request describes."""
    kind = request.type
    if kind == SetTarget.Request.TYPE_BOX:
        return box_from_msg(request.box)
    if kind == SetTarget.Request.TYPE_ROTATED_BOX:
        return rotated_box_from_msg(request.box)
    if kind == SetTarget.Request.TYPE_MASK:
        return MaskTarget(mask_from_image(request.mask))
    if kind == SetTarget.Request.TYPE_POINTS:
        return PointsTarget(tuple((p.x, p.y) for p in request.foreground_points),
                            tuple((p.x, p.y) for p in request.background_points))
    raise InvalidTargetError(f"unknown target type {kind}; use TYPE_BOX, TYPE_ROTATED_BOX, TYPE_MASK "
                             "or TYPE_POINTS")


def target_request(target: Target, stamp_ns: Optional[int] = None) -> SetTarget.Request:
    """A SetTarget request for ``target``, on the buffered frame stamped ``stamp_ns`` (None: the newest)."""
    if isinstance(target, Box):
        request = SetTarget.Request(type=SetTarget.Request.TYPE_BOX, box=box_to_msg(target))
    elif isinstance(target, RotatedBox):
        request = SetTarget.Request(type=SetTarget.Request.TYPE_ROTATED_BOX, box=rotated_box_to_msg(target))
    elif isinstance(target, MaskTarget):
        request = SetTarget.Request(type=SetTarget.Request.TYPE_MASK, mask=mask_to_image(target.mask))
    elif isinstance(target, PointsTarget):
        request = SetTarget.Request(type=SetTarget.Request.TYPE_POINTS)
        request.foreground_points = [Point(x=float(x), y=float(y)) for x, y in target.foreground]
        request.background_points = [Point(x=float(x), y=float(y)) for x, y in target.background]
    else:
        raise TypeError(f"not a segtrack target: {target!r}")
    return _with_stamp(request, stamp_ns)


def _with_stamp(request: SetTarget.Request, stamp_ns: Optional[int]) -> SetTarget.Request:
    if stamp_ns is not None:
        request.use_stamp = True
        request.stamp = ns_to_stamp(stamp_ns)
    return request


# ---- results <-> outputs ---------------------------------------------------------------------------------


def tracked_target(header: Header, target_id: int, result: TrackResult, tracker_ms: float) -> TrackedTarget:
    """TrackedTarget for ``result``; latency_ms is filled in right before publishing."""
    msg = TrackedTarget(header=header, target_id=target_id, state=state_code(result.state),
                        score=float(result.score), tracker_ms=float(tracker_ms))
    msg.has_box = result.box is not None  # a tracker reports both boxes unless the target is lost
    if msg.has_box:
        msg.box, msg.rotated_box = box_to_msg(result.box), rotated_box_to_msg(result.rotated_box)
    return msg


def result_from_messages(target: TrackedTarget, mask: Image) -> TrackResult:
    """The TrackResult a TrackedTarget and its ~/mask describe (timings are not sent)."""
    box = rbox = None
    if target.has_box:
        box, rbox = box_from_msg(target.box), rotated_box_from_msg(target.rotated_box)
    return TrackResult(mask_from_image(mask), float(target.score), box, rbox, state_from_code(target.state))


def detections(target: TrackedTarget) -> Detection2DArray:
    """A TrackedTarget as vision_msgs: one detection (its rotated box) while found, none when lost. The box
    message is shared, not rebuilt (publishing serialises both at once)."""
    msg = Detection2DArray(header=target.header)
    if target.has_box:
        hypothesis = ObjectHypothesisWithPose(hypothesis=ObjectHypothesis(class_id=CLASS_ID, score=target.score))
        msg.detections = [Detection2D(header=target.header, id=str(target.target_id), results=[hypothesis],
                                      bbox=target.rotated_box)]
    return msg
