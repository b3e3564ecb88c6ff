"""``DynamicMultiTaskModel``: the two-tape, two-optimizer training step of Ming et al. 2019."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dynamic_mtl.compat import tape_values
from dynamic_mtl.custom_step import CustomStepModel
from dynamic_mtl.gradients import combine_task_gradients, task_gradient_norms
from dynamic_mtl.labels import checked_class_labels, fill_missing, label_mask, sample_weights_for
from dynamic_mtl.losses import CenterLoss, per_sample_loss
from dynamic_mtl.replicas import num_replicas, sum_over_replicas
from dynamic_mtl.tasks import TaskSpec
from dynamic_mtl.weighting import WeightingStrategy, get_weighting

#: Default optimizer of the weight unit: the authors' RMSProp settings, lr 0.1, gradients clipped
#: to a global norm of 5 (docs/fidelity.md, row 8).
DEFAULT_WEIGHT_OPTIMIZER = {
    "class_name": "RMSprop",
    "config": {"learning_rate": 0.1, "rho": 0.9, "momentum": 0.9, "epsilon": 1.0, "global_clipnorm": 5.0},
}


def default_weight_optimizer() -> keras.optimizers.Optimizer:
    """A new optimizer with the authors' weight-unit settings (:data:`DEFAULT_WEIGHT_OPTIMIZER`)."""
    return keras.optimizers.get({**DEFAULT_WEIGHT_OPTIMIZER, "config": dict(DEFAULT_WEIGHT_OPTIMIZER["config"])})


@dataclass
class StepResult:
    """What one forward/backward pass produced (see ``compute_gradients``)."""

    network_gradients: list
    weight_gradients: list
    outputs: dict
    task_losses: Any  # (T,) global mean task losses L_i
    task_weights: Any  # (T,) weights w_i used in the network loss
    network_loss: Any  # value of sum_i w_i L_i (+ regularisation)
    weight_loss: Any  # value of the weighting loss (L3 for the proposed method), 0 if none
    weight_logits: Any  # (T,) batch-mean logits f_i of the weight unit, 0 if none


def _global_norm(gradients):
    return tf.linalg.global_norm([g for g in gradients if g is not None]) if gradients else tf.constant(0.0)


def _task_output_keys(task: TaskSpec) -> list[str]:
    """The network outputs a task's loss reads: its logits, and its center-loss feature."""
    keys = [task.logits]
    if task.center_loss_weight > 0:
        keys.append(task.center_feature)
    return keys


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class DynamicMultiTaskModel(CustomStepModel):
    """A multi-task model trained with a network optimizer and a weight optimizer.

    It wraps a functional ``network`` whose output is a dict holding every task's output
    (logits or values) and, for strategies with a weight unit, the representation Z the
    unit reads (key ``shared_output``). Each step:

    * the network variables Theta are updated by ``weighting.network_loss`` (Eq. 1, 11);
    * the weighting variables (the ``DynamicWeightUnit`` Psi and any variables of the
      strategy) are updated by ``weighting.weight_loss`` (L3, Eq. 7, 12),

    with two ``tf.GradientTape``s in the same step. Per-task losses are means over the
    *global* batch, all-reduced across replicas, so the weighting maths (which is not
    linear in the losses: L3 = sum w_i / L_i) sees the same numbers on one device as
    under ``tf.distribute.MirroredStrategy``; the per-replica objectives are first-order
    surrogates whose gradients, summed over replicas, are the exact global gradients.

    A strategy with ``uses_task_gradients`` (PCGrad, MGDA, ...) instead gets every task's
    gradient of the shared variables, all-reduced (the global-batch gradients), and returns
    the shared update; each task-specific variable gets the gradient of its own loss.

    Tasks are ``TaskSpec``s: a Keras loss and metrics per task (logged as ``<task>_loss``,
    ``<task>_<metric>``, ``<task>_weight``), ``fit``'s ``sample_weight`` (one vector or a dict
    by task), and missing labels (-1 for integer labels, NaN for float labels) that exclude a
    sample from that task only. Subclass it to change ``compute_task_losses`` (any number of
    tasks T >= 2) or ``prediction_outputs``.

    Args:
        network: functional ``keras.Model`` returning a dict of outputs.
        tasks: ``TaskSpec``s (or their config dicts), one per task, in weight order.
        weighting: a ``WeightingStrategy`` or a name from ``dynamic_mtl.weighting.WEIGHTINGS``.
        weight_unit: a ``DynamicWeightUnit`` for strategies that use one (built if omitted).
        shared_output: key of Z, the weight unit's input, in the network's outputs (needed only
            by strategies with a weight unit).
        shared_layer_name: name of the last shared layer with weights (GradNorm's W).
        log_capacity: rows of the on-device per-step log buffer (see ``StepLogger``).
    """

    compile_optimizers = (("network_optimizer", "optimizer"), ("weight_optimizer", "weight_optimizer"))

    def __init__(
        self,
        network: keras.Model,
        tasks,
        weighting="dynamic",
        weight_unit=None,
        shared_output: str = "shared",
        shared_layer_name: str | None = None,
        log_capacity: int = 1024,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        self.network = network
        self.tasks = [t if isinstance(t, TaskSpec) else TaskSpec.from_config(t) for t in tasks]
        if len(self.tasks) < 2:
            raise ValueError(f"a multi-task model needs at least 2 tasks, got {len(self.tasks)}")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        if isinstance(weighting, dict):
            weighting = keras.saving.deserialize_keras_object(weighting)
        self.weighting: WeightingStrategy = get_weighting(weighting, num_tasks=len(self.tasks))
        if self.weighting.num_tasks != len(self.tasks):
            raise ValueError(f"weighting is for {self.weighting.num_tasks} tasks, model has {len(self.tasks)}")
        self.shared_output = shared_output
        self.shared_layer_name = shared_layer_name
        self.log_capacity = int(log_capacity)

        output_shapes = self._network_output_shapes()
        for key in [t.logits for t in self.tasks]:
            if key not in output_shapes:
                raise ValueError(f"network has no output {key!r}; it has {sorted(output_shapes)}")
        if self.weighting.uses_weight_unit and shared_output not in output_shapes:
            raise ValueError(
                f"{type(self.weighting).__name__} feeds its weight unit the network output "
                f"`shared_output`={shared_output!r}, which the network lacks (it has "
                f"{sorted(output_shapes)}); name the output the unit should read"
            )

        if isinstance(weight_unit, dict):
            weight_unit = keras.saving.deserialize_keras_object(weight_unit)
        if self.weighting.uses_weight_unit:
            self.weight_unit = weight_unit or self.weighting.make_weight_unit(len(self.tasks))
            if not self.weight_unit.built:
                self.weight_unit.build(output_shapes[shared_output])
        else:
            self.weight_unit = None

        if self.weighting.uses_task_gradients:  # what test_step weights the logged loss with
            self.last_task_weights = self.add_weight(
                name="last_task_weights",
                shape=(len(self.tasks),),
                initializer="ones",
                trainable=False,
                aggregation="only_first_replica",
            )
        self.center_losses = {}
        for task in self.tasks:
            if task.center_loss_weight > 0:
                if task.center_feature not in output_shapes:
                    raise ValueError(f"task {task.name!r}: network has no output {task.center_feature!r}")
                layer = CenterLoss(
                    output_shapes[task.logits][-1],
                    output_shapes[task.center_feature][-1],
                    update_rate=task.center_update_rate,
                    squared=task.center_loss_squared,
                    name=f"center_loss_{task.name}",
                )
                layer.build()
                self.center_losses[task.name] = layer
        if not self.weighting.built:
            self.weighting.build()
        if self.weighting.uses_task_gradients and self.weighting.needs_shared_parameter_count:
            count = self.shared_parameter_count()
            if count is not None:  # else the strategy creates its state at the first trace
                self.weighting.build_task_gradient_state(count)

        n_tasks = len(self.tasks)
        self.log_fields = (
            ["step"]
            + [f"w_{t.name}" for t in self.tasks]
            + [f"loss_{t.name}" for t in self.tasks]
            + ["network_loss", "weight_loss", "weight_grad_norm"]
            + [f"logit_{t.name}" for t in self.tasks]
        )
        self.step_log = self.add_weight(
            name="step_log",
            shape=(self.log_capacity, len(self.log_fields)),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        # Counts every train step, also those a LossScaleOptimizer skips (its iterations do not advance).
        self.train_step_count = self.add_weight(
            name="train_step_count",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self._task_losses = {t.name: t.make_loss() for t in self.tasks}
        self._trackers = {
            "loss": keras.metrics.Mean(name="loss"),
            "weight_loss": keras.metrics.Mean(name="weight_loss"),
        }
        self._task_metrics = {}
        for task in self.tasks:
            self._trackers[f"{task.name}_loss"] = keras.metrics.Mean(name=f"{task.name}_loss")
            self._trackers[f"{task.name}_weight"] = keras.metrics.Mean(name=f"{task.name}_weight")
            names = []
            for metric in task.make_metrics():
                if metric.name in self._trackers:
                    raise ValueError(f"two logged values are named {metric.name!r}; rename a task or metric")
                self._trackers[metric.name] = metric
                names.append(metric.name)
            self._task_metrics[task.name] = tuple(names)  # keys of self._trackers
        self._n_tasks = n_tasks
        self.built = True

    # ------------------------------------------------------------------ structure
    def _network_output_shapes(self) -> dict:
        outputs = self.network.output
        if not isinstance(outputs, dict):
            raise ValueError("the network must return a dict of named outputs")
        return {k: tuple(v.shape) for k, v in outputs.items()}

    @property
    def network_variables(self) -> list:
        """Theta: every trainable variable of the network (updated by Eq. 11)."""
        return list(self.network.trainable_variables)

    @property
    def weighting_variables(self) -> list:
        """Psi (the weight unit) and the strategy's own trainable variables (Eq. 12)."""
        unit = list(self.weight_unit.trainable_variables) if self.weight_unit is not None else []
        return unit + list(self.weighting.trainable_variables)

    def shared_parameter_count(self) -> int | None:
        """P: how many trainable network parameters at least two tasks reach (the columns of the
        task-gradient matrix ``G``): the variables of the layers on the paths from the inputs to
        two or more tasks' outputs (each task's logits and center feature) of the functional
        network; None when that sub-network cannot be cut out."""
        reached: collections.Counter = collections.Counter()
        variables: dict[int, keras.Variable] = {}
        for task in self.tasks:
            keys = _task_output_keys(task)
            try:
                path = keras.Model(self.network.input, [self.network.output[k] for k in keys])
            except Exception:  # e.g. an input no task output depends on
                return None
            for variable in path.trainable_variables:
                reached[id(variable)] += 1
                variables[id(variable)] = variable
        return sum(int(np.prod(variables[key].shape)) for key, count in reached.items() if count >= 2)

    def _shared_layer_variables(self) -> list:
        if not self.shared_layer_name:
            raise ValueError(
                f"{type(self.weighting).__name__} needs `shared_layer_name`, the last shared "
                "layer whose gradient norms it balances"
            )
        return list(self.network.get_layer(self.shared_layer_name).trainable_variables)

    # ------------------------------------------------------------------ forward
    def call(self, inputs, training=False):
        outputs = dict(self.network(inputs, training=training))
        if self.weight_unit is not None:
            logits = self.weight_unit.compute_logits(outputs[self.shared_output])
            outputs["weight_logits"] = logits
            outputs["task_weights"] = self.weight_unit.weights_from_logits(logits)
        return outputs

    def compute_task_losses(self, y, outputs) -> list:
        """Per-sample loss of each task, a list of T float32 tensors of shape (batch,).

        Default: the task's Keras loss (softmax cross-entropy, Eq. 3, for classification),
        plus ``alpha * center loss`` (Eq. 2, 4) for tasks with a ``center_loss_weight``.
        Class labels are checked (integers in range or the missing-label sentinel); missing
        labels are replaced by 0 here and masked out by ``task_sample_weights``. Override for
        other losses.
        """
        losses = []
        for task in self.tasks:
            labels = self._task_labels(y, task)
            if task.task_kind == "classification":
                labels = checked_class_labels(task.name, labels, int(outputs[task.logits].shape[-1]))
            filled = fill_missing(labels, label_mask(labels))
            loss = per_sample_loss(self._task_losses[task.name], task.task_kind, filled, outputs[task.logits])
            if task.name in self.center_losses:
                center = self.center_losses[task.name].per_sample(outputs[task.center_feature], filled)
                loss = loss + task.center_loss_weight * center
            losses.append(ops.cast(loss, "float32"))
        return losses

    @staticmethod
    def _task_labels(y, task):
        if not isinstance(y, dict) or task.name not in y:
            raise KeyError(
                f"labels for task {task.name!r} missing from y "
                f"(has {sorted(y) if isinstance(y, dict) else type(y).__name__})"
            )
        return tf.convert_to_tensor(y[task.name])

    def task_sample_weights(self, y, sample_weight=None) -> list:
        """Per task, the (batch,) float32 weight of each sample in its loss and metrics:
        ``fit``'s ``sample_weight`` (one vector, or a dict by task name) times the task's
        label mask (0 where the label is the missing-label sentinel)."""
        weights = []
        for task in self.tasks:
            labels = self._task_labels(y, task)
            mask = label_mask(labels)
            weights.append(mask * sample_weights_for(task.name, sample_weight, tf.shape(mask)[0]))
        return weights

    # ------------------------------------------------------------------ the step
    def _global_statistics(self, per_sample_losses, outputs, sample_weights=None):
        """Global-batch means of the task losses, unit weights and unit logits.

        Task i's loss is the weighted mean ``L_i = sum_b s_ib l_ib / sum_b s_ib`` over the
        global batch, ``s_ib`` its sample weight times its label mask (0 when no sample of the
        global batch has a label: the task then contributes loss 0 and no gradient).
        Returns the all-reduced values (no gradient) and the local differentiable parts
        ``local_sum / global_count`` whose replica-sum is the global mean.
        """
        if sample_weights is None:
            sample_weights = [tf.ones_like(l) for l in per_sample_losses]
        sum_list = [
            ops.sum(tf.where(w > 0, ops.cast(l, "float32") * w, 0.0)) for l, w in zip(per_sample_losses, sample_weights)
        ]
        local_sums = ops.stack(sum_list)
        local_counts = ops.stack([ops.sum(w) for w in sample_weights])
        count = ops.cast(ops.shape(per_sample_losses[0])[0], "float32")
        pieces = [local_sums, local_counts]
        if self.weight_unit is not None:
            unit_sums = ops.sum(ops.cast(outputs["task_weights"], "float32"), axis=0)
            logit_sums = ops.sum(ops.cast(outputs["weight_logits"], "float32"), axis=0)
            pieces += [unit_sums, logit_sums]
        packed = ops.stop_gradient(ops.concatenate(pieces + [ops.reshape(count, (1,))], axis=0))
        packed = sum_over_replicas(packed)
        global_count = packed[-1]
        t = self._n_tasks
        counts = packed[t : 2 * t]
        stats = {
            "losses": tf.math.divide_no_nan(packed[:t], counts),
            "loss_parts": tf.math.divide_no_nan(local_sums, counts),
            "counts": counts,
            # one scalar per task, each reaching only what its own loss reaches
            "task_parts": [tf.math.divide_no_nan(part, counts[i]) for i, part in enumerate(sum_list)],
        }
        if self.weight_unit is not None:
            stats["unit_weights"] = packed[2 * t : 3 * t] / global_count
            stats["unit_parts"] = unit_sums / global_count
            stats["logits"] = packed[3 * t : 4 * t] / global_count
        return stats

    def _linearised(self, objective, stats, replicas):
        """A per-replica surrogate of ``objective(L, unit_weights)`` and its value.

        ``objective`` is evaluated on the global statistics. Its gradient w.r.t. them is
        then contracted with the local differentiable parts, so the replica-summed
        gradient equals the gradient of the global objective; its direct dependence on
        the strategy's own (mirrored) variables enters as ``value / replicas``.
        """
        losses, unit_weights = stats["losses"], stats.get("unit_weights")
        sources, parts = [losses], [stats["loss_parts"]]
        if unit_weights is not None:
            sources.append(unit_weights)
            parts.append(stats["unit_parts"])
        with tf.GradientTape() as maths_tape:
            maths_tape.watch(sources)
            value = objective(losses, unit_weights)
        if value is None:
            return None, None
        slopes = maths_tape.gradient(value, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        surrogate = tf.add_n([ops.sum(ops.stop_gradient(d) * p) for d, p in zip(slopes, parts)])
        return surrogate + value / replicas, value

    def compute_gradients(self, x, y, sample_weight=None) -> StepResult:
        """One forward pass and the gradients of both objectives (no update applied).

        The network tape differentiates the network objective w.r.t. ``network_variables``;
        the weight tape differentiates the weighting objective w.r.t. ``weighting_variables``.
        A strategy with ``uses_task_gradients`` instead gets every task's gradient of the
        shared variables (``dynamic_mtl.gradients.combine_task_gradients``).
        Under mixed precision the network gradients are those of the loss-scaled objective
        (``optimizer.scale_loss``), as the ``LossScaleOptimizer`` expects.
        """
        replicas = num_replicas()
        network_vars = self.network_variables
        weight_vars = self.weighting_variables
        weighting = self.weighting
        needs_norms = weighting.requires_grad_norms
        per_task = weighting.uses_task_gradients
        with (
            tf.GradientTape(persistent=needs_norms or per_task) as network_tape,
            tf.GradientTape(watch_accessed_variables=False) as weight_tape,
        ):
            weight_tape.watch(tape_values(weight_vars))
            outputs = self(x, training=True)
            stats = self._global_statistics(
                self.compute_task_losses(y, outputs), outputs, self.task_sample_weights(y, sample_weight)
            )
            regularization = self.network_regularization()
            if per_task:
                # each task's part of the objective, scaled like the network loss (mixed precision)
                task_parts = [self._scale_network_loss(p) for p in stats["task_parts"]]
                regularization_target = self._scale_network_loss(regularization / replicas)
                loss_scale = self._scale_network_loss(tf.constant(1.0))
            else:
                network_surrogate, network_value = self._linearised(
                    lambda L, u: weighting.network_loss(weighting.task_weights(u), L), stats, replicas
                )
                network_surrogate = network_surrogate + regularization / replicas
                # Mixed precision: the network optimizer is a LossScaleOptimizer, which unscales the
                # gradients it gets, so differentiate the scaled objective (identity otherwise).
                # The weighting objective (L3) is float32 and never scaled.
                network_target = self._scale_network_loss(network_surrogate)
                grad_norms = None
                if needs_norms:  # GradNorm's g_i, constants of its objective: computed without recording
                    task_parts = stats["task_parts"]
                    with network_tape.stop_recording(), weight_tape.stop_recording():
                        grad_norms = task_gradient_norms(
                            network_tape, task_parts, tape_values(self._shared_layer_variables())
                        )
                weights = weighting.task_weights(stats.get("unit_weights"))
                weight_surrogate, weight_value = (None, None)
                if weight_vars:
                    weight_surrogate, weight_value = self._linearised(
                        lambda L, u: weighting.weight_loss(weighting.task_weights(u), L, grad_norms), stats, replicas
                    )

        zero = tf.UnconnectedGradients.ZERO
        network_values = tape_values(network_vars)
        if per_task:
            network_gradients, weights = combine_task_gradients(
                weighting, network_tape, task_parts, network_values, stats["losses"], loss_scale
            )
            if self.network.losses:
                network_gradients = [
                    g + r
                    for g, r in zip(
                        network_gradients,
                        network_tape.gradient(regularization_target, network_values, unconnected_gradients=zero),
                    )
                ]
            network_value = ops.sum(weights * stats["losses"])
            weight_surrogate, weight_value = (None, None)
            if weight_vars:  # the strategy's own variables (no weight unit): their direct dependence
                with tf.GradientTape(watch_accessed_variables=False) as weight_tape:
                    weight_tape.watch(tape_values(weight_vars))
                    weight_surrogate, weight_value = self._linearised(
                        lambda L, u: weighting.weight_loss(weights, L, None), stats, replicas
                    )
        else:
            network_gradients = network_tape.gradient(network_target, network_values, unconnected_gradients=zero)
        weight_gradients = (
            weight_tape.gradient(weight_surrogate, tape_values(weight_vars), unconnected_gradients=zero)
            if weight_surrogate is not None
            else []
        )
        del network_tape
        return StepResult(
            network_gradients=network_gradients,
            weight_gradients=weight_gradients,
            outputs=outputs,
            task_losses=stats["losses"],
            task_weights=tf.stop_gradient(ops.cast(weights, "float32")),
            network_loss=tf.stop_gradient(network_value + regularization),
            weight_loss=tf.stop_gradient(weight_value) if weight_value is not None else tf.constant(0.0),
            weight_logits=stats.get("logits", tf.zeros((self._n_tasks,))),
        )

    def _scale_network_loss(self, loss):
        """``optimizer.scale_loss`` (the loss scale under mixed precision), or ``loss`` before compile."""
        optimizer = getattr(self, "optimizer", None)
        return optimizer.scale_loss(loss) if optimizer is not None else loss

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        result = self.compute_gradients(x, y, sample_weight)
        # 1.0, or 0.0 on a step whose loss-scaled network gradients overflowed (mixed precision):
        # the LossScaleOptimizer skips that step, and so does the center update.
        network_step_taken = self._network_gradients_finite(result.network_gradients)
        weight_vars = self.weighting_variables
        if self.weighting.uses_network_optimizer:
            # the weighting variables are part of the network: one optimizer steps both
            # (scaled like the network's loss when a LossScaleOptimizer unscales what it gets)
            weight_gradients = [self._scale_network_loss(g) for g in result.weight_gradients]
            self.optimizer.apply_gradients(
                zip(list(result.network_gradients) + weight_gradients, self.network_variables + weight_vars)
            )
        else:
            self.optimizer.apply_gradients(zip(result.network_gradients, self.network_variables))
            if result.weight_gradients:
                self.weight_optimizer.apply_gradients(zip(result.weight_gradients, weight_vars))
        if result.weight_gradients:
            self.weighting.after_weight_update()
        self.weighting.update_state(result.task_losses)
        for task in self.tasks:
            if task.name in self.center_losses:
                labels = self._task_labels(y, task)
                mask = label_mask(labels)
                self.center_losses[task.name].update(
                    result.outputs[task.center_feature],
                    fill_missing(labels, mask),
                    gate=network_step_taken,
                    sample_mask=mask,
                )
        if self.weighting.uses_task_gradients:
            self.last_task_weights.assign(result.task_weights)
        self.train_step_count.assign_add(1)
        self._record_step(result)
        return self._update_trackers(result, y, sample_weight)

    def _network_gradients_finite(self, gradients):
        """1.0 unless the network optimizer is a ``LossScaleOptimizer`` and the (loss-scaled)
        gradients hold a NaN or inf on any replica, then 0.0."""
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.constant(1.0)
        bad = tf.cast(tf.logical_not(self.optimizer.check_finite(gradients)), tf.float32)
        bad = sum_over_replicas(bad)
        return tf.cast(bad == 0.0, tf.float32)

    def _weight_gradient_norm(self, gradients):
        if not gradients:
            return tf.constant(0.0)
        gradients = sum_over_replicas(list(gradients))
        return _global_norm(gradients)

    def _record_step(self, result: StepResult):
        step = ops.cast(self.train_step_count, "float32")  # already incremented: 1-based
        row = ops.concatenate(
            [
                ops.reshape(step, (1,)),
                result.task_weights,
                result.task_losses,
                ops.reshape(ops.cast(result.network_loss, "float32"), (1,)),
                ops.reshape(ops.cast(result.weight_loss, "float32"), (1,)),
                ops.reshape(self._weight_gradient_norm(result.weight_gradients), (1,)),
                ops.cast(result.weight_logits, "float32"),
            ],
            axis=0,
        )
        index = ops.cast(ops.mod(self.train_step_count - 1, self.log_capacity), "int32")
        buffer = tf.convert_to_tensor(self.step_log)
        self.step_log.assign(tf.tensor_scatter_nd_update(buffer, tf.reshape(index, (1, 1)), row[None]))

    def _update_trackers(self, result: StepResult, y, sample_weight=None):
        self._trackers["loss"].update_state(result.network_loss)
        self._trackers["weight_loss"].update_state(result.weight_loss)
        weights = self.task_sample_weights(y, sample_weight)
        for i, task in enumerate(self.tasks):
            self._trackers[f"{task.name}_loss"].update_state(result.task_losses[i])
            self._trackers[f"{task.name}_weight"].update_state(result.task_weights[i])
            if not self._task_metrics[task.name]:
                continue
            labels = self._task_labels(y, task)
            labels = fill_missing(labels, label_mask(labels))
            prediction = self._postprocess(task, result.outputs[task.logits])
            if task.task_kind != "classification" and len(labels.shape) == len(prediction.shape) - 1:
                labels = labels[..., None]
            for name in self._task_metrics[task.name]:
                self._trackers[name].update_state(labels, prediction, sample_weight=weights[i])
        return self.tracked_logs()

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(x, training=False)
        stats = self._global_statistics(
            self.compute_task_losses(y, outputs), outputs, self.task_sample_weights(y, sample_weight)
        )
        if self.weighting.uses_task_gradients:  # the combination of the last training step
            weights = ops.convert_to_tensor(self.last_task_weights)
        else:
            weights = ops.cast(self.weighting.task_weights(stats.get("unit_weights")), "float32")
        result = StepResult(
            [],
            [],
            outputs,
            stats["losses"],
            weights,
            ops.sum(weights * stats["losses"])
            if self.weighting.uses_task_gradients
            else self.weighting.network_loss(weights, stats["losses"]),
            tf.constant(0.0),
            stats.get("logits", tf.zeros((self._n_tasks,))),
        )
        return self._update_trackers(result, y, sample_weight)

    @staticmethod
    def _postprocess(task: TaskSpec, output):
        """A task's prediction from its network output: softmax (classification), sigmoid
        (multi-label) or the output itself (regression), float32."""
        output = ops.cast(output, "float32")
        if task.task_kind == "classification":
            return ops.softmax(output, axis=-1)
        if task.task_kind == "multilabel":
            return ops.sigmoid(output)
        return output

    def prediction_outputs(self, outputs) -> dict:
        """What ``predict`` returns: ``<task>_probabilities`` (softmax of a classification task,
        sigmoid of a multi-label task) or ``<task>_values`` (regression), each embedding, and
        the per-sample dynamic weights when the model has a weight unit."""
        result = {}
        for task in self.tasks:
            suffix = "values" if task.task_kind == "regression" else "probabilities"
            result[f"{task.name}_{suffix}"] = self._postprocess(task, outputs[task.logits])
            if task.embedding:
                result[task.embedding] = outputs[task.embedding]
        if "task_weights" in outputs:
            result["task_weights"] = outputs["task_weights"]
        return result

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.prediction_outputs(self(x, training=False))

    # ------------------------------------------------------------------ compile / fit
    def compile(self, network_optimizer="rmsprop", weight_optimizer=None, **kwargs):
        """Compile with one optimizer for Theta and one for the weighting variables.

        ``optimizer=`` is accepted as an alias of ``network_optimizer``. Losses come from
        the tasks, so ``loss=`` is refused. Both optimizers are built here, each on its
        own variable list (call ``compile`` inside ``strategy.scope()`` when distributing).
        """
        if "loss" in kwargs:
            raise ValueError("DynamicMultiTaskModel takes its losses from its tasks; do not pass loss=")
        for key in ("metrics", "weighted_metrics", "loss_weights"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"DynamicMultiTaskModel takes metrics and weights per task: pass "
                    f"TaskSpec(metrics=[...]) (logged as <task>_<metric>) and a weighting, not {key}="
                )
        network_optimizer = kwargs.pop("optimizer", network_optimizer)
        network_optimizer = keras.optimizers.get(network_optimizer)
        weight_optimizer = (
            keras.optimizers.get(weight_optimizer) if weight_optimizer is not None else default_weight_optimizer()
        )
        super().compile(optimizer=network_optimizer, **kwargs)
        self.weight_optimizer = weight_optimizer
        if self.weighting.uses_network_optimizer:
            # the weight optimizer stays unbuilt and unused (e.g. the naive baseline, Yin et al.)
            self.optimizer.build(self.network_variables + self.weighting_variables)
        else:
            self.optimizer.build(self.network_variables)
            if self.weighting_variables:
                self.weight_optimizer.build(self.weighting_variables)

    def fit(self, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` plus the strategy's epoch hook (e.g. DWA's loss history), which runs
        before the given callbacks at each epoch end, so a checkpointing callback saves the
        strategy's state of the finished epoch."""
        callbacks = [_WeightingEpochHook(), *(callbacks or [])]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "tasks": [t.get_config() for t in self.tasks],
            "weighting": keras.saving.serialize_keras_object(self.weighting),
            "weight_unit": keras.saving.serialize_keras_object(self.weight_unit) if self.weight_unit else None,
            "shared_output": self.shared_output,
            "shared_layer_name": self.shared_layer_name,
            "log_capacity": self.log_capacity,
        }


class _WeightingEpochHook(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.weighting.on_epoch_end()
