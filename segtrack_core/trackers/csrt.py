"""OpenCV's CSRT correlation-filter tracker as a backend: the accuracy and speed baseline.

It tracks a box only; the box is filled as the mask and the rotated box has angle 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import setting
from ..errors import InvalidTargetError
from ..geometry import box_to_rotated_box, clip_box, mask_to_box, rotated_box_to_box, target_to_mask
from ..types import Box, MaskTarget, RotatedBox, Target, TrackResult, TrackState
from .base import Tracker


@dataclass
class CsrtConfig:
    use_color_names: bool = setting(True, "colour-names features")
    use_hog: bool = setting(True, "HOG features")


def _initial_box(target: Target, shape: tuple[int, int]) -> Box:
    if isinstance(target, MaskTarget):
        return mask_to_box(target_to_mask(target, shape))
    if isinstance(target, RotatedBox):
        target = rotated_box_to_box(target)
    return clip_box(target, shape)


class CsrtTracker(Tracker):
    name = "csrt"

    def __init__(self, config: CsrtConfig) -> None:
        super().__init__()
        self.config = config
        self._tracker = None

    def _initialize(self, frame: np.ndarray, target: Target) -> cv2.Tracker:
        params = cv2.TrackerCSRT_Params()
        params.use_color_names = self.config.use_color_names
        params.use_hog = self.config.use_hog
        tracker = cv2.TrackerCSRT_create(params)
        box = _initial_box(target, frame.shape[:2])
        rect = tuple(int(round(v)) for v in box.as_tuple())
        try:
            tracker.init(frame, (rect[0], rect[1], max(rect[2], 1), max(rect[3], 1)))
        except cv2.error as exc:  # e.g. very thin boxes, or a full-frame box in a very wide frame
            raise InvalidTargetError(f"CSRT cannot track the box {rect} in a {frame.shape[1]}x{frame.shape[0]} "
                                     f"frame: {str(exc).strip().splitlines()[-1]}") from None
        return tracker

    def _adopt(self, state: cv2.Tracker) -> None:
        self._tracker = state

    def _track(self, frame: np.ndarray) -> TrackResult:
        start = time.perf_counter()
        ok, rect = self._tracker.update(frame)
        elapsed = time.perf_counter() - start
        shape = frame.shape[:2]
        box = clip_box(Box(*map(float, rect)), shape) if ok else None
        if box is None:
            return TrackResult(np.zeros(shape, bool), 0.0, None, None, TrackState.LOST, {"total": elapsed})
        mask = target_to_mask(box, shape)
        rbox = box_to_rotated_box(box)
        return TrackResult(mask, 1.0, box, rbox, TrackState.TRACKING, {"total": elapsed})
