"""Every weighting method of docs/weighting.md trains through ``DynamicMultiTaskModel`` and is
exact under ``MirroredStrategy`` (2 logical CPUs equal one device).

The gradient methods need the model's side of the per-task gradient hook
(``uses_task_gradients`` / ``combine_task_gradients``): the shared variables step along the
strategy's direction, the task heads along d(sum_i L_i).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_model

from dynamic_mtl.weighting import GradientWeighting

GRADIENT_METHODS = ["pcgrad", "mgda", "cagrad", "imtl_g", "nash_mtl", "aligned_mtl", "gradvac", "db_mtl"]
LOSS_METHODS = ["rlw", "gls", "famo", "stch"]
SHARED = "trunk_stage1_conv/kernel"  # the small CNN's trunk: shared by both tasks
HEAD = "identity_logits/kernel"  # the identity head


def _variables(model):
    return {v.path: v for v in model.network_variables}


@pytest.mark.parametrize("name", GRADIENT_METHODS + LOSS_METHODS)
def test_every_method_trains_a_tiny_model_through_fit(name, tiny_batch):
    x, y = tiny_batch
    model = small_model(name)
    model.compile(network_optimizer=keras.optimizers.SGD(0.05))
    before = {path: v.numpy().copy() for path, v in _variables(model).items()}
    initial = model.get_weights()
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"])), history.history
    after = _variables(model)
    for path in (SHARED, HEAD):
        assert np.abs(after[path].numpy() - before[path]).max() > 0, (name, path)
        assert np.all(np.isfinite(after[path].numpy()))
    assert int(model.train_step_count.numpy()) == 4
    log = model.step_log.numpy()[:4]
    np.testing.assert_array_equal(log[:, 0], [1, 2, 3, 4])
    assert np.all(np.isfinite(log))
    # training creates no variable: a new fold can restore the initial state (as the harness does)
    model.set_weights(initial)
    np.testing.assert_array_equal(_variables(model)[SHARED].numpy(), before[SHARED])


def test_db_mtl_buffer_exists_from_construction_with_the_shared_parameter_count():
    model = small_model("db_mtl")
    (buffer,) = [v for v in model.weighting.variables if "gradient_buffer" in v.path]
    shared = model.shared_parameter_count()
    assert buffer.shape == (2, shared)
    heads = sum(int(np.prod(v.shape)) for v in model.network_variables if "logits" in v.path)
    assert 0 < shared <= sum(int(np.prod(v.shape)) for v in model.network_variables) - heads


@keras.saving.register_keras_serializable(package="dynamic_mtl_tests")
class FirstTaskOnly(GradientWeighting):
    """The shared variables follow task 1's gradient alone (a probe of the hook)."""

    def combine_task_gradients(self, task_gradients, task_losses):
        self.calls = getattr(self, "calls", 0) + 1
        return task_gradients[0], tf.constant([1.0, 0.0])


def test_the_hook_steps_the_shared_variables_along_the_direction_and_the_heads_on_the_sum(tiny_batch):
    """SGD without momentum, weight decay 0: one step moves the trunk by -lr * dL_1/dtheta and the
    identity head by -lr * d(L_1 + L_2)/dtheta, both from the global batch."""
    x, y = tiny_batch
    lr = 0.1
    model = small_model(FirstTaskOnly(num_tasks=2), weight_decay=0.0, center_loss_weight=0.0)
    model.compile(network_optimizer=keras.optimizers.SGD(lr))
    variables = _variables(model)
    shared, head = variables[SHARED], variables[HEAD]
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(x, training=True)
        losses = [tf.reduce_mean(l) for l in model.compute_task_losses(y, outputs)]
        total = losses[0] + losses[1]
    expected_shared = shared.numpy() - lr * tape.gradient(losses[0], shared.value).numpy()
    expected_head = head.numpy() - lr * tape.gradient(total, head.value).numpy()
    model.train_on_batch(x, y)
    assert model.weighting.calls >= 1
    np.testing.assert_allclose(shared.numpy(), expected_shared, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(head.numpy(), expected_head, rtol=1e-4, atol=1e-6)


#: as tests/test_distributed.py: round-off only between one device and 2 replicas
RELATIVE_TOLERANCE = 1e-3
SHARE_OFF_TOLERANCE = 1e-2
#: the update of these is a sum of adjusted task gradients (twice static (0.5, 0.5)'s step): half the rate
SUM_METHODS = {"pcgrad": 0.005, "gradvac": 0.005}
#: STCH with no warm-up epoch: epoch 1 of the check trains on the smooth Tchebycheff loss
OPTIONS = {"stch": {"warmup_epochs": 0}}


@pytest.mark.slow
@pytest.mark.parametrize("group", [GRADIENT_METHODS, LOSS_METHODS], ids=["gradient", "loss"])
def test_mirrored_two_replicas_match_one_device(group):
    script = Path(__file__).with_name("mirrored_weighting_methods.py")
    specs = [{"name": n, "options": OPTIONS.get(n, {}), "lr": SUM_METHODS.get(n, 0.01)} for n in group]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, str(script), json.dumps(specs)], capture_output=True, text=True, env=env, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for name in group:
        assert report[name]["steps_logged"] == 4, report[name]
        assert report[name]["movement"] > 1e-2, report[name]  # training really happened
        assert report[name]["relative_diff"] < RELATIVE_TOLERANCE, (name, report[name])
        assert report[name]["share_off"] < SHARE_OFF_TOLERANCE, (name, report[name])
