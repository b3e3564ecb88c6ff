"""Task-weighting strategies, one module each (LibMTL layout), behind one interface."""
from __future__ import annotations

from dynamic_mtl.weighting.base import WeightingStrategy
from dynamic_mtl.weighting.dwa import DynamicWeightAverageWeighting
from dynamic_mtl.weighting.dynamic import DynamicWeighting
from dynamic_mtl.weighting.gradnorm import GradNormWeighting
from dynamic_mtl.weighting.naive_dynamic import NaiveDynamicWeighting
from dynamic_mtl.weighting.static import StaticWeighting
from dynamic_mtl.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS = {
    "static": StaticWeighting,
    "naive_dynamic": NaiveDynamicWeighting,
    "dynamic": DynamicWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNormWeighting,
    "dwa": DynamicWeightAverageWeighting,
}


def get_weighting(spec, num_tasks: int = 2, **options) -> WeightingStrategy:
    """A strategy from a name in ``WEIGHTINGS`` (with options) or an instance."""
    if isinstance(spec, WeightingStrategy):
        return spec
    try:
        cls = WEIGHTINGS[spec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown weighting {spec!r}; choose one of {sorted(WEIGHTINGS)}") from None
    if cls is StaticWeighting:
        options.setdefault("weights", (1.0 / num_tasks,) * num_tasks)
        if len(options["weights"]) != num_tasks:
            raise ValueError(f"static weights {options['weights']} do not match {num_tasks} tasks")
        return cls(**options)
    return cls(num_tasks=num_tasks, **options)


__all__ = [
    "WEIGHTINGS",
    "WeightingStrategy",
    "StaticWeighting",
    "NaiveDynamicWeighting",
    "DynamicWeighting",
    "UncertaintyWeighting",
    "GradNormWeighting",
    "DynamicWeightAverageWeighting",
    "get_weighting",
]
