"""The node's own command line: everything but ROS arguments is `--help` or a refusal.

rclpy ignores arguments outside `--ros-args`, so `--params-file x.yaml` given without it
would start a node that silently never read its parameters; such a start is refused.
"""

import sys
from typing import List, Optional, TextIO

USAGE = """\
usage: ros2 run gps_denied_inference inference_node --ros-args [ROS arguments]
       python -m gps_denied_inference.node --ros-args [ROS arguments]

The gps_denied_inference lifecycle node. It starts unconfigured: drive it with
`ros2 lifecycle set <node> configure|activate`, a lifecycle manager, or -p autostart:=true.
ROS arguments, e.g.:
  --params-file PARAMS.yaml    parameters (the installed config/inference.yaml shows them all)
  -p NAME:=VALUE               one parameter
  -r __node:=NAME              the node's name
Parameters, topics and diagnostics: the README; pre-flight tools: python -m gps_denied_inference
"""


def non_ros_arguments(argv: List[str]) -> List[str]:
    """`argv` without its program name and without every ROS argument."""
    from rclpy.utilities import remove_ros_args

    return list(remove_ros_args(argv))[1:]


def refuse_or_help(argv: Optional[List[str]] = None, out: TextIO = sys.stdout,
                   err: TextIO = sys.stderr) -> Optional[int]:
    """The exit code for a command line the node must not start with; None to start.

    0 after printing the usage for -h / --help; 2 for any other non-ROS argument, or for ROS
    arguments rcl cannot parse (a params file that does not exist), said in one line.
    """
    try:
        extra = non_ros_arguments(list(sys.argv if argv is None else argv))
    except Exception as error:  # noqa: B902 - rclpy's RCLInvalidROSArgsError, module per distro
        err.write(f'error: {" ".join(str(error).split())}\n')
        return 2
    if not extra:
        return None
    if extra[0] in ('-h', '--help'):
        out.write(USAGE)
        return 0
    err.write(f'{USAGE}\nerror: unrecognized argument(s) {" ".join(extra)}: ROS arguments '
              'go after --ros-args (e.g. --ros-args --params-file PARAMS.yaml)\n')
    return 2
