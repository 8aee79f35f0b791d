"""Gated, budgeted neural inference for GPS-denied drone navigation, as a ROS 2 lifecycle node.

Importing the package imports no GPU library and no ROS library.
"""

__version__ = '0.1.0'
