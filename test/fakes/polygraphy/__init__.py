"""Fake polygraphy package: see backend/trt.py."""
