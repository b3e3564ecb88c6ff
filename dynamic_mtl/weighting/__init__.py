"""Task-weighting strategies, one module each (LibMTL layout), behind one interface."""

from __future__ import annotations

from dynamic_mtl.weighting.aligned_mtl import AlignedMTLWeighting
from dynamic_mtl.weighting.base import WeightingStrategy
from dynamic_mtl.weighting.cagrad import CAGradWeighting
from dynamic_mtl.weighting.db_mtl import DBMTLWeighting
from dynamic_mtl.weighting.dwa import DynamicWeightAverageWeighting
from dynamic_mtl.weighting.dynamic import DynamicWeighting
from dynamic_mtl.weighting.famo import FAMOWeighting
from dynamic_mtl.weighting.gls import GeometricLossWeighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting
from dynamic_mtl.weighting.gradnorm import GradNormWeighting
from dynamic_mtl.weighting.gradvac import GradVacWeighting
from dynamic_mtl.weighting.imtl import IMTLGWeighting
from dynamic_mtl.weighting.mgda import MGDAWeighting
from dynamic_mtl.weighting.naive_dynamic import NaiveDynamicWeighting
from dynamic_mtl.weighting.nash_mtl import NashMTLWeighting
from dynamic_mtl.weighting.pcgrad import PCGradWeighting
from dynamic_mtl.weighting.rlw import RandomLossWeighting
from dynamic_mtl.weighting.static import StaticWeighting
from dynamic_mtl.weighting.stch import STCHWeighting
from dynamic_mtl.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS = {
    "static": StaticWeighting,
    "naive_dynamic": NaiveDynamicWeighting,
    "dynamic": DynamicWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNormWeighting,
    "dwa": DynamicWeightAverageWeighting,
    # per-task gradient methods (docs/weighting.md)
    "pcgrad": PCGradWeighting,
    "mgda": MGDAWeighting,
    "cagrad": CAGradWeighting,
    "imtl_g": IMTLGWeighting,
    "nash_mtl": NashMTLWeighting,
    "aligned_mtl": AlignedMTLWeighting,
    "gradvac": GradVacWeighting,
    "db_mtl": DBMTLWeighting,
    # loss methods (docs/weighting.md)
    "rlw": RandomLossWeighting,
    "gls": GeometricLossWeighting,
    "famo": FAMOWeighting,
    "stch": STCHWeighting,
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
    "GradientWeighting",
    "PCGradWeighting",
    "MGDAWeighting",
    "CAGradWeighting",
    "IMTLGWeighting",
    "NashMTLWeighting",
    "AlignedMTLWeighting",
    "GradVacWeighting",
    "DBMTLWeighting",
    "RandomLossWeighting",
    "GeometricLossWeighting",
    "FAMOWeighting",
    "STCHWeighting",
    "get_weighting",
]
