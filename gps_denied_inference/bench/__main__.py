"""`python -m gps_denied_inference.bench` (`make bench`)."""

from gps_denied_inference.bench.run import main

raise SystemExit(main())
