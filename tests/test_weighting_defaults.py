"""Library defaults that follow the paper, and the naive baseline's optimizer (docs/fidelity.md)."""

from __future__ import annotations

import keras
import numpy as np
from conftest import small_model

import dynamic_mtl as dm


def test_dynamic_uses_section_5_5_and_naive_does_not():
    dynamic = small_model("dynamic")
    naive = small_model("naive_dynamic")
    assert dynamic.weight_unit.normalize_logits
    assert not naive.weight_unit.normalize_logits
    explicit = small_model("dynamic", weight_unit_options={"normalize_logits": False})
    assert not explicit.weight_unit.normalize_logits


def test_naive_weight_unit_is_stepped_by_the_network_optimizer(tiny_batch):
    x, y = tiny_batch
    model = small_model("naive_dynamic")
    model.compile(network_optimizer=keras.optimizers.SGD(0.01), weight_optimizer=keras.optimizers.SGD(100.0))
    assert model.weighting.uses_network_optimizer
    psi = model.weight_unit.kernel
    before = psi.numpy().copy()
    gradients = model.compute_gradients(x, y).weight_gradients
    model.train_on_batch(x, y)
    step = before - psi.numpy()
    # one SGD step at the network's rate 0.01, not the (unused) weight optimizer's 100
    np.testing.assert_allclose(step, 0.01 * gradients[0].numpy(), rtol=1e-3, atol=1e-8)
    assert not model.weight_optimizer.built

    separate = small_model("naive_dynamic", weighting_options={"weight_optimizer": "separate"})
    separate.compile(network_optimizer=keras.optimizers.SGD(0.01), weight_optimizer=keras.optimizers.SGD(0.5))
    before = separate.weight_unit.kernel.numpy().copy()
    gradients = separate.compute_gradients(x, y).weight_gradients
    separate.train_on_batch(x, y)
    np.testing.assert_allclose(
        before - separate.weight_unit.kernel.numpy(), 0.5 * gradients[0].numpy(), rtol=1e-3, atol=1e-6
    )


def test_naive_option_round_trips_and_is_validated():
    strategy = dm.NaiveDynamicWeighting(num_tasks=2, weight_optimizer="separate")
    assert dm.NaiveDynamicWeighting.from_config(strategy.get_config()).weight_optimizer == "separate"
    try:
        dm.NaiveDynamicWeighting(num_tasks=2, weight_optimizer="adam")
    except ValueError as error:
        assert "weight_optimizer" in str(error)
    else:
        raise AssertionError("a bad weight_optimizer was accepted")


def test_center_loss_reads_the_raw_bottleneck_by_default(tiny_batch):
    """Eq. 4 puts the center loss on X1, the bottleneck (paper); the code's choice is the
    L2-normalised embedding, whose squared distances are at most 4."""
    x, y = tiny_batch
    model = small_model("static", center_loss_weight=1.0)
    task = model.tasks[0]
    assert task.center_feature == "bottleneck"
    outputs = model(x, training=False)
    per_sample = model.center_losses["identity"].per_sample(outputs["bottleneck"], y["identity"])
    np.testing.assert_allclose(
        per_sample.numpy(), np.sum(np.square(outputs["bottleneck"].numpy()), axis=1), rtol=1e-5
    )  # centers start at 0
    code = small_model("static", center_loss_weight=1.0, center_loss_input="embedding")
    assert code.tasks[0].center_feature == "embedding"
    emb = code(x, training=False)["embedding"]
    assert np.all(code.center_losses["identity"].per_sample(emb, y["identity"]).numpy() <= 4.0 + 1e-5)


def test_uncertainty_follows_kendall_classification_form():
    """L = sum exp(-s) L + s / 2: at the optimum over s the weight exp(-s) is 1 / (2 L)."""
    strategy = dm.UncertaintyWeighting(num_tasks=2)
    strategy.build()
    strategy.log_vars.assign([0.3, -0.2])
    losses = np.array([1.5, 0.4], np.float32)
    s = np.array([0.3, -0.2])
    value = strategy.network_loss(strategy.task_weights(), losses)
    np.testing.assert_allclose(float(value), np.sum(np.exp(-s) * losses + s / 2), rtol=1e-6)
    s_star = np.log(2 * losses)
    strategy.log_vars.assign(s_star)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = strategy.network_loss(strategy.task_weights(), losses)
    np.testing.assert_allclose(tape.gradient(value, strategy.log_vars.value).numpy(), 0.0, atol=1e-6)


def test_weight_decay_is_half_the_squared_norm_times_the_factor():
    """TF1/slim convention: weight_decay * sum(w^2) / 2 (Keras L2(wd / 2))."""
    from dynamic_mtl.backbones.common import ConvSettings

    regularizer = ConvSettings(weight_decay=5e-5).regularizer()
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(float(regularizer(w)), 5e-5 * np.sum(w**2) / 2, rtol=1e-6)


def test_default_weight_optimizer_clips_at_global_norm_5():
    from dynamic_mtl.model import DEFAULT_WEIGHT_OPTIMIZER

    model = small_model("dynamic")
    model.compile(network_optimizer="sgd")
    assert model.weight_optimizer.global_clipnorm == 5.0
    assert DEFAULT_WEIGHT_OPTIMIZER["config"]["global_clipnorm"] == 5.0
