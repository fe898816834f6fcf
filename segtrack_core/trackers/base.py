"""The one interface every tracker backend implements."""

from __future__ import annotations

import abc
from typing import Any, NamedTuple, Optional

import numpy as np

from ..errors import NotInitializedError
from ..geometry import clip_result_boxes, complete_boxes
from ..prompts import points_to_mask
from ..types import MaskTarget, PointsTarget, Target, TrackResult, TrackState
from ..validation import validate_frame, validate_target


class PreparedTarget(NamedTuple):
    """A target built by ``Tracker.prepare``, waiting for ``Tracker.adopt``."""

    tracker: "Tracker"
    state: Any
    image_shape: tuple[int, int]


class Tracker(abc.ABC):
    """Single-object tracker: ``initialize(frame, target)`` once, then ``track(frame)`` per frame.

    Subclasses implement ``_initialize`` (the new target's state, built apart), ``_adopt`` (make a built
    state current) and ``_track``; input validation (targets clipped to the image, points turned into a
    mask) and the initialized check live here so that every backend rejects bad input the same way, before
    touching its state. A failure while building (a SegtrackError or any other) keeps the current target.
    ``prepare`` builds without touching the current target, so it may run on another thread while
    ``track`` goes on with the current one (an operator re-targeting must not blind the robot); ``adopt``
    then swaps the prepared target in on the tracking thread.
    A non-lost result always carries both boxes (a backend may leave one out: it is derived here), cut to
    the image, a lost one neither.
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
        self.adopt(self.prepare(frame, target))

    def prepare(self, frame: np.ndarray, target: Target) -> PreparedTarget:
        """Everything ``initialize`` does except making the target current: the tracker's current target
        is untouched, so this may run on another thread while ``track`` runs."""
        frame = validate_frame(frame)
        target = validate_target(target, frame.shape[:2])
        if isinstance(target, PointsTarget):
            target = MaskTarget(points_to_mask(frame, target))
        return PreparedTarget(self, self._initialize(frame, target), frame.shape[:2])

    def adopt(self, prepared: PreparedTarget) -> None:
        """Make a target this tracker prepared the current one (call on the thread that tracks)."""
        if prepared.tracker is not self:
            raise ValueError("a prepared target can only be adopted by the tracker that prepared it")
        self._adopt(prepared.state)
        self._image_shape = prepared.image_shape

    def track(self, frame: np.ndarray) -> TrackResult:
        """Locate and segment the target in the next frame."""
        if self._image_shape is None:
            raise NotInitializedError("track() called before initialize()")
        frame = validate_frame(frame, self._image_shape)
        result = self._track(frame)
        if result.state is TrackState.LOST:
            result.box = result.rotated_box = None
        else:
            # Here for every backend: a predicted box (a coasting tracker's) may reach past the image.
            clip_result_boxes(complete_boxes(result), frame.shape[:2])
        return result

    def reset(self) -> None:
        """Forget the target; initialize() must be called again."""
        self._image_shape = None

    @abc.abstractmethod
    def _initialize(self, frame: np.ndarray, target: Target) -> Any:
        """The state of a new target from a validated Box, RotatedBox or MaskTarget, built without touching
        the current target's (safe beside a running ``_track``)."""

    @abc.abstractmethod
    def _adopt(self, state: Any) -> None:
        """Make ``state`` (from ``_initialize``) the current target's."""

    @abc.abstractmethod
    def _track(self, frame: np.ndarray) -> TrackResult: ...

