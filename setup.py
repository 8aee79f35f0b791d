"""ament_python build for gps_denied_inference (colcon on the drone, pip in the dev venv)."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'gps_denied_inference'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*')),
    ],
    install_requires=['setuptools'],
    # colcon test runs pytest only for packages that declare it here.
    tests_require=['pytest', 'pytest-timeout'],
    extras_require={'test': ['pytest', 'pytest-timeout']},
    zip_safe=True,
    maintainer='gps_denied_inference maintainers',
    maintainer_email='dev@gps-denied-inference.local',
    description='Gated, budgeted TensorRT / ONNX Runtime inference as a ROS 2 lifecycle node.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'inference_node = gps_denied_inference.node.lifecycle_node:main',
            'gps_denied_inference = gps_denied_inference.cli:main',
        ],
    },
)
