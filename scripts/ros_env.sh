# Source me (bash): runtime environment for ROS 2 from the project venv (see scripts/setup_ros.sh).
# Mirrors segtrack_ros/env.py:ros_environment(); keep the two in step.
_segtrack_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_segtrack_venv=$(cd "${VENV:-$_segtrack_repo/.venv}" && pwd)
_segtrack_site=$("$_segtrack_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
_segtrack_libs="$_segtrack_venv/lib"
for _segtrack_dir in "$_segtrack_site"/ros_*.libs; do
  if [ -d "$_segtrack_dir" ]; then _segtrack_libs="$_segtrack_libs:$_segtrack_dir"; fi
done
export LD_LIBRARY_PATH="$_segtrack_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export AMENT_PREFIX_PATH="$_segtrack_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Large best-effort images need shared memory with a big segment (Fast DDS defaults drop them).
# Fast DDS 3 reads FASTDDS_*; setting the deprecated FASTRTPS_* too makes every node log a warning.
export FASTDDS_DEFAULT_PROFILES_FILE="$_segtrack_repo/config/fastdds_shm.xml"
export PATH="$_segtrack_venv/bin:$PATH"
unset _segtrack_repo _segtrack_venv _segtrack_site _segtrack_libs _segtrack_dir
