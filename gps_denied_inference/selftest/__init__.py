"""The on-drone selftest: every acceptance criterion of the GPU path as a PASS/FAIL/SKIP line.

Flight-side tooling (it generates the demo model, builds engines, loads and runs them); the
node never imports it.
"""
