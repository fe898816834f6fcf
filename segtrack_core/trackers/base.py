"""The one interface every tracker backend implements."""

from __future__ import annotations

import abc
from typing import Optional

import numpy as np

from ..errors import NotInitializedError
from ..geometry import complete_boxes
from ..prompts import points_to_mask
from ..types import MaskTarget, PointsTarget, Target, TrackResult, TrackState
from ..validation import validate_frame, validate_target


class Tracker(abc.ABC):
    """Single-object tracker: ``initialize(frame, target)`` once, then ``track(frame)`` per frame.

    Subclasses implement ``_initialize`` and ``_track``; input validation (targets clipped to the image,
    points turned into a mask) and the initialized check live here so that every backend rejects bad input
    the same way, before touching its state. ``_initialize`` builds the new target's state apart and swaps
    it in only when it succeeded, so a failure there (a SegtrackError or any other) keeps the current target.
    A non-lost result always carries both boxes (a backend may leave one out: it is derived here), a lost
    one neither.
    """

    name: str = "tracker"

    def __init__(self) -> None:
        self._image_shape: Optional[tuple[int, int]] = None

    @property
    def initialized(self) -> bool:
        return self._image_shape is not None

    @property
    def device(self) -> str:
        """Where the tracker computes: "cpu", "cuda:0", ..."""
        return "cpu"

    @property
    def image_shape(self) -> Optional[tuple[int, int]]:
        """(H, W) of the frames this tracker was initialized on, or None."""
        return self._image_shape

    def initialize(self, frame: np.ndarray, target: Target) -> None:
        """Start tracking ``target`` (Box, RotatedBox, MaskTarget or PointsTarget) in ``frame`` (HxWx3 uint8
        BGR). On any error the current target, if any, is kept."""
        frame = validate_frame(frame)
        target = validate_target(target, frame.shape[:2])
        if isinstance(target, PointsTarget):
            target = MaskTarget(points_to_mask(frame, target))
        self._initialize(frame, target)
        self._image_shape = frame.shape[:2]

    def track(self, frame: np.ndarray) -> TrackResult:
        """Locate and segment the target in the next frame."""
        if self._image_shape is None:
            raise NotInitializedError("track() called before initialize()")
        frame = validate_frame(frame, self._image_shape)
        result = self._track(frame)
        if result.state is TrackState.LOST:
            result.box = result.rotated_box = None
        else:
            complete_boxes(result)
        return result

    def reset(self) -> None:
        """Forget the target; initialize() must be called again."""
        self._image_shape = None

    @abc.abstractmethod
    def _initialize(self, frame: np.ndarray, target: Target) -> None:
        """Start on a validated Box, RotatedBox or MaskTarget; replace the current target's state only at
        the end, once nothing can fail any more."""

    @abc.abstractmethod
    def _track(self, frame: np.ndarray) -> TrackResult: ...

