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
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

import numpy as np

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


@dataclass(frozen=True)
class PointsTarget:
    """Click prompts: (x, y) pixel points on the object (foreground) and off it (background)."""

    foreground: tuple[tuple[float, float], ...]
    background: tuple[tuple[float, float], ...] = ()


Target = Union[Box, RotatedBox, MaskTarget, PointsTarget]


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
