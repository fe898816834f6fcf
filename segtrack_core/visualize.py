"""Debug drawing of a TrackResult on a frame (used by the CLI's overlay video and the ROS debug image)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .geometry import rotated_box_corners
from .types import TrackResult, TrackState

# BGR colours per state: the mask tint, contour and text use them.
STATE_COLORS = {
    TrackState.TRACKING: (60, 200, 60),
    TrackState.UNCERTAIN: (0, 200, 255),
    TrackState.LOST: (60, 60, 230),
}
BOX_COLOR = (255, 160, 0)
ROTATED_BOX_COLOR = (255, 0, 255)
MASK_ALPHA = 0.45
_SHIFT = 4  # fractional bits for sub-pixel box drawing


def draw_overlay(frame_bgr: np.ndarray, result: TrackResult, label: Optional[str] = None) -> np.ndarray:
    """New BGR image: ``frame_bgr`` with the mask tinted and outlined, the axis-aligned box, the rotated
    box and a line of text (label, state, score). The input frame is not modified."""
    out = np.array(frame_bgr, dtype=np.uint8, copy=True)
    color = STATE_COLORS.get(result.state, (200, 200, 200))
    mask = np.asarray(result.mask) != 0 if result.mask is not None else None
    if mask is not None and mask.shape == out.shape[:2] and mask.any():
        tint = np.array(color, dtype=np.float32)
        out[mask] = (out[mask] * (1.0 - MASK_ALPHA) + tint * MASK_ALPHA).astype(np.uint8)
        contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, 2, cv2.LINE_AA)
    scale = 1 << _SHIFT
    if result.box is not None:
        b = result.box
        top_left = (int(round(b.x * scale)), int(round(b.y * scale)))
        bottom_right = (int(round((b.x + b.w) * scale)), int(round((b.y + b.h) * scale)))
        cv2.rectangle(out, top_left, bottom_right, BOX_COLOR, 1, cv2.LINE_AA, _SHIFT)
    if result.rotated_box is not None:
        corners = np.round(rotated_box_corners(result.rotated_box) * scale).astype(np.int32)
        cv2.polylines(out, [corners], True, ROTATED_BOX_COLOR, 2, cv2.LINE_AA, _SHIFT)
    text = f"{result.state.value} {result.score:.2f}"
    if label:
        text = f"{label}  {text}"
    _put_text(out, text, color)
    return out


def _put_text(image: np.ndarray, text: str, color: tuple[int, int, int]) -> None:
    # On a dark band so the text stays readable on any background; as large on a 1080p frame as on 480p.
    scale = 0.6 * max(1.0, image.shape[0] / 480)
    thickness = max(1, int(round(scale)))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = int(round(6 * scale))
    x, y = pad, pad + height
    cv2.rectangle(image, (0, 0), (x + width + pad, y + baseline + pad // 2), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
