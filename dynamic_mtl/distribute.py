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


def make_strategy(name: str = "default", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (every visible GPU, else the given or all
    logical CPU devices) or ``multiworker`` (reads TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
