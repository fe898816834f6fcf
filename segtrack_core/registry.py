"""Tracker backends by name, each with its typed config dataclass and its named parameter sets.

The registry sits above the trackers: it lists them, they do not know it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Type, Union

from .config import from_dict, load_yaml, with_overrides
from .errors import ConfigError, UnknownBackendError
from .parameter_sets import find_parameter_set
from .trackers.base import Tracker
from .trackers.csrt import CsrtConfig, CsrtTracker
from .trackers.d3s2 import D3S2Config, D3S2Tracker
from .trackers.siammask import SiamMaskConfig, SiamMaskTracker


@dataclasses.dataclass(frozen=True)
class Backend:
    config_cls: Type
    tracker_cls: Type[Tracker]
    description: str
    weights_setting: Optional[str] = None  # the (dotted) setting holding its weights file, if it takes one
    needs_weights: bool = False  # refuses to start without a weights file

    @property
    def name(self) -> str:
        return self.tracker_cls.name

    @property
    def has_runtime(self) -> bool:
        """Whether it computes with torch, configured by a ``runtime`` section (device, half, threads)."""
        return any(f.name == "runtime" for f in dataclasses.fields(self.config_cls))


BACKENDS: Dict[str, Backend] = {b.name: b for b in (
    Backend(D3S2Config, D3S2Tracker, "D3S2-style segmentation tracker (GEM DCF + GIM memories, EfficientNet-Lite "
                                     "ImageNet backbone, online learning)", weights_setting="features.weights"),
    Backend(CsrtConfig, CsrtTracker, "OpenCV TrackerCSRT (box only, box filled as mask); baseline"),
    Backend(SiamMaskConfig, SiamMaskTracker, "SiamMask (sharp) with the official weights (ResNet-50, RPN + "
                                             "refined mask); needs --weights",
            weights_setting="weights", needs_weights=True),
)}


def available_backends() -> Dict[str, str]:
    """Name -> one-line description of every backend."""
    return {name: b.description for name, b in sorted(BACKENDS.items())}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(f"unknown tracker backend {name!r}; available: {sorted(BACKENDS)}") from None


ConfigSource = Union[None, Mapping[str, Any], str, Path, Any]


def make_config(name: str, source: ConfigSource = None, **overrides: Any) -> Any:
    """Typed config of backend ``name``: its defaults (None), a mapping, a dataclass, a YAML path or the name
    of one of its parameter sets (``cuda_fp16``, or ``d3s2/cuda_fp16``; ``default`` is the defaults where
    no such file exists), then ``overrides`` (keyword or dotted names of nested settings, e.g. ``{"runtime.device": "cpu"}``)."""
    backend = get_backend(name)
    path = find_parameter_set(name, source) if isinstance(source, (str, Path)) else None
    if path is not None:
        config = load_yaml(backend.config_cls, path)
    elif source is None or isinstance(source, (str, Path)):
        config = backend.config_cls()
    elif isinstance(source, Mapping):
        config = from_dict(backend.config_cls, source, where=f"{name} config")
    elif isinstance(source, backend.config_cls):
        config = source
    else:
        raise ConfigError(f"cannot build a {name} config from {type(source).__name__}")
    return with_overrides(config, overrides, where=f"{name} config")


def create_tracker(name: str = "d3s2", config: ConfigSource = None, **overrides: Any) -> Tracker:
    """Build backend ``name`` from its config (see make_config)."""
    backend = get_backend(name)
    return backend.tracker_cls(make_config(name, config, **overrides))


def make_tracker(name: str, config: ConfigSource = None, device: Optional[str] = None,
                 weights: Optional[str] = None) -> Tracker:
    """Build a backend from command-line style options: ``device`` applies to backends that run torch
    (the others compute on the CPU), ``weights`` is refused by backends that take none."""
    backend = get_backend(name)
    overrides: Dict[str, Any] = {}
    if device is not None and backend.has_runtime:
        overrides["runtime.device"] = device
    if weights is not None:
        if backend.weights_setting is None:
            raise ConfigError(f"backend {name!r} takes no weights (--weights)")
        overrides[backend.weights_setting] = weights
    return create_tracker(name, config, **overrides)
