"""Typed errors raised by segtrack_core. All derive from SegtrackError (a ValueError)."""


class SegtrackError(ValueError):
    """Base class of every error segtrack_core raises on bad input or misuse."""


class InvalidFrameError(SegtrackError):
    """The frame is not an HxWx3 uint8 array (or changed size mid-track)."""


class InvalidTargetError(SegtrackError):
    """The initial target (box, rotated box, mask) is empty, non-finite or outside the image."""


class NotInitializedError(SegtrackError, RuntimeError):
    """track() was called before initialize()."""


class ConfigError(SegtrackError):
    """A configuration file or mapping does not match the typed config."""


class UnknownBackendError(SegtrackError, KeyError):
    """No tracker backend is registered under that name."""


class CheckpointError(ConfigError):
    """A weights file is unreadable or is not the checkpoint of the network the backend builds."""


class MissingWeightsError(CheckpointError):
    """A backend that has no usable default weights was started without a weights file."""
