#!/usr/bin/env bash
# Usage: install_ros_layout.sh PREFIX PYTHON
# Lays the segtrack package out in PREFIX as a colcon install does, so that ROS tools find it there:
# real files in share/segtrack (ros2 launch's file search does not follow directory links),
# lib/segtrack/segtrack_node (ros2 run, launch_ros) run by PYTHON, and the ament index entry.
# setup_ros.sh runs it on the venv every time, so edits to launch/ and config/ reach the install.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 PREFIX PYTHON" >&2; exit 2; }
PREFIX=$1
PYTHON=$2
share="$PREFIX/share/segtrack"
rm -rf "$share/launch" "$share/config"  # earlier versions linked these to the sources
mkdir -p "$share/launch" "$share/config" "$PREFIX/lib/segtrack" "$PREFIX/share/ament_index/resource_index/packages"
install -m 644 launch/*.launch.py "$share/launch/"
install -m 644 config/*.yaml config/*.xml "$share/config/"
for sets in config/*/; do  # named parameter sets, config/<backend>/<set>.yaml
  mkdir -p "$share/$sets" && install -m 644 "$sets"*.yaml "$share/$sets"
done
install -m 644 package.xml "$share/package.xml"
touch "$PREFIX/share/ament_index/resource_index/packages/segtrack"
node="$PREFIX/lib/segtrack/segtrack_node"
{ echo "#!$PYTHON"; tail -n +2 scripts/segtrack_node; } > "$node.tmp"
chmod 755 "$node.tmp"
mv "$node.tmp" "$node"
