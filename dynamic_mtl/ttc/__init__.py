"""Task transfer connections: the dynamic multi-task CNN of Fang et al. 2017 (see docs/ttc.md)."""
