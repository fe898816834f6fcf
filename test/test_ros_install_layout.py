"""The venv install looks to ROS tools like a colcon install (no launch_ros needed to check): ros2 launch
finds the launch file by walking share/segtrack without following directory links, ros2 run and launch_ros
run lib/segtrack/segtrack_node, both found through the ament index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prerequisites import needs_ros


pytestmark = needs_ros("the install layout ROS tools look for")

REPO = Path(__file__).resolve().parents[1]
LAYOUT_SCRIPT = REPO / "scripts" / "install_ros_layout.sh"


def lay_out(prefix: Path) -> None:
    subprocess.run([str(LAYOUT_SCRIPT), str(prefix), sys.executable], check=True, capture_output=True, text=True)


def test_layout_is_what_ros2_launch_and_ros2_run_look_for(tmp_path, monkeypatch):
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    prefix = tmp_path / "venv"
    # What earlier setups left behind: directory links, which ros2 launch's search does not enter.
    (prefix / "share" / "segtrack").mkdir(parents=True)
    (prefix / "share" / "segtrack" / "launch").symlink_to(REPO / "launch")
    (prefix / "share" / "segtrack" / "config").symlink_to(REPO / "config")
    lay_out(prefix)
    lay_out(prefix)  # runs on every `make ros`
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))

    share = Path(get_package_share_directory("segtrack"))
    assert share == prefix / "share" / "segtrack"
    walked = {Path(d, f).relative_to(share) for d, _, files in os.walk(share) for f in files}  # no links
    expected = {Path("package.xml"), Path("launch/tracker.launch.py"), Path("config/tracker.yaml"),
                Path("config/fastdds_shm.xml"), Path("config/d3s2/cuda_fp16.yaml")}
    assert expected <= walked
    for relative in expected:
        installed = share / relative
        assert not installed.is_symlink() and installed.read_bytes() == (REPO / relative).read_bytes()

    node = Path(get_package_prefix("segtrack")) / "lib" / "segtrack" / "segtrack_node"
    assert node.is_file() and not node.is_symlink() and os.access(node, os.X_OK)
    assert node.read_text().splitlines()[0] == f"#!{sys.executable}"
    # The executable's interpreter imports the node (run_path without __main__ does not start it).
    check = subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({str(node)!r}, run_name='check')"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert check.returncode == 0, check.stderr


def test_setup_ros_lays_out_the_venv_on_every_run():
    script = (REPO / "scripts" / "setup_ros.sh").read_text()
    call = 'scripts/install_ros_layout.sh "$VENV" "$VENV/bin/python"'
    assert call in script
    assert script.index(call) < script.index("exit 0"), "must run before the up-to-date early exit"
    assert "ln -s" not in script
