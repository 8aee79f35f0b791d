"""The node's command line: --help answers, a non-ROS argument is refused, ROS ones start it."""

import io
import subprocess
import sys

import pytest

from gps_denied_inference.node.command_line import refuse_or_help


def answer(*argv):
    out, err = io.StringIO(), io.StringIO()
    return refuse_or_help(['inference_node', *argv], out, err), out.getvalue(), err.getvalue()


@pytest.mark.parametrize('argv', [
    (), ('--ros-args', '--params-file', '{params}'),
    ('--ros-args', '-p', 'autostart:=true', '-r', '__node:=front', '--'),
])
def test_ros_arguments_alone_start_the_node(tmp_path, argv):
    params = tmp_path / 'p.yaml'
    params.write_text('/**:\n  ros__parameters:\n    autostart: false\n')
    assert answer(*(a.format(params=params) for a in argv)) == (None, '', '')


def test_a_params_file_that_does_not_exist_is_one_line_not_a_traceback(tmp_path):
    code, out, err = answer('--ros-args', '--params-file', str(tmp_path / 'absent.yaml'))
    assert code == 2 and out == '' and err.startswith('error: ')
    assert 'absent.yaml' in err and err.count('\n') == 1


@pytest.mark.parametrize('flag', ['-h', '--help'])
def test_help_prints_the_usage_and_exits_0(flag):
    code, out, err = answer(flag, '--ros-args', '-r', '__node:=front')
    assert code == 0 and out.startswith('usage: ros2 run gps_denied_inference inference_node')
    assert '--params-file PARAMS.yaml' in out and err == ''


@pytest.mark.parametrize('argv, named', [
    (('--params-file', 'p.yaml'), '--params-file p.yaml'),
    (('p.yaml', '--ros-args', '-r', '__node:=front'), 'p.yaml'),
])
def test_an_argument_outside_ros_args_is_refused_naming_it(argv, named):
    """Rclpy would ignore it: the node would start without the parameters it names."""
    code, out, err = answer(*argv)
    assert code == 2 and out == ''
    assert f'unrecognized argument(s) {named}: ROS arguments go after --ros-args' in err


def test_the_node_process_answers_help_without_starting():
    done = subprocess.run([sys.executable, '-m', 'gps_denied_inference.node', '--help'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith('usage:'), done.stderr
