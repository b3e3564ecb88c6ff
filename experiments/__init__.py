"""Experiment wiring: configs, runs, and the ``dynamic-mtl`` command line."""
