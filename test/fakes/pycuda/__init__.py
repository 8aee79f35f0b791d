"""Fake pycuda package: see driver.py."""
