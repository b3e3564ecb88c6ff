"""Mixed precision (``mixed_float16``, an option for GPUs), checked on CPU.

The network computes in float16; the dynamic weight unit, the task losses, L3 and the
center-loss centers stay float32; the network optimizer becomes a LossScaleOptimizer and the
train step hands it loss-scaled gradients, so one step moves the weights as float32 does.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import small_model

import dynamic_mtl as dm


@pytest.fixture
def mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _compile(model, lr=0.05):
    model.compile(network_optimizer=keras.optimizers.SGD(lr), weight_optimizer=keras.optimizers.SGD(lr))
    return model


def test_weight_unit_losses_and_l3_stay_float32(tiny_batch, mixed_policy):
    x, y = tiny_batch
    model = _compile(small_model("dynamic", center_loss_weight=0.1))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(model.weight_optimizer, keras.optimizers.LossScaleOptimizer)

    outputs = model(x, training=False)
    assert outputs["identity_logits"].dtype == "float16"  # the network does run in float16
    assert outputs["shared"].dtype == "float16"
    assert outputs["weight_logits"].dtype == "float32"
    assert outputs["task_weights"].dtype == "float32"
    unit = model.weight_unit
    assert unit.compute_dtype == "float32" and unit.variable_dtype == "float32"
    assert all(v.dtype == "float32" for v in unit.variables)
    assert all(v.dtype == "float32" for v in model.network_variables)  # float32 master weights
    assert model.center_losses["identity"].centers.dtype == "float32"

    result = model.compute_gradients(x, y)
    for name in ("task_losses", "task_weights", "network_loss", "weight_loss", "weight_logits"):
        value = getattr(result, name)
        assert value.dtype == "float32", name
        assert np.all(np.isfinite(value.numpy())), name
    assert all(g.dtype == "float32" for g in result.weight_gradients)
    # L3 (Eq. 7) recomputed in float64 from the float32 pieces
    l3 = np.sum(
        result.task_weights.numpy().astype(np.float64)
        / (result.task_losses.numpy().astype(np.float64) + model.weighting.sigma)
    )
    np.testing.assert_allclose(result.weight_loss.numpy(), l3, rtol=1e-5)


@pytest.mark.parametrize("weighting", ["dynamic", "gradnorm"])
def test_training_step_is_finite_and_moves_both_variable_groups(tiny_batch, mixed_policy, weighting):
    x, y = tiny_batch
    model = _compile(small_model(weighting))
    net_before = [v.numpy().copy() for v in model.network_variables]
    unit_before = [v.numpy().copy() for v in model.weighting_variables]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(net_before, model.network_variables))
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(unit_before, model.weighting_variables))
    log = model.step_log.numpy()[:2]
    assert log.dtype == np.float32 and np.all(np.isfinite(log)) and list(log[:, 0]) == [1.0, 2.0]


def test_loss_scaled_step_moves_weights_like_float32(tiny_batch):
    """The LossScaleOptimizer unscales what the step gives it: the update matches float32's.

    (Without scaling the objective in the step, the update would shrink by the loss scale, 2**15.)
    """
    x, y = tiny_batch
    reference = small_model("dynamic")
    initial = reference.get_weights()
    initial_network = [v.numpy() for v in reference.network_variables]
    moves = {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = _compile(small_model("dynamic"), lr=0.01)
            model.set_weights(initial)
            model.train_on_batch(x, y)
            moves[policy] = np.concatenate(
                [(v.numpy() - w).ravel() for v, w in zip(model.network_variables, initial_network)]
            )
        finally:
            keras.mixed_precision.set_global_policy("float32")
    a, b = moves["float32"], moves["mixed_float16"]
    assert np.linalg.norm(a) > 1e-4
    # float16 round-off: seen 0.06; an update off by the loss scale would give 1.0
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.25
    assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.97


def test_mixed_precision_model_saves_and_loads(tmp_path, tiny_batch, mixed_policy):
    x, _ = tiny_batch
    model = _compile(small_model("dynamic"))
    path = tmp_path / "mixed.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, dm.DynamicMultiTaskModel)
    assert loaded.weight_unit.compute_dtype == "float32"
    np.testing.assert_allclose(loaded(x)["task_weights"].numpy(), model(x)["task_weights"].numpy(), rtol=1e-6)


def test_l2_normalize_stays_float32_for_large_norms(mixed_policy):
    """In float16 the squared norm of a vector with norm > 256 overflows and the output is 0."""
    from dynamic_mtl.layers import L2Normalize

    layer = L2Normalize()
    assert layer.compute_dtype == "float32"
    x = np.full((2, 128), 40.0, np.float16)  # norm 452 > 256: float16 squares overflow
    y = np.asarray(layer(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-5)

    model = small_model("dynamic")
    assert model.network.get_layer("embedding").compute_dtype == "float32"


def test_a_skipped_loss_scale_step_leaves_the_centers_and_logs_its_row(tiny_batch, mixed_policy):
    """On overflow the LossScaleOptimizer skips the network update; the centers are not moved
    either, and the step log still gets the step's row (keyed on the model's own step count)."""
    x, y = tiny_batch
    model = _compile(small_model("dynamic", center_loss_weight=0.1))
    centers = model.center_losses["identity"].centers
    before = centers.numpy().copy()
    model.optimizer.dynamic_scale.assign(1e30)  # every scaled gradient overflows
    model.train_on_batch(x, y)
    assert int(model.optimizer.iterations.numpy()) == 0  # the network step was skipped
    np.testing.assert_array_equal(centers.numpy(), before)
    assert int(model.train_step_count.numpy()) == 1
    assert model.step_log.numpy()[0, 0] == 1.0
    model.optimizer.dynamic_scale.assign(1.0)
    model.train_on_batch(x, y)  # finite gradients: a real step
    assert int(model.train_step_count.numpy()) == 2
    assert not np.array_equal(centers.numpy(), before)
