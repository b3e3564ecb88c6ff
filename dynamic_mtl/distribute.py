"""Choosing a ``tf.distribute`` strategy, and logical CPU devices for multi-replica tests."""

from __future__ import annotations

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
