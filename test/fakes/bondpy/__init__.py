"""Fake bondpy package: see bondpy.py."""
