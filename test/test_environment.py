"""The ROS 2 environment is real: rclpy lifecycle services answer, the ament index resolves."""

import ast
import os
from pathlib import Path
import shutil
import subprocess
import sys
import threading

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from gps_denied_inference.demo.lifecycle_client import LifecycleClient
from gps_denied_inference.spin_thread import SpinThread


class _ProbeNode(LifecycleNode):
    def __init__(self, context):
        super().__init__('environment_probe', context=context)
        self.configured = False

    def on_configure(self, state):
        self.configured = True
        return TransitionCallbackReturn.SUCCESS


def _call(client, request, timeout_s):
    """Client.call with a timeout, as Humble's rclpy allows (call(timeout_sec) is Jazzy on)."""
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    assert done.wait(timeout_s), f'no response from {client.srv_name} in {timeout_s} s'
    return future.result()


def test_lifecycle_configure_through_the_change_state_service(ros_context):
    node = _ProbeNode(ros_context)
    client_node = rclpy.create_node('environment_probe_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(client_node)
    spinner = SpinThread(executor).start()
    try:
        change = client_node.create_client(ChangeState, '/environment_probe/change_state')
        get = client_node.create_client(GetState, '/environment_probe/get_state')
        # Discovered is not answerable: Fast DDS drops a response to a client whose response
        # reader the server has not matched yet ('client will not receive response'). A
        # get_state round trip from clients created after ours shows the server has matched
        # ours too: one participant's endpoints are announced, and matched, in creation order.
        assert LifecycleClient(client_node, '/environment_probe').wait_for_services(30.0)
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_CONFIGURE
        response = _call(change, request, 10.0)
        assert response is not None and response.success
        assert node.configured
        state = _call(get, GetState.Request(), 10.0)
        assert state.current_state.id == State.PRIMARY_STATE_INACTIVE
    finally:
        spinner.stop()
        node.destroy_node()
        client_node.destroy_node()


def test_package_share_directory_resolves():
    from ament_index_python.packages import get_package_share_directory

    share = get_package_share_directory('gps_denied_inference')
    assert os.path.isfile(os.path.join(share, 'package.xml'))
    assert os.path.isdir(os.path.join(share, 'launch'))
    assert os.path.isdir(os.path.join(share, 'config'))


def test_package_xml_is_format_3_ament_python():
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(os.path.join(os.path.dirname(__file__), '..',
                                          'package.xml')).getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'gps_denied_inference'
    assert root.find('export/build_type').text == 'ament_python'
    depends = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'diagnostic_msgs', 'lifecycle_msgs', 'python3-numpy',
            'python3-opencv'} <= depends


ROOT = Path(__file__).resolve().parents[1]
# Imported module -> rosdep key; None: no rosdep key (pip, JetPack; docs/humble.md).
ROSDEP_KEYS = {
    'rclpy': 'rclpy', 'rcl_interfaces': 'rcl_interfaces', 'sensor_msgs': 'sensor_msgs',
    'diagnostic_msgs': 'diagnostic_msgs', 'lifecycle_msgs': 'lifecycle_msgs',
    'std_msgs': 'std_msgs', 'ament_index_python': 'ament_index_python', 'launch': 'launch',
    'launch_ros': 'launch_ros', 'numpy': 'python3-numpy', 'cv2': 'python3-opencv',
    'onnx': None, 'onnxruntime': None, 'tensorrt': None, 'pycuda': None, 'polygraphy': None,
    'pynvml': None, 'yaml': 'python3-yaml', 'bondpy': 'bondpy',
}


def _package_xml():
    import xml.etree.ElementTree as ElementTree

    return ElementTree.parse(ROOT / 'package.xml').getroot()


def _imported_by_name(node):
    """importlib.import_module('a.b') with a literal name (an optional dependency)."""
    return (isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'import_module'
            and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str))


def _third_party_imports():
    names = set()
    for path in [*ROOT.joinpath('gps_denied_inference').rglob('*.py'),
                 *ROOT.joinpath('launch').glob('*.py')]:
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split('.')[0])
            elif _imported_by_name(node):
                names.add(node.args[0].value.split('.')[0])
    return names - set(sys.stdlib_module_names) - {'gps_denied_inference'}


def test_package_xml_declares_every_ros_package_the_sources_import():
    imported = _third_party_imports()
    assert imported <= set(ROSDEP_KEYS), f'no rosdep decision for {imported - set(ROSDEP_KEYS)}'
    declared = {e.text for e in _package_xml().findall('exec_depend')}
    needed = {ROSDEP_KEYS[name] for name in imported} - {None}
    assert needed <= declared, f'exec_depend missing: {sorted(needed - declared)}'
    assert declared <= needed, f'exec_depend unused at run time: {sorted(declared - needed)}'


def test_colcon_test_finds_pytest_and_its_plugins():
    """Colcon runs pytest only when setup.py declares it; the timeout needs the plugin."""
    setup_call = next(node for node in ast.walk(ast.parse((ROOT / 'setup.py').read_text()))
                      if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup')
    keywords = {k.arg: ast.literal_eval(k.value) for k in setup_call.keywords
                if k.arg in ('tests_require', 'extras_require')}
    # Older colcon-core (Humble's) reads tests_require, newer ones extras_require['test'].
    assert {'pytest', 'pytest-timeout'} <= set(keywords.get('tests_require', []))
    assert {'pytest', 'pytest-timeout'} <= set(keywords.get('extras_require', {}).get('test', []))
    test_depends = {e.text for e in _package_xml().findall('test_depend')}
    assert {'python3-pytest', 'python3-pytest-timeout'} <= test_depends


def test_no_ament_linter_is_declared_without_its_test():
    linters = {'ament_copyright': 'test_copyright.py', 'ament_flake8': 'test_flake8.py',
               'ament_pep257': 'test_pep257.py'}
    declared = {e.text for e in _package_xml().iter() if e.tag.endswith('depend')}
    for linter, test in linters.items():
        assert linter not in declared or (ROOT / 'test' / test).is_file(), linter


def _pins(name):
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    pins = [line.split('==') for line in lines if line.strip() and not line.startswith('#')]
    assert all(len(pin) == 2 for pin in pins), f'{name}: every requirement pinned with =='
    return dict(pins)


def test_the_humble_set_keeps_numpy_1_and_the_drones_library_versions():
    drone, wheels = _pins('humble.txt'), _pins('humble-wheels.txt')
    assert drone['numpy'].startswith('1.21.')
    assert drone['onnxruntime'] == '1.16.3' and drone['onnx'].startswith('1.15.')
    assert wheels['opencv-python-headless'].startswith('4.5.4.')
    assert int(wheels['ros-rclpy'].split('.')[0]) < 9  # Jazzy's: lifecycle as on Humble
    assert not set(drone) & set(wheels)


def test_the_humble_stack_without_python_3_10_says_how_to_get_one():
    path = '/usr/bin:/bin'
    if shutil.which('python3.10', path=path):
        pytest.skip('this host has a system python3.10')
    result = subprocess.run(['bash', str(ROOT / 'tools' / 'env.sh'), 'true'],
                            env={'PATH': path, 'HOME': '/nonexistent', 'GDI_STACK': 'humble'},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert 'no Python 3.10 found' in result.stderr and 'pyenv install 3.10' in result.stderr
