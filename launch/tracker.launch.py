"""Launch the segtrack node on a camera topic.

ros2 launch segtrack tracker.launch.py image:=/camera/image_raw backend:=d3s2 device:=cuda
backend, device (tracker.runtime.device) and use_compressed override the params file only when given.
Then set a target: ros2 service call /segtrack/set_target segtrack/srv/SetTarget "{type: 0, box: ...}"
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from segtrack_ros.parameters import LAUNCH_OVERRIDES, launch_overrides

# Fast DDS 2 (Humble, Jazzy) reads FASTRTPS_*, Fast DDS 3 (Kilted on) FASTDDS_* and warns about the other.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


def shared_memory_profile(context, *args, **kwargs):
    """Point Fast DDS at the shipped large-segment SHM profile unless the user chose a profile already."""
    if any(os.environ.get(name) for name in PROFILE_VARIABLES):
        return []
    profile = PathJoinSubstitution([FindPackageShare("segtrack"), "config", "fastdds_shm.xml"]).perform(context)
    fast_dds_2 = os.environ.get("ROS_DISTRO", "") in FAST_DDS_2_DISTROS
    return [SetEnvironmentVariable(PROFILE_VARIABLES[1] if fast_dds_2 else PROFILE_VARIABLES[0], profile)]


def segtrack_node(context, *args, **kwargs):
    """The node, with the params file first and only the launch arguments the user gave on top."""
    overrides = launch_overrides({name: LaunchConfiguration(name).perform(context) for name in LAUNCH_OVERRIDES})
    return [Node(
        package="segtrack",
        executable="segtrack_node",
        name="segtrack",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")] + ([overrides] if overrides else []),
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="camera image topic (sensor_msgs/Image; <image>/compressed "
                                          "with use_compressed)"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("segtrack"), "config",
                                                                  "tracker.yaml"]),
                              description="node parameters YAML"),
        # Empty = not given: the params file's value, else the node's default, is used.
        DeclareLaunchArgument("backend", default_value="", description="tracker backend"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N (tracker.runtime.device)"),
        DeclareLaunchArgument("use_compressed", default_value="",
                              description="true: subscribe to <image>/compressed"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=shared_memory_profile),
                                          OpaqueFunction(function=segtrack_node)])
