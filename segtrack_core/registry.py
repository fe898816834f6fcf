"""Tracker backends by name, each with its typed config dataclass."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Type, Union

from .config import from_dict, load_yaml
from .errors import ConfigError, UnknownBackendError
from .trackers.base import Tracker


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    config_cls: Type
    factory: Callable[[Any], Tracker]
    description: str
    needs_weights: bool = False  # refuses to start without a weights file (its config's 'weights')


_BACKENDS: Dict[str, Backend] = {}


def register_backend(name: str, config_cls: Type, description: str, needs_weights: bool = False) -> Callable:
    """Class decorator: register a Tracker subclass constructed as ``cls(config)``."""

    def wrap(cls: Type[Tracker]) -> Type[Tracker]:
        if name in _BACKENDS:
            raise ValueError(f"tracker backend {name!r} registered twice")
        _BACKENDS[name] = Backend(name, config_cls, cls, description, needs_weights)
        cls.name = name
        return cls

    return wrap


BUILTIN_BACKEND_MODULES = ("segtrack_core.trackers.d3s2", "segtrack_core.trackers.csrt",
                           "segtrack_core.trackers.siammask")


def _ensure_builtin_backends() -> None:
    # Imported lazily: backend modules import this one to register themselves.
    for module in BUILTIN_BACKEND_MODULES:
        importlib.import_module(module)


def available_backends() -> Dict[str, str]:
    """Name -> one-line description of every registered backend."""
    _ensure_builtin_backends()
    return {name: b.description for name, b in sorted(_BACKENDS.items())}


def get_backend(name: str) -> Backend:
    _ensure_builtin_backends()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(f"unknown tracker backend {name!r}; available: {sorted(_BACKENDS)}") from None


def make_config(name: str, source: Union[None, Mapping[str, Any], str, Path] = None,
                **overrides: Any) -> Any:
    """Typed config of backend ``name`` from defaults, a mapping or a YAML path, plus keyword overrides."""
    backend = get_backend(name)
    if source is None:
        config = backend.config_cls()
    elif isinstance(source, (str, Path)):
        config = load_yaml(backend.config_cls, source)
    elif isinstance(source, Mapping):
        config = from_dict(backend.config_cls, source, where=f"{name} config")
    elif isinstance(source, backend.config_cls):
        config = source
    else:
        raise ConfigError(f"cannot build a {name} config from {type(source).__name__}")
    if overrides:
        merged = {**dataclasses.asdict(config), **overrides}
        config = from_dict(backend.config_cls, merged, where=f"{name} config")
    return config


def create_tracker(name: str = "d3s2", config: Optional[Any] = None, **overrides: Any) -> Tracker:
    """Build backend ``name`` from its config (None = defaults; mapping, YAML path or dataclass)."""
    backend = get_backend(name)
    return backend.factory(make_config(name, config, **overrides))
