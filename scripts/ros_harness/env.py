"""Environment for running ROS 2 from the project venv; the one source of scripts/ros_env.sh's variables.

Pure: reads only the file system, never imports rclpy, so tests can build a node process's env with it.
`python -m ros_harness.env` prints the variables as shell `export` lines (what ros_env.sh evaluates).
"""

from __future__ import annotations

import os
import shlex
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"


def ros_environment() -> dict[str, str]:
    """Variables to add to ``os.environ`` so ROS 2 runs from this interpreter's venv.

    Returns only the variables it sets; merge them with ``{**os.environ, **ros_environment()}``.
    """
    base = os.environ
    prefix = Path(sys.prefix)
    site = Path(sysconfig.get_paths()["purelib"])
    libs = [str(prefix / "lib")] + sorted(str(p) for p in site.glob("ros_*.libs") if p.is_dir())
    return {
        "LD_LIBRARY_PATH": _prepend(libs, base.get("LD_LIBRARY_PATH")),
        "AMENT_PREFIX_PATH": _prepend([str(prefix)], base.get("AMENT_PREFIX_PATH")),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        # Large best-effort images need shared memory with a big segment (Fast DDS defaults drop them).
        # Fast DDS 3 reads this; the deprecated FASTRTPS_* name would only add a warning per node.
        "FASTDDS_DEFAULT_PROFILES_FILE": str(CONFIG_DIR / "fastdds_shm.xml"),
        "PATH": _prepend([str(prefix / "bin")], base.get("PATH")),
    }


def _prepend(paths: list[str], existing: str | None) -> str:
    rest = [p for p in (existing or "").split(os.pathsep) if p and p not in paths]
    return os.pathsep.join(paths + rest)


if __name__ == "__main__":
    for name, value in ros_environment().items():
        print(f"export {name}={shlex.quote(value)}")
