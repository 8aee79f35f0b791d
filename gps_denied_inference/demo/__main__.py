"""`python -m gps_denied_inference.demo` (`make demo`)."""

import os

from gps_denied_inference.demo.run import main

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
raise SystemExit(main())
