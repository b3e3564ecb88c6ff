"""Any task type through Keras conventions: a Keras loss and metrics per task, Keras-named logs,
``predict`` by task kind, sample weights, missing-label masks, label checks; any dict-output
network (TTC and cross-stitch included) with any weighting."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from gradient_toys import ProjectAway

import dynamic_mtl as dm
from dynamic_mtl.ttc import CrossStitchNetwork, TTCNetwork
from dynamic_mtl.ttc.functional import multitask_network

N = 32


def _network():
    inputs = keras.Input((6,))
    shared = keras.layers.Dense(16, activation="relu", name="trunk")(inputs)
    return keras.Model(
        inputs,
        {
            "shared": shared,
            "cls": keras.layers.Dense(3, name="cls_head")(shared),
            "reg": keras.layers.Dense(1, name="reg_head")(shared),
            "tags": keras.layers.Dense(4, name="tags_head")(shared),
        },
    )


def _tasks():
    return [
        dm.TaskSpec("cls", "cls"),
        dm.TaskSpec("reg", "reg", loss="mse", metrics=["mae"]),
        dm.TaskSpec(
            "tags",
            "tags",
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[keras.metrics.BinaryAccuracy(name="acc")],
        ),
    ]


def _model(weighting="dynamic", seed=0):
    keras.utils.set_random_seed(seed)
    return dm.DynamicMultiTaskModel(_network(), _tasks(), weighting=weighting)


def _data(seed=0):
    """Random data; a quarter of each task's labels missing (-1, NaN, a -1 row)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 6)).astype("float32")
    cls = rng.integers(0, 3, N).astype("int32")
    reg = (x[:, 0] + 0.1 * rng.normal(size=N)).astype("float32")
    tags = (x[:, 1:5] > 0).astype("int32")
    cls[rng.permutation(N)[: N // 4]] = -1
    reg[rng.permutation(N)[: N // 4]] = np.nan
    tags[rng.permutation(N)[: N // 4]] = -1
    return x, {"cls": cls, "reg": reg, "tags": tags}


def _losses_by_hand(model, x, y, weights=None):
    """Per task: the weighted mean loss over the labelled samples (numpy)."""
    out = model.network(x, training=False)
    weights = {k: np.ones(N) for k in y} if weights is None else weights
    per_sample = {
        "cls": keras.losses.sparse_categorical_crossentropy(np.maximum(y["cls"], 0), out["cls"], from_logits=True),
        "reg": np.square(out["reg"].numpy()[:, 0] - np.nan_to_num(y["reg"])),
        "tags": keras.losses.binary_crossentropy(
            np.maximum(y["tags"], 0).astype("float32"), out["tags"], from_logits=True
        ),
    }
    labelled = {"cls": y["cls"] >= 0, "reg": ~np.isnan(y["reg"]), "tags": (y["tags"] >= 0).all(1)}
    return {
        k: float(np.sum(np.asarray(v) * weights[k] * labelled[k]) / np.sum(weights[k] * labelled[k]))
        for k, v in per_sample.items()
    }


def test_three_task_types_fit_evaluate_predict_save_load(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(network_optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_data=(x, y))
    names = (
        {"loss", "weight_loss"}
        | {f"{t}_{k}" for t in ("cls", "reg", "tags") for k in ("loss", "weight")}
        | {"cls_accuracy", "reg_mae", "tags_acc"}
    )
    assert set(history.history) == names | {f"val_{n}" for n in names}
    assert all(np.all(np.isfinite(v)) for v in history.history.values())
    assert history.history["reg_loss"][-1] < history.history["reg_loss"][0]

    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    by_hand = _losses_by_hand(model, x, y)
    for task in ("cls", "reg", "tags"):  # masked samples excluded, exact means
        np.testing.assert_allclose(logs[f"{task}_loss"], by_hand[task], rtol=1e-5)
    out = model.predict(x, verbose=0)
    assert set(out) == {"cls_probabilities", "reg_values", "tags_probabilities", "task_weights"}
    np.testing.assert_allclose(out["cls_probabilities"].sum(1), 1.0, rtol=1e-5)
    assert out["reg_values"].shape == (N, 1) and out["tags_probabilities"].shape == (N, 4)
    assert ((out["tags_probabilities"] > 0) & (out["tags_probabilities"] < 1)).all()
    labelled = ~np.isnan(y["reg"])
    mae = np.abs(out["reg_values"][:, 0] - y["reg"])[labelled].mean()
    np.testing.assert_allclose(logs["reg_mae"], mae, rtol=1e-5)

    path = tmp_path / "three.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [t.task_kind for t in loaded.tasks] == ["classification", "regression", "multilabel"]
    again = loaded.predict(x, verbose=0)
    for key in out:
        np.testing.assert_allclose(again[key], out[key], rtol=1e-5, atol=1e-6)
    loaded.compile(network_optimizer="sgd")
    assert set(loaded.evaluate(x, y, verbose=0, return_dict=True)) == names


def test_sample_weights_vector_and_per_task_dict():
    x, y = _data()
    model = _model("static")
    model.compile(network_optimizer="sgd")
    rng = np.random.default_rng(3)
    vector = rng.uniform(0.0, 2.0, N).astype("float32")
    logs = model.evaluate(x, y, sample_weight=vector, batch_size=N, verbose=0, return_dict=True)
    weighted = _losses_by_hand(model, x, y, {k: vector for k in y})
    plain = _losses_by_hand(model, x, y)
    for task in y:
        np.testing.assert_allclose(logs[f"{task}_loss"], weighted[task], rtol=1e-5)
        assert abs(weighted[task] - plain[task]) > 1e-4  # the weights do change the loss
    per_task = {"cls": vector, "reg": np.ones(N, "float32"), "tags": (np.arange(N) % 2).astype("float32")}
    dataset = tf.data.Dataset.from_tensor_slices((x, y, per_task)).batch(8)
    logs = model.evaluate(dataset, verbose=0, return_dict=True)
    # the mean of per-batch weighted means: check the full batch through compute_gradients instead
    result = model.compute_gradients(x, y, per_task)
    expected = _losses_by_hand(model, x, y, per_task)
    np.testing.assert_allclose(result.task_losses.numpy(), [expected[k] for k in ("cls", "reg", "tags")], rtol=1e-5)


def test_missing_labels_change_nothing_and_an_unlabelled_task_gets_no_gradient():
    x, y = _data()
    model = _model("static")
    result = model.compute_gradients(x, y)
    expected = _losses_by_hand(model, x, y)
    np.testing.assert_allclose(result.task_losses.numpy(), [expected[k] for k in ("cls", "reg", "tags")], rtol=1e-5)
    unlabelled = dict(y, reg=np.full(N, np.nan, "float32"))
    result = model.compute_gradients(x, unlabelled)
    assert result.task_losses.numpy()[1] == 0.0
    grads = dict(zip([v.path for v in model.network_variables], result.network_gradients))
    assert not np.any(grads["reg_head/kernel"].numpy()) and np.all(np.isfinite(grads["trunk/kernel"].numpy()))


def test_bad_labels_give_a_clear_error():
    x, y = _data()
    model = _model("static")
    bad = dict(y, cls=np.where(np.arange(N) == 5, 7, y["cls"]).astype("int32"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"task cls: class labels must lie in \[0, 3\)(.|\n)*7"):
        model.compute_gradients(x, bad)
    with pytest.raises(TypeError, match="task 'cls'.*integers"):
        model.compute_gradients(x, dict(y, cls=y["cls"].astype("float32")))
    model.compile(network_optimizer="sgd")
    with pytest.raises(tf.errors.InvalidArgumentError, match="task cls: class labels"):
        model.fit(x, bad, batch_size=N, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="TaskSpec\\(metrics"):
        model.compile(network_optimizer="sgd", metrics=["accuracy"])
    with pytest.raises(ValueError, match="kind"):
        dm.TaskSpec("t", "t", loss=lambda a, b: a)


def test_a_center_loss_needs_a_classification_task():
    with pytest.raises(ValueError, match="classification"):
        dm.TaskSpec("r", "r", kind="regression", center_loss_weight=0.1, embedding="e")


def test_task_spec_config_round_trips():
    for task in _tasks():
        again = dm.TaskSpec.from_config(task.get_config())
        assert again.task_kind == task.task_kind and [m.name for m in again.make_metrics()] == [
            m.name for m in task.make_metrics()
        ]


def test_strategies_without_a_weight_unit_need_no_shared_output():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(8, name="trunk")(inputs)
    network = keras.Model(inputs, {"a": keras.layers.Dense(3)(h), "b": keras.layers.Dense(1)(h)})
    tasks = [dm.TaskSpec("a", "a"), dm.TaskSpec("b", "b", kind="regression")]
    for weighting in ("static", "uncertainty", "dwa"):
        dm.DynamicMultiTaskModel(network, tasks, weighting=weighting)
    with pytest.raises(ValueError, match="shared_output.*lacks"):
        dm.DynamicMultiTaskModel(network, tasks, weighting="dynamic")


def test_uncertainty_weights_stay_finite_when_a_task_loss_is_zero():
    strategy = dm.UncertaintyWeighting(num_tasks=2)
    strategy.build()
    strategy.log_vars.assign([-200.0, 0.0])  # exp(200) would be inf in float32
    weights = strategy.task_weights().numpy()
    assert np.all(np.isfinite(weights)) and weights[0] == pytest.approx(np.exp(10.0), rel=1e-5)
    losses = tf.constant([0.0, 1.0])
    with tf.GradientTape() as tape:
        value = strategy.weight_loss(strategy.task_weights(), losses)
    assert tape.gradient(value, strategy.log_vars.value).numpy()[0] == 0.0  # stuck at the bound


@pytest.mark.parametrize("network_class", [TTCNetwork, CrossStitchNetwork])
@pytest.mark.parametrize("weighting", ["static", "dynamic", "project_away"])
def test_ttc_and_cross_stitch_networks_train_with_any_weighting(network_class, weighting):
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1)).astype("float32")
    y = {f"task_{i}": rng.integers(-1, 2, 16).astype("int32") for i in range(3)}  # -1: no label
    keras.utils.set_random_seed(0)
    network = multitask_network(network_class(3, filters=(4, 6), kernels=(3, 3), fc_units=8), (8, 8, 1))
    tasks = [dm.TaskSpec(name, name, kind="multilabel") for name in y]
    strategy = ProjectAway(num_tasks=3) if weighting == "project_away" else weighting
    model = dm.DynamicMultiTaskModel(network, tasks, weighting=strategy)
    model.compile(network_optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # 2 steps: no tracing
    before = [v.numpy().copy() for v in model.network_variables]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(history.history[f"{name}_loss"][-1]) for name in y)
    moved = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.network_variables)]
    assert all(moved)  # subnets, mixing units and heads


@pytest.mark.slow
@pytest.mark.xdist_group("mirrored_report")  # one worker runs the shared subprocess (tests/conftest.py)
def test_missing_labels_and_sample_weights_are_exact_under_mirrored_strategy(mirrored_report):
    """A quarter of each task's labels missing and random sample weights: the replicas hold
    different label counts and weight sums, and 2 replicas still equal one device."""
    report = {spec: mirrored_report[f"partial+{spec}"] for spec in ("dynamic", "gradient_toys:ProjectAway")}
    for spec in report:
        assert report[spec]["steps_logged"] == 4 and report[spec]["movement"] > 1e-2, (spec, report[spec])
        assert report[spec]["relative_diff"] < 1e-3 and report[spec]["share_off"] < 1e-2, (spec, report[spec])
