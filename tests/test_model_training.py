"""The two-tape train step: disjoint updates, single-task equivalence, T = 3 subclassing,
robustness to zero and huge losses."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_model

import dynamic_mtl as dm


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def _one_step(model, batch):
    x, y = batch
    model.train_on_batch(x, y)


# the naive baseline with its own weight optimizer (its default shares the network's:
# tests/test_weighting_defaults.py)
_SEPARATE = {"dynamic": {}, "naive_dynamic": {"weighting_options": {"weight_optimizer": "separate"}}}


@pytest.mark.parametrize("weighting", ["dynamic", "naive_dynamic"])
def test_each_optimizer_only_moves_its_own_variables(tiny_batch, weighting):
    model = small_model(weighting, **_SEPARATE[weighting])
    model.compile(network_optimizer=keras.optimizers.SGD(0.0), weight_optimizer=keras.optimizers.SGD(0.1))
    net_before, unit_before = _snapshot(model.network_variables), _snapshot(model.weighting_variables)
    _one_step(model, tiny_batch)
    assert not any(_changed(net_before, model.network_variables))
    assert all(_changed(unit_before, model.weighting_variables))

    model = small_model(weighting, **_SEPARATE[weighting])
    model.compile(network_optimizer=keras.optimizers.SGD(0.1), weight_optimizer=keras.optimizers.SGD(0.0))
    net_before, unit_before = _snapshot(model.network_variables), _snapshot(model.weighting_variables)
    _one_step(model, tiny_batch)
    assert any(_changed(net_before, model.network_variables))
    assert not any(_changed(unit_before, model.weighting_variables))


def test_variable_groups_are_disjoint_and_cover_all_trainables():
    model = small_model("dynamic")
    net = {id(v) for v in model.network_variables}
    unit = {id(v) for v in model.weighting_variables}
    assert net.isdisjoint(unit)
    assert net | unit == {id(v) for v in model.trainable_variables}


def test_stop_gradient_option_decides_whether_the_network_loss_reaches_the_trunk_through_w(tiny_batch):
    x, y = tiny_batch
    grads = {}
    for stop in (True, False):
        model = small_model("dynamic", weighting_options={"stop_gradient_weights": stop})
        result = model.compute_gradients(x, y)
        grads[stop] = [g.numpy() for g in result.network_gradients]
        names = [v.path for v in model.network_variables]
    trunk = [i for i, n in enumerate(names) if n.startswith("trunk_stage3_conv")]
    face_head = [i for i, n in enumerate(names) if n.startswith("identity_logits")]
    # The path through w = softmax(psi Z) reaches the trunk (Z) but not the task heads.
    assert not np.allclose(grads[True][trunk[0]], grads[False][trunk[0]])
    np.testing.assert_allclose(grads[True][face_head[0]], grads[False][face_head[0]], rtol=1e-5, atol=1e-7)


def test_static_one_zero_is_single_task_training_of_branch_one(tiny_batch):
    """StaticWeighting([1, 0]) gives the gradients of a plain single-task loss L1 (Eq. 2)."""
    x, y = tiny_batch
    model = small_model("static", weighting_options={"weights": [1.0, 0.0]}, weight_decay=0.0, center_loss_weight=0.1)
    model.center_losses["identity"].centers.assign(
        np.random.default_rng(3).normal(size=model.center_losses["identity"].centers.shape)
    )
    result = model.compute_gradients(x, y)

    network = model.network
    centers = model.center_losses["identity"].centers.numpy()
    with tf.GradientTape() as tape:
        out = network(x, training=True)
        ce = keras.losses.sparse_categorical_crossentropy(y["identity"], out["identity_logits"], from_logits=True)
        # the center loss reads the bottleneck X1 (Eq. 4; docs/fidelity.md row 9)
        center = tf.reduce_sum(tf.square(out["bottleneck"] - tf.gather(centers, y["identity"])), axis=-1)
        plain_loss = tf.reduce_mean(ce + 0.1 * center)
    plain = tape.gradient(plain_loss, [v.value for v in network.trainable_variables])
    for variable, ours, theirs in zip(network.trainable_variables, result.network_gradients, plain):
        if variable.path.startswith("expression"):
            assert theirs is None and not np.any(ours.numpy()), variable.path
        else:
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6, err_msg=variable.path)


def test_train_step_logs_every_weight_loss_l3_and_grad_norm(tiny_batch, tmp_path):
    x, y = tiny_batch
    model = small_model("dynamic")
    model.compile(network_optimizer=keras.optimizers.RMSprop(1e-3), weight_optimizer=dm.default_weight_optimizer())
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    log = tmp_path / "steps.csv"
    history = model.fit(ds, epochs=3, verbose=0, callbacks=[dm.StepLogger(str(log), flush_every=3)])
    for key in (
        "loss",
        "weight_loss",
        "identity_loss",
        "expression_loss",
        "identity_weight",
        "expression_weight",
        "identity_accuracy",
        "expression_accuracy",
    ):
        assert key in history.history
    import pandas as pd

    frame = pd.read_csv(log)
    assert list(frame["step"]) == list(range(1, 13))
    assert list(frame["epoch"]) == [0] * 4 + [1] * 4 + [2] * 4
    for column in (
        "w_identity",
        "w_expression",
        "loss_identity",
        "loss_expression",
        "weight_loss",
        "weight_grad_norm",
        "a_identity",
        "a_expression",
        "wall_time",
    ):
        assert np.isfinite(frame[column]).all(), column
    np.testing.assert_allclose(frame["w_identity"] + frame["w_expression"], 1.0, rtol=1e-5)
    assert (frame["weight_grad_norm"] > 0).all()
    # L3 = sum_i w_i / (L_i + sigma) (Eq. 7), recomputed from the logged columns
    l3 = frame["w_identity"] / (frame["loss_identity"] + 0.01) + frame["w_expression"] / (
        frame["loss_expression"] + 0.01
    )
    np.testing.assert_allclose(frame["weight_loss"], l3, rtol=1e-4)


def test_step_logger_refuses_a_flush_interval_beyond_the_buffer(tiny_batch, tmp_path):
    x, y = tiny_batch
    model = small_model("dynamic")
    model.compile(network_optimizer="sgd")
    with pytest.raises(ValueError, match="log_capacity"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[dm.StepLogger(str(tmp_path / "s.csv"), flush_every=10_000)])


class ScaledLossModel(dm.DynamicMultiTaskModel):
    """Downstream subclass: scales task 0's loss (0 or huge) to probe robustness."""

    scale = 1.0

    def compute_task_losses(self, y, outputs):
        losses = super().compute_task_losses(y, outputs)
        return [losses[0] * self.scale] + losses[1:]


@pytest.mark.parametrize("scale", [0.0, 1e6])
@pytest.mark.parametrize("weighting", ["dynamic", "naive_dynamic"])
def test_no_nan_or_inf_when_a_task_loss_is_zero_or_huge(tiny_batch, scale, weighting):
    x, y = tiny_batch
    model = small_model(weighting, model_class=ScaledLossModel)
    model.scale = scale
    model.compile(network_optimizer=keras.optimizers.RMSprop(1e-3), weight_optimizer=dm.default_weight_optimizer())
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), key
    for variable in model.variables:
        assert np.all(np.isfinite(variable.numpy())), variable.path
    if weighting == "dynamic":  # Eq. 10: the task with the larger loss gets the larger weight
        w = history.history["identity_weight"][-1]
        assert (w > 0.5) if scale > 1 else (w < 0.5)


def _three_task_network(image_size=16):
    inputs = keras.Input((image_size, image_size, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    shared = keras.layers.Dense(16, activation="relu", name="shared")(h)
    outputs = {
        "shared": shared,
        "a_logits": keras.layers.Dense(3, name="a_logits")(shared),
        "b_logits": keras.layers.Dense(4, name="b_logits")(shared),
        "c_value": keras.layers.Dense(1, name="c_value")(shared),
    }
    return keras.Model(inputs, outputs)


@keras.saving.register_keras_serializable(package="tests")
class ThreeTaskModel(dm.DynamicMultiTaskModel):
    """Two classification tasks and one regression task (mean squared error)."""

    def compute_task_losses(self, y, outputs):
        losses = []
        for task in self.tasks[:2]:
            losses.append(dm.sparse_softmax_cross_entropy(y[task.name], outputs[task.logits]))
        losses.append(tf.square(tf.squeeze(outputs["c_value"], -1) - tf.cast(y["c"], tf.float32)))
        return losses


@pytest.mark.parametrize("weighting", ["dynamic", "uncertainty", "dwa", "gradnorm"])
def test_a_subclass_with_three_tasks_trains(weighting):
    keras.utils.set_random_seed(0)
    tasks = [dm.TaskSpec("a", "a_logits"), dm.TaskSpec("b", "b_logits"), dm.TaskSpec("c", "c_value")]
    model = ThreeTaskModel(_three_task_network(), tasks, weighting=weighting, shared_layer_name="shared")
    model.compile(network_optimizer=keras.optimizers.Adam(1e-2), weight_optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16, 16, 3)).astype("float32")
    y = {"a": rng.integers(0, 3, 32), "b": rng.integers(0, 4, 32), "c": rng.normal(size=32).astype("float32")}
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert history.history["c_loss"][-1] < history.history["c_loss"][0]
    weights = [history.history[f"{n}_weight"][-1] for n in "abc"]
    assert len(weights) == 3 and all(np.isfinite(weights))
    if weighting == "dynamic":
        np.testing.assert_allclose(sum(weights), 1.0, rtol=1e-5)
