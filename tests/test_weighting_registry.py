"""The weighting registry: ``@register_weighting`` fills ``WEIGHTINGS`` and registers the class with Keras."""

from __future__ import annotations

import pkgutil
import sys

import keras
import pytest
from keras import ops

import dynamic_mtl.weighting as weighting_pkg
from dynamic_mtl.weighting import WEIGHTINGS, WeightingStrategy, get_weighting, register_weighting

#: every built-in strategy: its registry name -> its class name (its Keras name is "dynamic_mtl>" + class
#: name, which saved models refer to: renaming one breaks loading them)
BUILT_IN = {
    "static": "StaticWeighting",
    "naive_dynamic": "NaiveDynamicWeighting",
    "dynamic": "DynamicWeighting",
    "uncertainty": "UncertaintyWeighting",
    "gradnorm": "GradNormWeighting",
    "dwa": "DynamicWeightAverageWeighting",
    "pcgrad": "PCGradWeighting",
    "mgda": "MGDAWeighting",
    "cagrad": "CAGradWeighting",
    "imtl_g": "IMTLGWeighting",
    "nash_mtl": "NashMTLWeighting",
    "aligned_mtl": "AlignedMTLWeighting",
    "gradvac": "GradVacWeighting",
    "db_mtl": "DBMTLWeighting",
    "rlw": "RandomLossWeighting",
    "gls": "GeometricLossWeighting",
    "famo": "FAMOWeighting",
    "stch": "STCHWeighting",
}


@pytest.fixture
def registry():
    """``WEIGHTINGS``, restored after the test (what a test registers is removed again)."""
    saved = dict(WEIGHTINGS)
    yield WEIGHTINGS
    WEIGHTINGS.clear()
    WEIGHTINGS.update(saved)


def test_built_in_strategies_keep_their_names_keras_names_and_imports():
    assert {name: cls.__name__ for name, cls in WEIGHTINGS.items()} == BUILT_IN
    for name, cls in WEIGHTINGS.items():
        assert keras.saving.get_registered_name(cls) == f"dynamic_mtl>{cls.__name__}", name
        assert keras.saving.get_registered_object(f"dynamic_mtl>{cls.__name__}") is cls
        assert getattr(weighting_pkg, cls.__name__) is cls and cls.__name__ in weighting_pkg.__all__
    for name in ("WEIGHTINGS", "WeightingStrategy", "GradientWeighting", "get_weighting", "register_weighting"):
        assert name in weighting_pkg.__all__ and hasattr(weighting_pkg, name)


def test_the_package_imports_every_module_it_holds():
    modules = [m.name for m in pkgutil.iter_modules(weighting_pkg.__path__)]
    assert {"base", "gradient_base", "pcgrad", "stch"} <= set(modules)
    assert all(f"dynamic_mtl.weighting.{m}" in sys.modules for m in modules)
    assert {cls.__module__ for cls in WEIGHTINGS.values()} <= {f"dynamic_mtl.weighting.{m}" for m in modules}


def test_one_decorator_registers_the_name_and_the_keras_class(registry):
    @register_weighting("tilted_registry_test", package="tests")
    class TiltedRegistryWeighting(WeightingStrategy):
        """Fixed weights (0.7, 0.3)."""

        def task_weights(self, unit_weights=None):
            return ops.convert_to_tensor([0.7, 0.3], dtype="float32")

    assert registry["tilted_registry_test"] is TiltedRegistryWeighting
    assert keras.saving.get_registered_name(TiltedRegistryWeighting) == "tests>TiltedRegistryWeighting"
    s = get_weighting("tilted_registry_test", num_tasks=2)
    assert type(s) is TiltedRegistryWeighting
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert type(restored) is TiltedRegistryWeighting and restored.get_config() == s.get_config()


def test_a_taken_name_is_refused(registry):
    class OtherPCGrad(WeightingStrategy):
        pass

    with pytest.raises(ValueError, match=r"'pcgrad' is already registered to dynamic_mtl\.weighting\.pcgrad\."):
        register_weighting("pcgrad")(OtherPCGrad)
    # a second class with a built-in's class name would take its Keras name
    PCGradWeighting = type("PCGradWeighting", (WeightingStrategy,), {})
    with pytest.raises(ValueError, match=r"Keras name 'dynamic_mtl>PCGradWeighting' is already registered"):
        register_weighting("pcgrad_again")(PCGradWeighting)
    assert registry["pcgrad"] is weighting_pkg.PCGradWeighting and "pcgrad_again" not in registry
    with pytest.raises(TypeError, match="WeightingStrategy subclass"):
        register_weighting("not_a_strategy")(dict)
    with pytest.raises(ValueError, match="identifier"):
        register_weighting("two words")


def test_the_same_class_defined_again_replaces_itself(registry):
    """A module reloaded or a notebook cell run twice defines the class anew under the same name."""

    def define():
        @register_weighting("redefined_registry_test", package="tests")
        class RedefinedWeighting(WeightingStrategy):
            pass

        return RedefinedWeighting

    first, second = define(), define()
    assert first is not second and registry["redefined_registry_test"] is second
