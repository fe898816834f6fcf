"""Typed configuration: dataclasses built from plain mappings or YAML files, strictly checked.

Every setting is declared once, with its default and a one-line description (``setting``/``section``);
``describe`` lists them (dotted names for nested sections) for the CLI and the ROS node's parameters.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Type, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its default and description."""
    return dataclasses.field(default=default, metadata={"help": help})


def check_thresholds(lost_threshold: float, tracking_threshold: float) -> None:
    """The tracking-state thresholds every backend reports with: 0 < lost <= tracking <= 1."""
    if not 0 < lost_threshold <= tracking_threshold <= 1:
        raise ConfigError("thresholds must satisfy 0 < lost_threshold <= tracking_threshold <= 1")


def section(cls: Type, help: str) -> Any:
    """A nested config section (a dataclass field defaulting to ``cls()``) with its description."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class SettingInfo:
    name: str  # dotted path, e.g. "gem.reg"
    type: type  # bool, int, float, str, or tuple/list for sequences
    value: Any  # default, or the value in the described instance
    help: str


def describe(config: Any, prefix: str = "") -> list[SettingInfo]:
    """Every leaf setting of a config dataclass (class or instance), depth first, in declaration order."""
    hints = typing.get_type_hints(config if isinstance(config, type) else type(config))
    infos = []
    for f in dataclasses.fields(config):
        name = prefix + f.name
        annotation = hints[f.name]
        if isinstance(config, type):
            value = f.default_factory() if f.default is dataclasses.MISSING else f.default
        else:
            value = getattr(config, f.name)
        if dataclasses.is_dataclass(annotation):
            infos.extend(describe(value, name + "."))
        else:
            kind = typing.get_origin(annotation) or annotation
            infos.append(SettingInfo(name, kind, value, f.metadata.get("help", "")))
    return infos


def nest(flat: Mapping[str, Any]) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}; nested mappings pass through."""
    nested: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = nest(value) if isinstance(value, Mapping) else value
    return nested


def _deep_merge(base: dict, top: Mapping[str, Any]) -> dict:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def with_overrides(config: T, overrides: Optional[Mapping[str, Any]], where: str = "config") -> T:
    """A copy of ``config`` with ``overrides`` (nested mappings or dotted keys) applied and checked."""
    if not overrides:
        return config
    return from_dict(type(config), _deep_merge(dataclasses.asdict(config), nest(overrides)), where)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is typing.Union:
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(value, non_none[0], where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: Type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrongly typed values raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_yaml(cls: Type[T], path: str | Path) -> T:
    """Load dataclass ``cls`` from a YAML file whose top level is a mapping of its fields."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    return from_dict(cls, data, where=str(path))


def to_dict(config: Any) -> dict:
    """Plain-dict view of a config dataclass (for logging and saving next to results)."""
    return dataclasses.asdict(config)
