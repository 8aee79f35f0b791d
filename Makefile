# The README's two commands: `make demo` and `make test`. Both build .venv when needed.
ENV := tools/env.sh

.PHONY: demo test env reliability bench clean

env:
	$(ENV) true

demo:
	$(ENV) python -m gps_denied_inference.demo

test:
	$(ENV) python -m pytest

reliability:
	GDI_FULL_SIZE=1 $(ENV) python -m pytest test/reliability

bench:
	$(ENV) python -m gps_denied_inference.bench

clean:
	rm -rf .venv build .pytest_cache
