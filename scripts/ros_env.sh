# Source me (bash): runtime environment for ROS 2 from the project venv (see scripts/setup_ros.sh).
# The variables come from scripts/ros_harness/env.py, run by the venv's Python.
_segtrack_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_segtrack_venv=$(cd "${VENV:-$_segtrack_repo/.venv}" && pwd)
eval "$(PYTHONPATH="$_segtrack_repo/scripts" "$_segtrack_venv/bin/python" -m ros_harness.env)"
unset _segtrack_repo _segtrack_venv
