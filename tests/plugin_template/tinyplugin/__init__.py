"""A researcher's own experiment, outside gradflow: what tests/test_plugins.py installs."""
