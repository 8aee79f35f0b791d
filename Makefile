# The README's two commands: `make demo` and `make test`. Both build .venv when needed.
ENV := tools/env.sh

.PHONY: demo test env reliability bench clean test-humble env-humble

# The drone's stack: Python 3.10, numpy 1.21, OpenCV 4.5.4, ONNX Runtime 1.16.3, the cp310 ROS
# wheels, message field checks on and Humble's lifecycle transitions (test/humble_lifecycle.py).
HUMBLE := GDI_STACK=humble ROS_PYTHON_CHECK_FIELDS=1 GDI_HUMBLE_LIFECYCLE=1

env:
	$(ENV) true

env-humble:
	$(HUMBLE) $(ENV) true

demo:
	$(ENV) python -m gps_denied_inference.demo

test:
	$(ENV) python -m pytest

test-humble:
	$(HUMBLE) $(ENV) python -m pytest

reliability:
	GDI_FULL_SIZE=1 $(ENV) python -m pytest test/reliability

bench:
	$(ENV) python -m gps_denied_inference.bench

clean:
	rm -rf .venv .venv-humble build .pytest_cache
