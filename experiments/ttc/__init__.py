"""Experiments of Fang et al. 2017 (task transfer connections): ``dynamic-mtl ttc`` (see docs/ttc.md)."""
