"""segtrack_core: single-object segmentation tracking (no ROS imports)."""

from .errors import (ConfigError, InvalidFrameError, InvalidTargetError, NotInitializedError,
                     SegtrackError, UnknownBackendError)
from .registry import available_backends, create_tracker, make_config
from .trackers.base import Tracker
from .types import Box, MaskTarget, PointsTarget, RotatedBox, Target, TrackResult, TrackState

__all__ = [
    "Box", "ConfigError", "InvalidFrameError", "InvalidTargetError", "MaskTarget", "NotInitializedError",
    "PointsTarget", "RotatedBox", "SegtrackError", "Target", "TrackResult", "TrackState", "Tracker", "UnknownBackendError",
    "available_backends", "create_tracker", "make_config",
]
