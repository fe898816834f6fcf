"""Value types shared by every tracker backend: targets, results, states.

Conventions (the same everywhere in segtrack):
- A frame is a numpy uint8 array HxWx3 in BGR order (OpenCV's), C-contiguous or not.
- Image axes: x to the right, y down; pixel (i, j) covers [i, i+1) x [j, j+1), so boxes are in
  pixel-edge coordinates (a box around one pixel at column 3 has x=3, w=1).
- Rotated boxes follow vision_msgs BoundingBox2D: center, size along the box's own axes and
  ``angle`` in radians, counter-clockwise in image axes: a positive angle turns the width axis from +x
  towards +y, so the width axis is (cos a, sin a). With y pointing down this looks clockwise on screen.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

import numpy as np

from .errors import InvalidFrameError, InvalidTargetError


class TrackState(str, enum.Enum):
    """Tracking state reported with every result."""

    TRACKING = "tracking"
    UNCERTAIN = "uncertain"
    LOST = "lost"


@dataclass(frozen=True)
class Box:
    """Axis-aligned box: top-left corner (x, y), width w and height h, in pixels."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class RotatedBox:
    """Rotated box: center (cx, cy), size (w, h) along its axes, angle in radians (CCW in the image)."""

    cx: float
    cy: float
    w: float
    h: float
    angle: float

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.cx, self.cy, self.w, self.h, self.angle)


@dataclass(frozen=True)
class MaskTarget:
    """A binary mask (HxW, nonzero = target) the size of the frame."""

    mask: np.ndarray


Target = Union[Box, RotatedBox, MaskTarget]


@dataclass
class TrackResult:
    """What a tracker reports for one frame.

    ``mask`` is a full-resolution HxW bool array; ``box`` and ``rotated_box`` are None when the state is
    LOST. ``timings`` maps stage names to seconds spent in that stage for this frame.
    """

    mask: np.ndarray
    score: float
    box: Optional[Box]
    rotated_box: Optional[RotatedBox]
    state: TrackState
    timings: Dict[str, float] = field(default_factory=dict)


MIN_FRAME_SIDE = 16  # backends downscale windows of the frame; thinner frames round sides to 0 pixels


def validate_frame(frame: object, expected_shape: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Return ``frame`` if it is an HxWx3 uint8 array (of size ``expected_shape`` if given), else raise."""
    if not isinstance(frame, np.ndarray):
        raise InvalidFrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InvalidFrameError(f"frame must be uint8, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidFrameError(f"frame must be HxWx3 (BGR), got shape {frame.shape}")
    if frame.shape[0] < MIN_FRAME_SIDE or frame.shape[1] < MIN_FRAME_SIDE:
        raise InvalidFrameError(f"frame is too small: {frame.shape[1]}x{frame.shape[0]} "
                                f"(each side must be at least {MIN_FRAME_SIDE} pixels)")
    if expected_shape is not None and frame.shape[:2] != tuple(expected_shape):
        raise InvalidFrameError(
            f"frame size changed from {expected_shape[1]}x{expected_shape[0]} "
            f"to {frame.shape[1]}x{frame.shape[0]}; re-initialize the tracker"
        )
    return frame


def _finite_floats(values: tuple, what: str) -> tuple[float, ...]:
    """The values as Python floats: a float16/float32 field would overflow in the backends' arithmetic."""
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) for v in values):
        raise InvalidTargetError(f"{what} has non-finite or non-numeric values: {values}")
    return tuple(float(v) for v in values)


def _require_pixels(target: Target, image_shape: tuple[int, int]) -> None:
    from .geometry import target_to_mask  # geometry imports this module

    if not target_to_mask(target, image_shape).any():
        raise InvalidTargetError(f"{type(target).__name__} {target.as_tuple()} covers no pixel center of the image")


def _clip_rotated_box(rbox: RotatedBox, image_shape: tuple[int, int]) -> Optional[RotatedBox]:
    """The rotated box cut, along its own axes, to the extent of the image (same angle, same pixels
    inside the image), or None if the two do not overlap."""
    height, width = image_shape
    c, s = math.cos(rbox.angle), math.sin(rbox.angle)
    corners = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]]) - (rbox.cx, rbox.cy)
    along = corners @ np.array([c, s])
    across = corners @ np.array([-s, c])
    u0, u1 = max(-rbox.w / 2, along.min()), min(rbox.w / 2, along.max())
    v0, v1 = max(-rbox.h / 2, across.min()), min(rbox.h / 2, across.max())
    if u1 <= u0 or v1 <= v0:
        return None
    if (u0, u1, v0, v1) == (-rbox.w / 2, rbox.w / 2, -rbox.h / 2, rbox.h / 2):
        return rbox
    du, dv = (u0 + u1) / 2, (v0 + v1) / 2
    return RotatedBox(rbox.cx + du * c - dv * s, rbox.cy + du * s + dv * c, u1 - u0, v1 - v0, rbox.angle)


def validate_target(target: object, image_shape: tuple[int, int]) -> Target:
    """Check a target against an image of shape (H, W); return it, clipped to the image, or raise
    InvalidTargetError.

    A box or rotated box must have finite values, positive size and cover at least one pixel center of the
    image; the part outside the image is cut off (a rotated box along its own axes, keeping its angle), so
    no backend ever works on a target larger than the image. Fields come back as Python floats. A mask must
    be HxW and contain at least one foreground pixel.
    """
    from .geometry import clip_box  # geometry imports this module

    height, width = image_shape
    if isinstance(target, (Box, RotatedBox)):
        kind, clip = ("box", clip_box) if isinstance(target, Box) else ("rotated box", _clip_rotated_box)
        given = type(target)(*_finite_floats(target.as_tuple(), kind))
        if given.w <= 0 or given.h <= 0:
            raise InvalidTargetError(f"{kind} must have positive size, got w={given.w}, h={given.h}")
        clipped = clip(given, image_shape)
        if clipped is None:
            raise InvalidTargetError(f"{kind} {given.as_tuple()} lies outside the {width}x{height} image")
        _require_pixels(clipped, image_shape)
        return clipped
    if isinstance(target, MaskTarget):
        mask = target.mask
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise InvalidTargetError("mask must be a 2-D numpy array")
        if mask.shape != (height, width):
            raise InvalidTargetError(f"mask is {mask.shape[1]}x{mask.shape[0]}, frame is {width}x{height}")
        if not np.any(mask):
            raise InvalidTargetError("mask is empty")
        return target
    raise InvalidTargetError(f"unsupported target type {type(target).__name__}; use Box, RotatedBox or MaskTarget")
