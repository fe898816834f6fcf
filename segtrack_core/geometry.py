"""Pure geometry on boxes, rotated boxes, polygons and masks.

Angle convention (vision_msgs BoundingBox2D.theta): radians, counter-clockwise in image axes, i.e. a
positive angle rotates the box's width axis from +x towards +y. With the image's y axis pointing down,
that appears clockwise on a screen. The width axis of a rotated box is (cos a, sin a) in pixels.
"""

from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from .types import Box, MaskTarget, RotatedBox, Target, TrackResult


def normalize_angle(rbox: RotatedBox) -> RotatedBox:
    """Same rectangle with its angle in [-pi/4, pi/4), swapping w and h where needed (0 when axis-aligned)."""
    cx, cy, w, h, a = rbox.as_tuple()
    a = math.remainder(a, math.pi)  # in [-pi/2, pi/2]; a rectangle is symmetric under a half turn
    if a >= math.pi / 4:
        a, w, h = a - math.pi / 2, h, w
    elif a < -math.pi / 4:
        a, w, h = a + math.pi / 2, h, w
    return RotatedBox(cx, cy, w, h, a)


def rotated_box_corners(rbox: RotatedBox) -> np.ndarray:
    """4x2 float array of corner points, in order around the rectangle."""
    c, s = math.cos(rbox.angle), math.sin(rbox.angle)
    u = np.array([c, s]) * (rbox.w / 2.0)  # half width axis
    v = np.array([-s, c]) * (rbox.h / 2.0)  # half height axis
    center = np.array([rbox.cx, rbox.cy])
    return np.stack([center - u - v, center + u - v, center + u + v, center - u + v])


def box_corners(box: Box) -> np.ndarray:
    return np.array([[box.x, box.y], [box.x + box.w, box.y], [box.x + box.w, box.y + box.h],
                     [box.x, box.y + box.h]], dtype=np.float64)


def polygon_to_rotated_box(points: np.ndarray) -> RotatedBox:
    """Smallest-area rotated rectangle around a polygon (e.g. a VOT 8-value region)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    (cx, cy), (w, h), deg = cv2.minAreaRect(pts)
    # cv2's angle rotates the width axis from +x towards +y in image coordinates: our convention.
    return normalize_angle(RotatedBox(float(cx), float(cy), float(w), float(h), math.radians(deg)))


def polygon_to_box(points: np.ndarray) -> Box:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def box_to_rotated_box(box: Box) -> RotatedBox:
    """The same rectangle as a RotatedBox (angle 0)."""
    return RotatedBox(box.x + box.w / 2.0, box.y + box.h / 2.0, box.w, box.h, 0.0)


def rotated_box_to_box(rbox: RotatedBox) -> Box:
    return polygon_to_box(rotated_box_corners(rbox))


def mask_to_box(mask: np.ndarray) -> Optional[Box]:
    """Tightest axis-aligned box around the nonzero pixels (pixel-edge inclusive), or None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return Box(float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1))


def mask_to_rotated_box(mask: np.ndarray) -> Optional[RotatedBox]:
    """Minimum-area rotated rectangle around the mask's pixels (pixel edges included), or None if empty."""
    contours, _ = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    # The outer contours hold every boundary pixel; pixel (x, y) covers [x, x+1] x [y, y+1] (as in
    # mask_to_box), so the rectangle is fitted around the corners of those pixels.
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.float32)
    offsets = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    corners = (pts[:, None, :] + offsets[None]).reshape(-1, 2)
    return polygon_to_rotated_box(corners)


def fill_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bool HxW mask of the pixels whose centers (x+0.5, y+0.5) lie inside the polygon.

    Exact even-odd test, half-open on the right/bottom edges, so that a Box(x, y, w, h) with integer
    corners fills exactly w*h pixels and ``mask_to_box`` inverts it. (cv2.fillPoly rounds vertices and
    fills both boundary pixels, which grows boxes by one pixel.)
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    height, width = shape
    mask = np.zeros(shape, dtype=bool)
    x0 = max(int(np.ceil(pts[:, 0].min() - 0.5)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() - 0.5)), width)
    y0 = max(int(np.ceil(pts[:, 1].min() - 0.5)), 0)
    y1 = min(int(np.ceil(pts[:, 1].max() - 0.5)), height)
    if x1 <= x0 or y1 <= y0:
        return mask
    cx = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
    cy = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for (xa, ya), (xb, yb) in zip(pts, np.roll(pts, -1, axis=0)):
        if ya == yb:
            continue  # horizontal edges never cross a row of centers in the even-odd rule
        crosses = (ya > cy) != (yb > cy)
        x_at_row = xa + (cy - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (cx < x_at_row)
    mask[y0:y1, x0:x1] = inside
    return mask


def target_to_mask(target: Target, shape: tuple[int, int]) -> np.ndarray:
    """Bool HxW mask of a Box, RotatedBox or MaskTarget."""
    if isinstance(target, MaskTarget):
        return np.asarray(target.mask) != 0
    if isinstance(target, Box):
        return fill_polygon(box_corners(target), shape)
    if isinstance(target, RotatedBox):
        return fill_polygon(rotated_box_corners(target), shape)
    raise TypeError(f"unsupported target {type(target).__name__}")


def clip_box(box: Box, shape: tuple[int, int]) -> Optional[Box]:
    """Intersection of a box with an image of shape (H, W), or None if they do not overlap."""
    height, width = shape
    x0, y0 = max(box.x, 0.0), max(box.y, 0.0)
    x1, y1 = min(box.x + box.w, float(width)), min(box.y + box.h, float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def clip_rotated_box(rbox: RotatedBox, shape: tuple[int, int]) -> Optional[RotatedBox]:
    """The rotated box cut, along its own axes, to the image's extent on those axes (same angle, same
    pixels inside the image), or None if the extents do not overlap."""
    height, width = shape
    c, s = math.cos(rbox.angle), math.sin(rbox.angle)
    corners = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]]) - (rbox.cx, rbox.cy)
    along, across = corners @ np.array([c, s]), corners @ np.array([-s, c])
    u0, u1 = max(-rbox.w / 2, along.min()), min(rbox.w / 2, along.max())
    v0, v1 = max(-rbox.h / 2, across.min()), min(rbox.h / 2, across.max())
    if u1 <= u0 or v1 <= v0:
        return None
    if (u0, u1, v0, v1) == (-rbox.w / 2, rbox.w / 2, -rbox.h / 2, rbox.h / 2):
        return rbox
    du, dv = (u0 + u1) / 2, (v0 + v1) / 2
    return RotatedBox(rbox.cx + du * c - dv * s, rbox.cy + du * s + dv * c, u1 - u0, v1 - v0, rbox.angle)


def complete_boxes(result: TrackResult) -> TrackResult:
    """Fill a result's missing box from its other box, or from its mask (both stay None for an empty mask
    with no box)."""
    if result.box is None:
        result.box = (rotated_box_to_box(result.rotated_box) if result.rotated_box is not None
                      else mask_to_box(result.mask))
    if result.rotated_box is None:
        result.rotated_box = mask_to_rotated_box(result.mask) if result.mask.any() else None
        if result.rotated_box is None and result.box is not None:
            result.rotated_box = box_to_rotated_box(result.box)
    return result


def _clip_span(lo: float, hi: float, size: int) -> tuple[float, float]:
    """[lo, hi] cut to [0, size]; one missing it (or empty) becomes the one-pixel span nearest to it."""
    a, b = min(max(lo, 0.0), float(size)), min(max(hi, 0.0), float(size))
    if b > a:
        return a, b
    a = min(a, size - 1.0)
    return a, a + 1.0


def clip_box_to_image(box: Box, shape: tuple[int, int]) -> Box:
    """The part of ``box`` inside an image of shape (H, W); a box with no area there (beyond an edge, or
    of zero size) becomes the pixel-thick box at the nearest image edge, so the result is never empty."""
    x0, x1 = _clip_span(box.x, box.x + box.w, shape[1])
    y0, y1 = _clip_span(box.y, box.y + box.h, shape[0])
    return Box(x0, y0, x1 - x0, y1 - y0)


def clip_result_boxes(result: TrackResult, shape: tuple[int, int]) -> TrackResult:
    """Cut a result's boxes to the image (H, W): the box as by ``clip_box_to_image``, the rotated box along
    its own axes (as a target is); a rotated box missing the image becomes the clipped box, angle 0."""
    if result.box is not None:
        result.box = clip_box_to_image(result.box, shape)
    if result.rotated_box is not None:
        rotated = clip_rotated_box(result.rotated_box, shape)
        # Overlapping extents on its own axes and on the image's (its bounding box) is overlapping the image.
        if rotated is None or clip_box(rotated_box_to_box(rotated), shape) is None:
            box = result.box if result.box is not None else rotated_box_to_box(result.rotated_box)
            rotated = box_to_rotated_box(clip_box_to_image(box, shape))
        result.rotated_box = rotated
    return result
