"""Per-task gradients of a multi-task step, exact under ``tf.distribute``.

The model records each task's per-replica loss part ``local_sum_i / global_count_i`` (whose
replica-sum is the global task loss L_i) on a persistent tape. From it:

* :func:`per_task_gradients`: ``[T][V]`` gradients of each part (None where a task's loss does
  not reach a variable);
* :func:`task_gradient_norms`: GradNorm's ``||dL_i/dW||`` for a variable subset W, global batch;
* :func:`combine_task_gradients`: the hook of gradient-manipulation strategies (PCGrad, MGDA, ...):
  the shared variables' gradients flattened into ``G`` (T, P), all-reduced (the global-batch
  gradients), combined by the strategy into one direction, and split back per variable.
"""

from __future__ import annotations

import tensorflow as tf

from dynamic_mtl.replicas import num_replicas, sum_over_replicas


def per_task_gradients(tape, task_parts, variables) -> list:
    """``[T][V]``: the gradient of each recorded task part w.r.t. each variable (None if unreached)."""
    return [tape.gradient(part, variables, unconnected_gradients=tf.UnconnectedGradients.NONE) for part in task_parts]


def shared_indices(gradients) -> list[int]:
    """Indices of the variables that at least two tasks' losses reach (decided at trace time)."""
    return [j for j, column in enumerate(zip(*gradients)) if sum(g is not None for g in column) >= 2]


def task_gradient_norms(tape, task_parts, variables):
    """``(T,)``: ``||d L_i / d W||`` over ``variables`` W for the global batch (GradNorm's g_i)."""
    norms = []
    for grads in per_task_gradients(tape, task_parts, variables):
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        grads = sum_over_replicas(grads)
        norms.append(tf.linalg.global_norm(grads))
    return tf.stop_gradient(tf.stack(norms))


def _flat(gradient, variable):
    if gradient is None:
        return tf.zeros([variable.shape.num_elements()], tf.float32)
    return tf.reshape(tf.cast(gradient, tf.float32), [-1])


def combine_task_gradients(strategy, tape, task_parts, variables, task_losses, scale=1.0):
    """The network gradients of one step of a gradient-manipulation ``strategy``.

    Args:
        strategy: a ``WeightingStrategy`` with ``uses_task_gradients``.
        tape: a persistent tape that recorded ``task_parts``.
        task_parts: T scalars, each task's per-replica part of its global loss, multiplied by
            ``scale`` (the loss scale under mixed precision, else 1).
        variables: the network variables (their ``.value`` tensors, as the tape saw them).
        task_losses: ``(T,)`` global task losses.
        scale: the factor ``task_parts`` carry.

    Returns:
        ``(gradients, task_weights)``: per-variable gradients for this replica, carrying
        ``scale`` (as a ``LossScaleOptimizer`` expects) -- the shared variables get
        ``direction / replicas`` (the optimizer sums replicas, so the step is ``direction``),
        every other variable the gradient of ``sum_i L_i`` (each head trained by its own loss);
        and the strategy's ``(T,)`` task weights.
    """
    replicas = num_replicas()
    gradients = per_task_gradients(tape, task_parts, variables)
    shared = shared_indices(gradients)
    scale = tf.cast(scale, tf.float32)
    if shared:
        matrix = tf.stack([tf.concat([_flat(row[j], variables[j]) for j in shared], 0) for row in gradients])
    else:
        matrix = tf.zeros([len(gradients), 0], tf.float32)
    matrix = matrix / scale
    matrix = sum_over_replicas(matrix)
    direction, task_weights = strategy.combine_task_gradients(matrix, tf.cast(task_losses, tf.float32))
    direction = tf.cast(direction, tf.float32) * (scale / replicas)
    sizes = [variables[j].shape.num_elements() for j in shared]
    pieces = dict(zip(shared, tf.split(direction, sizes))) if shared else {}
    result = []
    for j, variable in enumerate(variables):
        if j in pieces:
            result.append(tf.cast(tf.reshape(pieces[j], variable.shape), variable.dtype))
            continue
        reached = [tf.convert_to_tensor(row[j]) for row in gradients if row[j] is not None]  # dense slices
        result.append(tf.add_n(reached) if reached else tf.zeros_like(variable))
    return result, tf.stop_gradient(tf.cast(task_weights, tf.float32))
