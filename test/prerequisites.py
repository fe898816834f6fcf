"""What a test needs beyond the Python packages (the shared data, ROS 2 in the venv), in one place.

Where a prerequisite is missing a test is skipped with a reason naming what was not checked, except
under CI (CI=true), where every prerequisite is installed by `make test` and a missing one is a failure:
a skip must not hide a test CI is meant to run.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
ROS_INSTALLED = importlib.util.find_spec("rclpy") is not None


def missing(what: str, unchecked: str) -> None:
    """Skip (fail under CI): ``what`` is missing, so ``unchecked`` was not checked."""
    message = f"{what} is missing, so {unchecked} was not checked"
    if IN_CI:
        pytest.fail(message + " (CI must run it)")
    pytest.skip(message)


def needs_ros(unchecked: str):
    """Marker for tests that run ROS 2 (rclpy from `make ros`); under CI they always run."""
    return pytest.mark.skipif(not ROS_INSTALLED and not IN_CI,
                              reason=f"ROS 2 is not installed in this venv (`make ros`), so {unchecked} "
                                     f"was not checked")
