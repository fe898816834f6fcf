"""Environment for running ROS 2 from the project venv (the same variables as scripts/ros_env.sh).

Pure: reads only the file system, never imports rclpy, so tests can build a node process's env with it.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def ros_environment(
    repo_root: str | os.PathLike | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Variables to add to ``base`` (default ``os.environ``) so ROS 2 runs from this interpreter's venv.

    Returns only the variables it sets; merge them with ``{**os.environ, **ros_environment()}``.
    """
    repo = Path(repo_root).resolve() if repo_root is not None else REPO_ROOT
    base = os.environ if base is None else base
    prefix = Path(sys.prefix)
    site = Path(sysconfig.get_paths()["purelib"])
    libs = [str(prefix / "lib")] + sorted(str(p) for p in site.glob("ros_*.libs") if p.is_dir())
    return {
        "LD_LIBRARY_PATH": _prepend(libs, base.get("LD_LIBRARY_PATH")),
        "AMENT_PREFIX_PATH": _prepend([str(prefix)], base.get("AMENT_PREFIX_PATH")),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        # Fast DDS 3 reads this; the deprecated FASTRTPS_* name would only add a warning per node.
        "FASTDDS_DEFAULT_PROFILES_FILE": str(repo / "config" / "fastdds_shm.xml"),
    }


def _prepend(paths: list[str], existing: str | None) -> str:
    rest = [p for p in (existing or "").split(os.pathsep) if p and p not in paths]
    return os.pathsep.join(paths + rest)
