"""Trains the same model on one device and with MirroredStrategy on 2 logical CPUs.

Run as a script (it must configure devices before TensorFlow initialises them);
prints a JSON dict weighting spec -> how far the two runs' variables differ.

A weighting spec is a name of ``dynamic_mtl.weighting.WEIGHTINGS`` (``"pcgrad"``), a name with
the flag ``:nostop`` (the dynamic unit's weights not stop-gradiented), or ``module:Class`` for a
strategy class importable from the tests folder or the package (``"gradient_toys:ProjectAway"``).
From a test, :func:`equivalence_report` runs the script and returns the parsed report.
With ``--partial`` (or the prefix ``partial+`` on one spec: ``partial+static``) a quarter of each
task's labels are missing (-1) and every sample has a random sample weight, so the replicas'
per-task label counts and weight sums differ.

The suite's checks all read one report of :data:`SUITE_SPECS` (the ``mirrored_report`` fixture
of tests/conftest.py): one process start-up and one 2-device set-up instead of one per test.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

#: every spec a test of the suite checks: tests/test_distributed.py (the weightings),
#: tests/test_gradient_hook.py (a gradient strategy), tests/test_model_tasks.py (partial labels)
SUITE_SPECS = [
    "dynamic",
    "dynamic:nostop",
    "naive_dynamic",
    "uncertainty",
    "gradnorm",
    "dwa",
    "static",
    "gradient_toys:ProjectAway",
    "partial+dynamic",
    "partial+gradient_toys:ProjectAway",
]
PARTIAL = "partial+"


def equivalence_report(weightings, partial: bool = False, timeout: int = 600) -> dict:
    """Runs this script in a subprocess for the given weighting specs; returns its JSON report."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    flags = ["--partial"] if partial else []
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), *flags, *weightings],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


import dynamic_mtl as dm  # noqa: E402

if __name__ == "__main__":
    dm.use_logical_cpus(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def build(weighting, options):
    keras.utils.set_random_seed(0)
    return dm.build_face_expression_model(
        5,
        4,
        backbone="small_cnn",
        image_size=24,
        weighting=weighting,
        weighting_options=options,
        dropout_rate=0.0,
        embedding_size=16,
        center_loss_weight=0.1,
        synchronized_batchnorm=True,
    )


def train(strategy, spec, initial, x, y, weights=None):
    with strategy.scope():
        model = build(*resolve(spec))  # a strategy object is made in the scope that trains it
        model.set_weights(initial)
        # SGD: RMSprop with eps 1e-7 turns round-off in near-zero gradients into lr-sized steps
        model.compile(
            network_optimizer=keras.optimizers.SGD(0.01, momentum=0.9), weight_optimizer=dm.default_weight_optimizer()
        )
    data = (x, y) if weights is None else (x, y, weights)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(16)
    model.fit(dataset, epochs=2, verbose=0)
    return [(v.path, v.numpy()) for v in model.variables if "seed_generator" not in v.path]


def resolve(spec: str):
    """``(weighting, options)`` for ``build`` from a weighting spec (see the module docstring)."""
    name, _, flag = spec.partition(":")
    if name in dm.WEIGHTINGS:
        return name, ({"stop_gradient_weights": False} if flag == "nostop" else {})
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)(num_tasks=2), {}


def data():
    """32 images with both tasks' labels, and the same images with a quarter of each task's labels
    missing plus random sample weights: ``(x, y, y_partial, weights)``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 24, 24, 3)).astype("float32")
    y = {"identity": rng.integers(0, 5, 32).astype("int32"), "expression": rng.integers(0, 4, 32).astype("int32")}
    y_partial = {task: labels.copy() for task, labels in y.items()}
    for labels in y_partial.values():
        labels[rng.permutation(32)[:8]] = -1
    weights = rng.uniform(0.2, 2.0, 32).astype("float32")
    return x, y, y_partial, weights


def main(weightings, partial=False):
    x, y_full, y_partial, partial_weights = data()
    mirrored = tf.distribute.MirroredStrategy(devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    report = {}
    for key in weightings:
        spec = key.removeprefix(PARTIAL)
        y, weights = (y_partial, partial_weights) if partial or key != spec else (y_full, None)
        initial = build(*resolve(spec)).get_weights()
        one = train(tf.distribute.get_strategy(), spec, initial, x, y, weights)
        two = train(mirrored, spec, initial, x, y, weights)
        diffs = {a: float(np.max(np.abs(va - vb))) for (a, va), (_, vb) in zip(one, two)}
        worst = max(diffs, key=diffs.get)
        trainable = [(va, vb, v0) for (_, va), (_, vb), v0 in zip(one, two, initial) if va.shape == v0.shape]
        flat = lambda arrays: np.concatenate([np.ravel(a) for a in arrays])  # noqa: E731
        one_flat, two_flat, init_flat = (flat(t) for t in zip(*trainable))
        movement = float(np.linalg.norm(one_flat - init_flat))
        step_log = next(value for path, value in one if path.endswith("step_log"))
        report[key] = {
            "max_abs_diff": diffs[worst],
            "worst": worst,
            "movement": movement,
            # ||w_1dev - w_2dev|| / ||w_1dev - w_init||: round-off relative to how far training moved
            "relative_diff": float(np.linalg.norm(one_flat - two_flat)) / movement,
            # share of weights off by > 1e-5 (a max-pool tie broken the other way moves one element)
            "share_off": float(np.mean(np.abs(one_flat - two_flat) > 1e-5)),
            "steps_logged": float(step_log[:, 0].max()),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main([a for a in arguments if a != "--partial"], partial="--partial" in arguments)
