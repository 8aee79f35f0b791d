"""Launch the gps_denied_inference lifecycle node.

    ros2 launch gps_denied_inference inference.launch.py \
        params_file:=/path/params.yaml namespace:=drone1 autostart:=false \
        image_topic:=/camera/image_raw large_data_transport:=true

`autostart:=true` configures and activates at start-up (no lifecycle manager). The Fast DDS
large-data profile is applied to the node's process unless `large_data_transport:=false`;
the camera driver's process needs the same profile (see docs/transport.md).

The profile is named under both variables: Fast DDS 2.x (Humble, Iron, Jazzy) reads
FASTRTPS_DEFAULT_PROFILES_FILE, 3.x (Kilted on) FASTDDS_DEFAULT_PROFILES_FILE, each ignores
the other, so this is right for every distro without reading ROS_DISTRO. It does not set
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA: the profile replaces the builtin transports (the
variable then has no effect), Humble's Fast DDS 2.6 lacks it, and a LARGE_DATA peer does not
exchange frames with a profile peer. To run LARGE_DATA instead (Fast DDS 2.13+, both ends),
pass `large_data_transport:=false` and export the variable before launching.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the lifecycle node, with or without the transport profile."""
    share = get_package_share_directory('gps_denied_inference')
    arguments = [
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'inference.yaml'),
                              description='node parameters (YAML)'),
        DeclareLaunchArgument('namespace', default_value='', description='node namespace'),
        DeclareLaunchArgument('autostart', default_value='false',
                              description='configure and activate at start-up'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='remaps the camera topic the models subscribe to'),
        DeclareLaunchArgument('large_data_transport', default_value='true',
                              description='apply the shipped Fast DDS large-data profile'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=os.path.join(share, 'config',
                                                         'fastdds_large_data.xml'),
                              description='Fast DDS XML profile for large images'),
    ]
    profile = LaunchConfiguration('fastdds_profile')
    common = {
        'package': 'gps_denied_inference',
        'executable': 'inference_node',
        'name': 'gps_denied_inference',
        'namespace': LaunchConfiguration('namespace'),
        'parameters': [LaunchConfiguration('params_file'),
                    {'autostart': LaunchConfiguration('autostart')}],
        'remappings': [('/camera/image_raw', LaunchConfiguration('image_topic'))],
        'output': 'screen',
    }
    with_profile = LifecycleNode(
        condition=IfCondition(LaunchConfiguration('large_data_transport')),
        additional_env={'FASTDDS_DEFAULT_PROFILES_FILE': profile,
                        'FASTRTPS_DEFAULT_PROFILES_FILE': profile},
        **common)
    without_profile = LifecycleNode(
        condition=UnlessCondition(LaunchConfiguration('large_data_transport')), **common)
    return LaunchDescription([*arguments, with_profile, without_profile])
