"""`python -m gps_denied_inference.node`: the lifecycle node as its own process."""

from gps_denied_inference.node.lifecycle_node import main

raise SystemExit(main())
