"""Fake polygraphy.backend package: see trt.py."""
