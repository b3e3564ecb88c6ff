"""Choosing a ``tf.distribute`` strategy, where each worker writes, and logical CPU devices for
multi-replica tests."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def use_logical_cpus(count: int) -> None:
    """Split the CPU into ``count`` logical devices (must run before TF initialises devices)."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as err:  # devices already initialised: fine if the count already matches
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise RuntimeError(
                f"cannot create {count} logical CPUs after TensorFlow initialised its devices; "
                "call use_logical_cpus first"
            ) from err


def check_strategy_devices(strategy: tf.distribute.Strategy) -> None:
    """Raise if a ``MirroredStrategy`` names a device that does not exist in this process.

    ``tf.distribute.MirroredStrategy(devices=["/cpu:0", "/cpu:1"])`` accepts ``/cpu:1`` when the CPU
    was never split (:func:`use_logical_cpus`): soft placement then runs both replicas on
    ``/cpu:0``, and the first all-reduce between them (the step's global statistics) never
    completes. Other strategies are not checked.
    """
    if not isinstance(strategy, tf.distribute.MirroredStrategy):
        return
    present = {
        (spec.device_type, spec.device_index)
        for spec in (tf.DeviceSpec.from_string(d.name) for d in tf.config.list_logical_devices())
    }
    for name in strategy.extended.worker_devices:
        spec = tf.DeviceSpec.from_string(name)
        if (spec.device_type, spec.device_index) not in present:
            count = sum(1 for kind, _ in present if kind == spec.device_type)
            raise ValueError(
                f"MirroredStrategy device {name} does not exist ({count} logical {spec.device_type} device(s)); "
                "call dynamic_mtl.use_logical_cpus(n) before TensorFlow starts, or name existing devices"
            )


def make_strategy(name: str = "default", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (every visible GPU, else the given or all
    logical CPU devices) or ``multiworker`` (reads TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        check_strategy_devices(strategy)
        return strategy
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes a run's files: always, except for a ``MultiWorkerMirroredStrategy``
    worker that is not the chief (the ``chief`` task, or worker 0 of a cluster without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def worker_directory(strategy: tf.distribute.Strategy, directory: str | Path) -> Path:
    """Where this process writes a run's files: ``directory`` for the chief (:func:`is_chief`),
    ``directory/workers/<task type>-<task id>`` for every other worker, so that workers sharing a file
    system never write the same checkpoint (every worker must save, since saving runs collective ops,
    as TensorFlow's multi-worker guide does with a temporary directory per worker)."""
    directory = Path(directory)
    if is_chief(strategy):
        return directory
    resolver = strategy.cluster_resolver
    return directory / "workers" / f"{resolver.task_type}-{resolver.task_id}"
