"""Input checks shared by every backend: frames and targets are validated (and targets clipped to the
image) here, before a tracker touches its state."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .errors import InvalidFrameError, InvalidTargetError
from .geometry import clip_box, clip_rotated_box, target_to_mask
from .types import Box, MaskTarget, PointsTarget, RotatedBox, Target

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
    if not target_to_mask(target, image_shape).any():
        raise InvalidTargetError(f"{type(target).__name__} {target.as_tuple()} covers no pixel center of the image")


def validate_target(target: object, image_shape: tuple[int, int]) -> Target:
    """Check a target against an image of shape (H, W); return it, clipped to the image, or raise
    InvalidTargetError.

    A box or rotated box must have finite values, positive size and cover at least one pixel center of the
    image; the part outside the image is cut off (a rotated box along its own axes, keeping its angle), so
    no backend ever works on a target larger than the image. Fields come back as Python floats. A mask must
    be HxW and contain at least one foreground pixel. Points need at least one foreground point, all
    foreground points inside the image; background points may lie anywhere.
    """
    height, width = image_shape
    if isinstance(target, (Box, RotatedBox)):
        kind, clip = ("box", clip_box) if isinstance(target, Box) else ("rotated box", clip_rotated_box)
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
    if isinstance(target, PointsTarget):
        foreground = _points(target.foreground, "foreground")
        background = _points(target.background, "background")
        if not foreground:
            raise InvalidTargetError("at least one foreground point is needed")
        outside = [p for p in foreground if not (0 <= p[0] <= width - 1 and 0 <= p[1] <= height - 1)]
        if outside:
            raise InvalidTargetError(f"foreground points {outside} lie outside the {width}x{height} image")
        return PointsTarget(foreground, background)
    raise InvalidTargetError(f"unsupported target type {type(target).__name__}; "
                             "use Box, RotatedBox, MaskTarget or PointsTarget")


def _points(points: object, what: str) -> tuple[tuple[float, float], ...]:
    try:
        pairs = [tuple(point) for point in points]
    except TypeError:
        raise InvalidTargetError(f"{what} points must be a sequence of (x, y) pairs") from None
    if any(len(pair) != 2 for pair in pairs):
        raise InvalidTargetError(f"{what} points must be (x, y) pairs, got {pairs}")
    return tuple(_finite_floats(pair, f"{what} point") for pair in pairs)
