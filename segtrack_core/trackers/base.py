"""The one interface every tracker backend implements."""

from __future__ import annotations

import abc
from typing import Optional

import numpy as np

from ..errors import NotInitializedError, SegtrackError
from ..types import Target, TrackResult, validate_frame, validate_target


class Tracker(abc.ABC):
    """Single-object tracker: ``initialize(frame, target)`` once, then ``track(frame)`` per frame.

    Subclasses implement ``_initialize`` and ``_track``; input validation (targets clipped to the image)
    and the initialized check live here so that every backend rejects bad input the same way, before
    touching its state. A backend that refuses a valid-looking target raises a SegtrackError from
    ``_initialize`` before changing its state: the current target is then kept.
    """

    name: str = "tracker"

    def __init__(self) -> None:
        self._image_shape: Optional[tuple[int, int]] = None

    @property
    def initialized(self) -> bool:
        return self._image_shape is not None

    @property
    def image_shape(self) -> Optional[tuple[int, int]]:
        """(H, W) of the frames this tracker was initialized on, or None."""
        return self._image_shape

    def initialize(self, frame: np.ndarray, target: Target) -> None:
        """Start tracking ``target`` (Box, RotatedBox or MaskTarget) in ``frame`` (HxWx3 uint8 BGR)."""
        frame = validate_frame(frame)
        target = validate_target(target, frame.shape[:2])
        # Invalid input was rejected above with the old target intact; from here on a failure must not
        # leave a half-built tracker that track() would use, except a backend's typed refusal (see above).
        previous, self._image_shape = self._image_shape, None
        try:
            self._initialize(frame, target)
        except SegtrackError:
            self._image_shape = previous
            raise
        self._image_shape = frame.shape[:2]

    def track(self, frame: np.ndarray) -> TrackResult:
        """Locate and segment the target in the next frame."""
        if self._image_shape is None:
            raise NotInitializedError("track() called before initialize()")
        frame = validate_frame(frame, self._image_shape)
        return self._track(frame)

    def reset(self) -> None:
        """Forget the target; initialize() must be called again."""
        self._image_shape = None

    @abc.abstractmethod
    def _initialize(self, frame: np.ndarray, target: Target) -> None: ...

    @abc.abstractmethod
    def _track(self, frame: np.ndarray) -> TrackResult: ...
