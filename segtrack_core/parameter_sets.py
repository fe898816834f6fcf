"""Named parameter sets: YAML files ``<backend>/<name>.yaml`` (as pytracking's parameter files), found on
a search path so that the CLI, the library and the ROS node select them by name.

Search order: the folders in ``SEGTRACK_CONFIG_PATH`` (os.pathsep-separated), the ``config/`` folder of a
source checkout this package runs from, then ``share/segtrack/config`` under every ament prefix
(``AMENT_PREFIX_PATH``, a colcon install) and under this Python's prefix (a pip install).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, Union

from .errors import ConfigError

SOURCE_CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_SET = "default"  # every backend has it: its config's defaults, or config/<backend>/default.yaml


def search_path() -> list[Path]:
    folders = [Path(p) for p in os.environ.get("SEGTRACK_CONFIG_PATH", "").split(os.pathsep) if p]
    if (SOURCE_CHECKOUT / "package.xml").is_file():
        folders.append(SOURCE_CHECKOUT / "config")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    folders += [Path(prefix) / "share" / "segtrack" / "config" for prefix in prefixes]
    return [folder for folder in folders if folder.is_dir()]


def find_parameter_set(backend: str, name: Union[str, Path]) -> Optional[Path]:
    """The YAML file for ``name``: a path to a file, ``<set>`` of ``backend`` or ``<backend>/<set>``; None
    for DEFAULT_SET of a backend without that file (its config's defaults)."""
    path = Path(name)
    if path.is_file():
        return path
    text = str(name).removesuffix(".yaml")
    relative = Path(text) if "/" in text else Path(backend) / text
    if relative.parts[0] != backend:
        raise ConfigError(f"parameter set {name!r} belongs to backend {relative.parts[0]!r}, not {backend!r}")
    for folder in search_path():
        if (folder / relative).with_suffix(".yaml").is_file():
            return (folder / relative).with_suffix(".yaml")
    if relative == Path(backend) / DEFAULT_SET:
        return None
    raise ConfigError(f"no file or parameter set {str(name)!r}; {backend}'s sets: "
                      f"{', '.join(parameter_sets(backend)) or 'none'}")


def parameter_sets(backend: str) -> list[str]:
    """Names of the parameter sets of ``backend`` found on the search path."""
    names = {p.stem for folder in search_path() for p in (folder / backend).glob("*.yaml")}
    return sorted(names)

