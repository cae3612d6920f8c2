"""hostwatch's shared core: the leaf every component builds on.

It imports no sibling package (runtime, exporter, logshipper, alerting, dashboards) and nothing from
the face (hostwatch.cli, hostwatch.up); tests/unit/test_layers.py fails the build if it does.
Value types, default paths and environment variables, units and time formats live here once.
"""
