"""The segtrack node's parameters (no ROS import: the launch/config tests read them without ROS)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional

from segtrack_core.errors import ConfigError
from segtrack_core.parameter_sets import find_parameter_set
from segtrack_core.registry import available_backends, get_backend

NODE_NAME = "segtrack"

# name -> (default, description). config/tracker.yaml holds exactly these keys (a test checks both ways).
PARAMETERS: dict[str, tuple[Any, str]] = {
    "backend": ("d3s2", "tracker backend name (segtrack_core.available_backends())"),
    "tracker_config": ("", "backend parameter set: <backend>/<name> (e.g. d3s2/cuda_fp16) or a YAML path; "
                           "empty = the backend's defaults"),
    "device": ("auto", "torch device: auto, cpu, cuda or cuda:N (backends without a device ignore it)"),
    "half": (False, "fp16 inference (CUDA only; backends without it ignore it)"),
    "weights": ("", "model weights path passed to the backend if its config has a 'weights' field "
                    "(required by siammask: SiamMask_DAVIS.pth or SiamMask_VOT.pth)"),
    "tracking_threshold": (-1.0, "score above which the target is TRACKING; negative = backend default"),
    "lost_threshold": (-1.0, "score below which the target is LOST; negative = backend default"),
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
# process starts (read-only); the rest at the next configure, so they are refused while configured.
LIVE_PARAMETERS = ("tracking_threshold", "lost_threshold", "publish_debug_image", "enabled")
STARTUP_PARAMETERS = ("autostart",)
THRESHOLDS = ("tracking_threshold", "lost_threshold")
AT_LEAST_ONE = ("frame_buffer_size", "frame_buffer_max_mb", "qos.depth", "service_queue_depth")

# Launch arguments of launch/tracker.launch.py that set the node parameter of the same name. Their default
# is "" (not given): only what the user gives overrides the params file.
LAUNCH_OVERRIDES = ("backend", "device", "use_compressed")
# Node parameters forwarded to the backend config when it has a field of that name.
BACKEND_KEYS = ("device", "half", "weights", "tracking_threshold", "lost_threshold")
RUNTIME_KEYS = ("device", "half")


def backend_overrides(backend: str, values: dict[str, Any], warn: Callable[[str], None]) -> dict[str, Any]:
    """Config overrides for ``backend`` from the node parameters a user set (non-default values).

    A parameter the backend's config has no field for is ignored with a warning; unset ones never
    override a value from ``tracker_config``.
    """
    spec = get_backend(backend)
    overrides = {}
    for key in BACKEND_KEYS:
        value = values[key]
        is_set = value >= 0 if key.endswith("_threshold") else value != PARAMETERS[key][0]
        if not is_set:
            continue
        if key in RUNTIME_KEYS and spec.has_runtime:
            overrides[f"runtime.{key}"] = value
        elif key == "weights" and spec.weights_setting:
            overrides[spec.weights_setting] = value
        elif spec.has_setting(key):
            overrides[key] = value
        else:
            warn(f"parameter {key}={value!r} ignored: backend {backend!r} has no such setting")
    return overrides


def launch_overrides(arguments: dict[str, str]) -> dict[str, Any]:
    """Node parameters for the LAUNCH_OVERRIDES arguments the user gave (non-empty text), typed like the
    parameter's default; raises ValueError for a boolean that is not true/false."""
    overrides: dict[str, Any] = {}
    for name in LAUNCH_OVERRIDES:
        text = arguments.get(name, "").strip()
        if not text:
            continue
        if isinstance(PARAMETERS[name][0], bool):
            if text.lower() not in ("true", "false"):
                raise ValueError(f"launch argument {name} must be true or false, got {text!r}")
            overrides[name] = text.lower() == "true"
        else:
            overrides[name] = text
    return overrides


def parameter_error(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not valid for parameter ``name`` (range, choice, existing file), or None."""
    if name == "backend" and value not in available_backends():
        return f"backend {value!r} is not registered; available: {', '.join(available_backends())}"
    if name == "device" and not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", value):
        return f"device must be auto, cpu, cuda or cuda:N, got {value!r}"
    if name == "tracker_config" and value and not Path(value).is_file():
        if value.endswith(".yaml") or Path(value).is_absolute() or value.count("/") != 1:
            return f"tracker_config {value!r} is not a file, nor a parameter set <backend>/<name>"
        try:
            find_parameter_set(value.split("/")[0], value)
        except ConfigError as exc:
            return str(exc)
    if name in THRESHOLDS and not (value < 0 or 0 < value <= 1):
        return f"{name} must be in (0, 1], or negative for the backend's default; got {value}"
    if name in AT_LEAST_ONE and value < 1:
        return f"{name} must be at least 1, got {value}"
    if name == "qos.reliability" and value not in ("best_effort", "reliable"):
        return f"qos.reliability must be best_effort or reliable, got {value!r}"
    return None
