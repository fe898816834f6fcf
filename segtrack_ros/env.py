"""Environment for running ROS 2 from the project venv (the same variables as scripts/ros_env.sh).

Pure: reads only the file system, never imports rclpy, so tests can build a node process's env with it.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The shipped config/ folder: the source tree's, else the installed share/segtrack/config on
    AMENT_PREFIX_PATH (a colcon install has no source tree beside the package)."""
    source = REPO_ROOT / "config"
    if source.is_dir():
        return source
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        installed = Path(prefix) / "share" / "segtrack" / "config"
        if prefix and installed.is_dir():
            return installed
    raise FileNotFoundError(f"segtrack's config/ is neither at {source} nor in share/segtrack of AMENT_PREFIX_PATH")


def ros_environment(
    repo_root: str | os.PathLike | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Variables to add to ``base`` (default ``os.environ``) so ROS 2 runs from this interpreter's venv.

    Returns only the variables it sets; merge them with ``{**os.environ, **ros_environment()}``.
    """
    config = Path(repo_root).resolve() / "config" if repo_root is not None else config_dir()
    base = os.environ if base is None else base
    prefix = Path(sys.prefix)
    site = Path(sysconfig.get_paths()["purelib"])
    libs = [str(prefix / "lib")] + sorted(str(p) for p in site.glob("ros_*.libs") if p.is_dir())
    return {
        "LD_LIBRARY_PATH": _prepend(libs, base.get("LD_LIBRARY_PATH")),
        "AMENT_PREFIX_PATH": _prepend([str(prefix)], base.get("AMENT_PREFIX_PATH")),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        # Fast DDS 3 reads this; the deprecated FASTRTPS_* name would only add a warning per node.
        "FASTDDS_DEFAULT_PROFILES_FILE": str(config / "fastdds_shm.xml"),
    }


def _prepend(paths: list[str], existing: str | None) -> str:
    rest = [p for p in (existing or "").split(os.pathsep) if p and p not in paths]
    return os.pathsep.join(paths + rest)
