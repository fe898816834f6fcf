"""Launch the segtrack node on a camera topic.

ros2 launch segtrack tracker.launch.py image:=/camera/image_raw backend:=d3s2 device:=cuda
Then set a target: ros2 service call /segtrack/set_target segtrack/srv/SetTarget "{type: 0, box: ...}"
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

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


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="camera image topic (sensor_msgs/Image; <image>/compressed "
                                          "with use_compressed)"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("segtrack"), "config",
                                                                  "tracker.yaml"]),
                              description="node parameters YAML"),
        DeclareLaunchArgument("backend", default_value="d3s2", description="tracker backend"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("use_compressed", default_value="false",
                              description="subscribe to <image>/compressed"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
    ]
    node = Node(
        package="segtrack",
        executable="segtrack_node",
        name="segtrack",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
                "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                "use_compressed": ParameterValue(LaunchConfiguration("use_compressed"), value_type=bool),
            },
        ],
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription(arguments + [OpaqueFunction(function=shared_memory_profile), node])
