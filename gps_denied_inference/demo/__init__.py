"""`make demo` and the tooling it shares with the benchmark: demo models, scene, lifecycle client.

Not imported by the flight node; the CLI imports `demo.models` only for the `demo-model` command.
"""
