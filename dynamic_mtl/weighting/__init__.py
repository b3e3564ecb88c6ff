"""Task-weighting strategies, one module each (LibMTL layout), behind one interface.

Every module of this package is imported here, so a strategy module decorated with
``@register_weighting("<name>")`` (``dynamic_mtl/weighting/base.py``) is in ``WEIGHTINGS`` and
``get_weighting("<name>")`` builds it, without an edit to this file.
"""

from __future__ import annotations

import importlib
import pkgutil

from dynamic_mtl.weighting.aligned_mtl import AlignedMTLWeighting
from dynamic_mtl.weighting.base import WEIGHTINGS, WeightingStrategy, register_weighting
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

# every module, so that a new one registers its strategies without an import line here
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
del _module


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
    "register_weighting",
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
# a strategy added as a module (no import line above) is importable from the package as well
for _cls in list(WEIGHTINGS.values()):
    if _cls.__module__.startswith(f"{__name__}.") and _cls.__name__ not in globals():
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
del _cls
