"""The segtrack node's parameters (no ROS import: tests read them without ROS).

Two kinds: the node's own (``NODE_PARAMETERS``) and the tracker's, ``tracker.<setting>``, generated from
the selected backend's config dataclass (type and description from the dataclass, default from the
selected parameter set), so every tracker knob is a described ROS parameter and none is restated here.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping, Optional

from segtrack_core.config import SettingInfo, describe, with_overrides
from segtrack_core.registry import available_backends, make_config

NODE_NAME = "segtrack"
TRACKER_PREFIX = "tracker."

# name -> (default, description)
NODE_PARAMETERS: dict[str, tuple[Any, str]] = {
    "backend": ("d3s2", "tracker backend name (segtrack backends lists them)"),
    "parameter_set": ("default", "the backend's named parameter set (config/<backend>/<set>.yaml, e.g. "
                                 "cuda_fp16) or a YAML file; it gives the tracker.* parameters their defaults"),
    "use_compressed": (False, "subscribe to <image>/compressed (sensor_msgs/CompressedImage) instead of image"),
    "publish_debug_image": (True, "publish ~/debug_image (drawn only while someone subscribes)"),
    "enabled": (True, "track and publish; false pauses outputs like ~/enable (which keeps this in step)"),
    "frame_buffer_size": (30, "recent frames kept so set_target can initialise on a given stamp"),
    "frame_buffer_max_mb": (100, "memory the frame buffer may hold, MiB (the newest frame is always kept)"),
    "autostart": (True, "configure and activate at startup instead of waiting for lifecycle transitions"),
    "qos.reliability": ("best_effort", "image subscription reliability: best_effort (SensorDataQoS) or reliable"),
    "qos.depth": (5, "image subscription queue depth (keep last)"),
    "qos.output_depth": (5, "queue depth (keep last, reliable) of the outputs: target, mask, detections, debug image"),
    "service_queue_depth": (100, "requests each service (set_target, reset, enable) queues while the node is "
                                 "busy; DDS drops calls beyond it"),
}
# When a change takes effect: LIVE parameters apply at once (ros2 param set); STARTUP ones only when the
# process starts (read-only: backend and parameter_set decide which tracker.* parameters exist); the rest
# at the next configure, so they are refused while configured.
LIVE_PARAMETERS = ("tracker.tracking_threshold", "tracker.lost_threshold", "publish_debug_image", "enabled")
STARTUP_PARAMETERS = ("autostart", "backend", "parameter_set")
AT_LEAST_ONE = ("frame_buffer_size", "frame_buffer_max_mb", "qos.depth", "qos.output_depth", "service_queue_depth")

# Launch arguments of launch/tracker.launch.py -> the parameter each sets. Their default is "" (not
# given): only what the user gives overrides the params file.
LAUNCH_OVERRIDES = {"backend": "backend", "device": "tracker.runtime.device", "use_compressed": "use_compressed"}


def when(name: str) -> str:
    return ("applied at once" if name in LIVE_PARAMETERS else
            "read at start" if name in STARTUP_PARAMETERS else "read at configure")


def tracker_parameters(backend: str, parameter_set: str) -> list[SettingInfo]:
    """The ``tracker.*`` parameters of ``backend``: its settings, valued by ``parameter_set``."""
    return [SettingInfo(TRACKER_PREFIX + info.name, info.type, info.value, info.help)
            for info in describe(make_config(backend, parameter_set))]


def tracker_config(backend: str, parameter_set: str, values: Mapping[str, Any]) -> Any:
    """The backend config from its parameter set and the ``tracker.*`` parameter ``values``."""
    settings = {name[len(TRACKER_PREFIX):]: value for name, value in values.items()
                if name.startswith(TRACKER_PREFIX)}
    return make_config(backend, parameter_set, **settings)


def with_tracker_values(config: Any, values: Mapping[str, Any]) -> Any:
    """``config`` with the ``tracker.*`` parameter ``values`` applied (checked by the config)."""
    return with_overrides(config, {name[len(TRACKER_PREFIX):]: value for name, value in values.items()},
                          where="tracker")


def launch_overrides(arguments: dict[str, str]) -> dict[str, Any]:
    """Node parameters for the launch arguments the user gave (non-empty text); booleans must be
    true/false (else ValueError)."""
    overrides: dict[str, Any] = {}
    for argument, parameter in LAUNCH_OVERRIDES.items():
        text = arguments.get(argument, "").strip()
        if not text:
            continue
        if isinstance(NODE_PARAMETERS.get(parameter, ("",))[0], bool):
            if text.lower() not in ("true", "false"):
                raise ValueError(f"launch argument {argument} must be true or false, got {text!r}")
            overrides[parameter] = text.lower() == "true"
        else:
            overrides[parameter] = text
    return overrides


def unknown_parameter_warnings(overrides: Iterable[str], declared: Iterable[str]) -> list[str]:
    """One warning per override (params file, --ros-args -p) that names no declared parameter: ROS keeps
    such values without applying them, so a typo or a launch argument's name in a params file would
    otherwise change nothing, silently. Each names the closest declared parameter when there is one."""
    known = set(declared)
    warnings = []
    for name in sorted(set(overrides) - known):
        launch_target = LAUNCH_OVERRIDES.get(name)
        if launch_target in known:
            hint = f"; did you mean {launch_target}? (the launch argument {name} sets it)"
        else:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else " (ros2 param list shows the node's parameters)"
        warnings.append(f"unknown parameter {name} is ignored{hint}")
    return warnings


def parameter_error(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not valid for node parameter ``name`` (range, choice), or None. The tracker.*
    parameters are checked by building the backend config."""
    if name == "backend" and value not in available_backends():
        return f"backend {value!r} is not registered; available: {', '.join(available_backends())}"
    if name in AT_LEAST_ONE and value < 1:
        return f"{name} must be at least 1, got {value}"
    if name == "qos.reliability" and value not in ("best_effort", "reliable"):
        return f"qos.reliability must be best_effort or reliable, got {value!r}"
    return None

