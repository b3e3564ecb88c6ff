"""The per-task gradient hook of ``DynamicMultiTaskModel`` (``uses_task_gradients``): the shared
update is the strategy's combination of the global-batch task gradients, every head gets the
gradient of its own loss, and 2 replicas equal one device."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from gradient_toys import ProjectAway, project_away

import dynamic_mtl as dm

TASKS = [dm.TaskSpec("a", "a"), dm.TaskSpec("b", "b", kind="regression"), dm.TaskSpec("c", "c", kind="multilabel")]


def _network(decay=0.1):
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, activation="tanh", kernel_regularizer=keras.regularizers.L2(decay), name="trunk")(inputs)
    return keras.Model(
        inputs,
        {
            "a": keras.layers.Dense(3, name="a_head")(h),
            "b": keras.layers.Dense(1, name="b_head")(h),
            "c": keras.layers.Dense(2, name="c_head")(h),
        },
    )


def _data(n=8):
    rng = np.random.default_rng(1)
    return (
        rng.normal(size=(n, 3)).astype("float32"),
        {
            "a": rng.integers(0, 3, n).astype("int32"),
            "b": rng.normal(size=n).astype("float32"),
            "c": rng.integers(0, 2, (n, 2)).astype("float32"),
        },
    )


def _model(decay=0.1):
    keras.utils.set_random_seed(0)
    return dm.DynamicMultiTaskModel(_network(decay), TASKS, weighting=ProjectAway(num_tasks=3))


def _by_hand(network, x, y):
    """Per-task gradients of the three global mean losses, and of the weight decay."""
    with tf.GradientTape(persistent=True) as tape:
        out = network(x, training=True)
        losses = [
            tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y["a"], out["a"], from_logits=True)),
            tf.reduce_mean(tf.square(out["b"][:, 0] - y["b"])),
            tf.reduce_mean(keras.losses.binary_crossentropy(y["c"], out["c"], from_logits=True)),
        ]
        decay = tf.add_n(network.losses)
    variables = {v.path: v.value for v in network.trainable_variables}
    grads = [{p: tape.gradient(loss, v) for p, v in variables.items()} for loss in losses]
    decay_grads = {p: tape.gradient(decay, v) for p, v in variables.items()}
    return grads, decay_grads


def test_shared_update_is_the_strategys_direction_and_heads_get_their_own_loss():
    x, y = _data()
    model = _model()
    result = model.compute_gradients(x, y)
    grads, decay = _by_hand(model.network, x, y)
    shared = ["trunk/kernel", "trunk/bias"]
    matrix = np.stack([np.concatenate([g[p].numpy().ravel() for p in shared]) for g in grads])
    direction, weights = project_away(matrix)
    assert abs(matrix[1] @ matrix[0]) > 1e-4  # the projection really changes something
    ours = dict(zip([v.path for v in model.network_variables], [g.numpy() for g in result.network_gradients]))
    got = np.concatenate([ours[p].ravel() for p in shared])
    expected = direction + np.concatenate(
        [decay[p].numpy().ravel() if decay[p] is not None else np.zeros(ours[p].size) for p in shared]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.task_weights.numpy(), weights, rtol=1e-4, atol=1e-6)
    for i, head in enumerate(("a_head", "b_head", "c_head")):  # each head: d(sum_i L_i) = its own d L_i
        for part in ("kernel", "bias"):
            np.testing.assert_allclose(
                ours[f"{head}/{part}"], grads[i][f"{head}/{part}"].numpy(), rtol=1e-5, atol=1e-7, err_msg=head
            )
    np.testing.assert_allclose(
        result.network_loss.numpy(),
        np.dot(weights, result.task_losses.numpy()) + sum(np.asarray(model.network.losses)),
        rtol=1e-5,
    )


def test_fit_applies_the_direction_and_logs_the_strategys_weights():
    x, y = _data()
    model = _model(decay=0.0)
    model.compile(network_optimizer=keras.optimizers.SGD(0.5))
    before = {v.path: v.numpy().copy() for v in model.network_variables}
    grads, _ = _by_hand(model.network, x, y)
    matrix = np.stack([np.concatenate([g[p].numpy().ravel() for p in ("trunk/kernel", "trunk/bias")]) for g in grads])
    direction, weights = project_away(matrix)
    logs = model.train_on_batch(x, y, return_dict=True)
    moved = np.concatenate(
        [(v.numpy() - before[v.path]).ravel() for v in model.network_variables if v.path.startswith("trunk")]
    )
    np.testing.assert_allclose(moved, -0.5 * direction, rtol=1e-4, atol=1e-6)
    for name, w in zip("abc", weights):
        np.testing.assert_allclose(logs[f"{name}_weight"], w, rtol=1e-4)
    np.testing.assert_allclose(model.last_task_weights.numpy(), weights, rtol=1e-4)
    assert np.isfinite(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])


def test_loss_scaled_gradient_step_moves_weights_like_float32():
    x, y = _data()
    moves = {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = _model()
            model.compile(network_optimizer=keras.optimizers.SGD(0.1))
            before = [v.numpy().copy() for v in model.network_variables]
            model.train_on_batch(x, y)
            moves[policy] = np.concatenate([(v.numpy() - b).ravel() for v, b in zip(model.network_variables, before)])
        finally:
            keras.mixed_precision.set_global_policy("float32")
    a, b = moves["float32"], moves["mixed_float16"]
    assert np.linalg.norm(a) > 1e-3
    # float16 round-off only; an update off by the loss scale (2**15) would give ~1
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.05


@pytest.mark.slow
@pytest.mark.xdist_group("mirrored_report")  # one worker runs the shared subprocess (tests/conftest.py)
def test_mirrored_two_replicas_match_one_device_for_a_gradient_strategy(mirrored_report):
    report = mirrored_report["gradient_toys:ProjectAway"]
    assert report["steps_logged"] == 4 and report["movement"] > 1e-2, report
    assert report["relative_diff"] < 1e-3 and report["share_off"] < 1e-2, report
