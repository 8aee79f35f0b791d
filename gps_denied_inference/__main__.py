"""`python -m gps_denied_inference`: the pre-flight CLI."""

import sys

from gps_denied_inference.cli import main

sys.exit(main())
