"""The interface every task-weighting strategy implements.

A strategy is a Keras layer so that it can own variables (uncertainty's log-variances,
GradNorm's weights, DWA's loss history) and be serialised with the model.

The model calls it with *global* statistics of the current step: the task losses
``L`` (shape ``(T,)``, mean over the global batch) and, for strategies that use the
dynamic weight unit, ``unit_weights`` (batch mean of the unit's softmax, ``(T,)``).
Strategies write plain maths on these; the model turns the result into exact
per-replica gradients (see ``DynamicMultiTaskModel.compute_gradients``).

A concrete strategy is registered under a short name with :func:`register_weighting`, which
fills :data:`WEIGHTINGS` (what ``get_weighting`` and the models look names up in) and registers
the class with Keras so that a saved model that holds it loads again.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.weight_unit import DynamicWeightUnit


class WeightingStrategy(keras.layers.Layer):
    """Base class: ``task_weights``, ``network_loss`` and ``weight_loss``.

    Class attributes:
        uses_weight_unit: the model must create a ``DynamicWeightUnit`` and pass its
            batch-mean softmax as ``unit_weights``.
        requires_grad_norms: the model must pass the norms of the task gradients with
            respect to the last shared layer (GradNorm) in ``weight_loss``.
        uses_task_gradients: a gradient-manipulation method (PCGrad, MGDA, ...): the model
            computes every task's gradient with respect to the shared variables and the
            strategy's ``combine_task_gradients`` turns them into the shared update.
        needs_shared_parameter_count: the strategy keeps state of the shared parameters' size;
            the model calls its ``build_task_gradient_state(P)`` at construction.
        weight_unit_defaults: ``DynamicWeightUnit`` options this strategy's unit starts from
            (e.g. the naive baseline turns the Section 5.5 normalisation off).
    """

    uses_weight_unit = False
    requires_grad_norms = False
    uses_task_gradients = False
    needs_shared_parameter_count = False
    weight_unit_defaults: dict = {}

    def __init__(self, num_tasks: int = 2, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(num_tasks) < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.num_tasks = int(num_tasks)

    def build(self, input_shape=None):
        self.built = True

    @property
    def uses_network_optimizer(self) -> bool:
        """Whether the strategy's variables (and its weight unit) are stepped by the network's
        optimizer, as part of the network, instead of the model's separate weight optimizer."""
        return False

    def make_weight_unit(self, num_tasks: int, **options) -> DynamicWeightUnit | None:
        """The weight unit this strategy trains (None if it uses none): ``weight_unit_defaults``
        overridden by ``options``."""
        if not self.uses_weight_unit:
            return None
        options = {**self.weight_unit_defaults, **options}
        options.setdefault("name", "dynamic_weight_unit")
        return DynamicWeightUnit(num_tasks, **options)

    # -- the three maths hooks -------------------------------------------------
    def task_weights(self, unit_weights=None):
        """The weights w_i used in the network loss, shape (T,)."""
        raise NotImplementedError

    def network_loss(self, weights, task_losses):
        """Loss of the network parameters Theta (Eq. 1 by default: sum_i w_i L_i)."""
        return ops.sum(weights * task_losses)

    def weight_loss(self, weights, task_losses, grad_norms=None):
        """Loss of the weighting parameters (unit's Psi and the strategy's own), or None."""
        return None

    def combine_task_gradients(self, task_gradients, task_losses):
        """The shared variables' update direction from the per-task gradients.

        Args:
            task_gradients: float32 tensor ``(T, P)``: row i is the gradient of the global
                task loss L_i with respect to the shared variables, flattened and
                concatenated in shared-variable order. It is already all-reduced, so every
                replica passes the same matrix (the global-batch gradients).
            task_losses: float32 ``(T,)`` global task losses.

        Returns:
            ``(direction, task_weights)``: ``direction`` ``(P,)`` is used as the shared
            variables' gradient (the optimizer steps along ``-direction``); ``task_weights``
            ``(T,)`` is what the method's combination amounts to per task (logged as w_i).
            Must be deterministic given its inputs and the strategy's state, so that all
            replicas agree (draw random numbers from stateless ops seeded by a step counter).
        """
        raise NotImplementedError(f"{type(self).__name__} does not combine task gradients")

    # -- state hooks ---------------------------------------------------------------
    def update_state(self, task_losses):
        """Called once per step with the global task losses (e.g. DWA's history)."""

    def after_weight_update(self):
        """Called after the weight optimizer has stepped (e.g. GradNorm's renormalisation)."""

    def on_epoch_end(self):
        """Called at the end of every training epoch by the model's ``fit``."""

    def call(self, unit_weights=None):
        return self.task_weights(unit_weights)

    def get_config(self):
        config = super().get_config()
        config.update(num_tasks=self.num_tasks)
        return config


class SteppedRandomWeighting(WeightingStrategy):
    """A strategy with a ``seed`` option and a step counter for stateless random draws.

    ``update_state`` advances ``step``; :meth:`random_seed` gives ``(seed + salt, step)``, so a draw
    is reproducible for a seed, the same on every replica and the same for every call within a
    step (RLW's weights, PCGrad's and GradVac's task orders).
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape=None):
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False, aggregation="only_first_replica"
        )
        self.built = True

    def update_state(self, task_losses):
        self.step.assign_add(1)

    def random_seed(self, salt: int = 0):
        """A stateless seed ``(seed + salt, step)``: the same on every replica, new every step."""
        step = tf.cast(tf.convert_to_tensor(self.step), tf.int64)
        return tf.stack([tf.constant(self.seed + salt, tf.int64), step])

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config


#: short name -> strategy class, filled by :func:`register_weighting` when a module of
#: ``dynamic_mtl.weighting`` is imported (the package imports all of them).
WEIGHTINGS: dict[str, type[WeightingStrategy]] = {}


def register_weighting(name: str, package: str = "dynamic_mtl") -> Callable[[type], type]:
    """Class decorator: the strategy under ``name`` in :data:`WEIGHTINGS`, and Keras-serialisable.

    ``@register_weighting("pcgrad")`` does what ``@keras.saving.register_keras_serializable(
    package="dynamic_mtl")`` did before (the Keras name stays ``"dynamic_mtl>PCGradWeighting"``, so
    saved models load) and adds the class to the registry. A name, or a Keras name, already taken
    by another class is refused with a ``ValueError``; defining the same class again (a module
    reloaded, a notebook cell run twice) replaces it.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a weighting name must be a Python identifier such as 'pcgrad', got {name!r}")

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, WeightingStrategy)):
            raise TypeError(f"@register_weighting({name!r}) decorates a WeightingStrategy subclass, got {cls!r}")
        previous = WEIGHTINGS.get(name)
        if previous is not None and _qualified(previous) != _qualified(cls):
            raise ValueError(
                f"weighting name {name!r} is already registered to {_qualified(previous)}; "
                f"{_qualified(cls)} needs another name"
            )
        keras_name = f"{package}>{cls.__name__}"
        holder = keras.saving.get_registered_object(keras_name)
        if holder is not None and _qualified(holder) != _qualified(cls):
            raise ValueError(
                f"Keras name {keras_name!r} is already registered to {_qualified(holder)}; "
                f"rename the class {_qualified(cls)}"
            )
        cls = keras.saving.register_keras_serializable(package=package)(cls)
        WEIGHTINGS[name] = cls
        return cls

    return decorate


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
