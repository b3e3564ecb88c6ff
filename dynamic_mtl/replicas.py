"""Replica helpers for the custom train steps: how many replicas, and sums over them.

Inside ``strategy.run`` (``fit`` under a ``tf.distribute`` strategy) each replica sees its part of
the global batch; the models all-reduce the statistics the paper's formulas need over the *global*
batch (task losses of Eq. 1 and 7, center updates of Eq. 4, per-task gradients). Outside a replica
context, or with one replica, every helper is the identity.
"""

from __future__ import annotations

import tensorflow as tf


def replica_context() -> tuple[tf.distribute.ReplicaContext | None, int]:
    """The current replica context (``None`` in a cross-replica context) and the replica count."""
    context = tf.distribute.get_replica_context()
    return context, (context.num_replicas_in_sync if context is not None else 1)


def num_replicas() -> int:
    """Replicas in sync in the current replica context (1 outside one)."""
    return replica_context()[1]


def sum_over_replicas(value):
    """``value`` (a tensor or a nest of tensors) summed over the replicas; ``value`` itself with one."""
    context, replicas = replica_context()
    if replicas > 1:
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value)
    return value


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` spanning more than one worker (TF_CONFIG)."""
    in_multi_worker_mode = getattr(getattr(strategy, "extended", None), "_in_multi_worker_mode", None)
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and in_multi_worker_mode is not None
        and bool(in_multi_worker_mode())
    )
