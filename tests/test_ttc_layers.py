"""TaskTransferConnection / CrossStitchUnit / TTC networks: the paper's two limits (Fang et al. 2017 Sec. 3),
alpha_ii fixed, connectivity, serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dynamic_mtl.ttc.layers import CrossStitchUnit, TaskTransferConnection
from dynamic_mtl.ttc.models import CrossStitchNetwork, SharedTrunkNetwork, SingleTaskNetwork, TTCNetwork

SHAPE = (12, 12, 1)


def _maps(seed: int, T: int = 3, shape=(4, 5, 5, 2)):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") for _ in range(T)]


def _ttc(T=3, **kwargs):
    layer = TaskTransferConnection(T, **kwargs)
    layer.build([(None, 5, 5, 2)] * T)
    return layer


def test_forward_formula_matches_documentation():
    layer = _ttc(3, initial_alpha=0.3)
    h = _maps(0)
    out = layer(h, training=False)  # fresh BN in inference mode: x / sqrt(1 + eps)
    scale = 1.0 / np.sqrt(1.0 + layer.bn_epsilon)
    for i in range(3):
        expected = sum((1.0 if j == i else 0.3) * h[j] for j in range(3)) * scale
        np.testing.assert_allclose(np.asarray(out[i]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.alpha_matrix(), [[1, 0.3, 0.3], [0.3, 1, 0.3], [0.3, 0.3, 1]], atol=1e-6)


@pytest.mark.parametrize("how", ["connectivity", "beta"])
def test_alpha_zero_gives_independent_tasks(how):
    """Limit 1: alpha_ij = 0 -> task i's output does not depend on task j's input."""
    kwargs = dict(connectivity=np.eye(3, dtype=int)) if how == "connectivity" else {}
    layer = _ttc(3, **kwargs)
    if how == "beta":
        layer.set_alpha(np.zeros((3, 3)))
    h = _maps(1)
    base = [np.asarray(o) for o in layer(h, training=True)]
    perturbed = list(h)
    perturbed[2] = perturbed[2] * 5.0 + 3.0
    out = [np.asarray(o) for o in layer(perturbed, training=True)]
    for i in (0, 1):
        if how == "connectivity":
            np.testing.assert_array_equal(out[i], base[i])
        else:  # sigmoid(-40) ~ 4e-18: far below float32 resolution
            np.testing.assert_allclose(out[i], base[i], atol=1e-6)
    assert not np.allclose(out[2], base[2])


def test_network_alpha_zero_equals_single_task_networks():
    """Limit 1 on the whole network: with C = I, perturbing task j's input or weights leaves task i unchanged."""
    keras.utils.set_random_seed(0)
    model = TTCNetwork(3, width=0.2, connectivity=np.eye(3, dtype=int))
    model.build((None, *SHAPE))
    rng = np.random.default_rng(0)
    xs = [rng.random((4, *SHAPE)).astype("float32") for _ in range(3)]
    base = np.asarray(model(xs, training=False))
    xs2 = list(xs)
    xs2[1] = rng.random((4, *SHAPE)).astype("float32")
    for v in model.task_layers(1)[0].weights:  # task 1's first conv
        v.assign(v.numpy() + 1.0)
    out = np.asarray(model(xs2, training=False))
    np.testing.assert_array_equal(out[:, [0, 2]], base[:, [0, 2]])
    assert not np.allclose(out[:, 1], base[:, 1])


def test_equal_alphas_give_shared_features():
    """Limit 2: all alpha = 1 -> every task receives the same mixed map (one shared representation)."""
    layer = _ttc(3)
    layer.set_alpha(np.ones((3, 3)))
    np.testing.assert_array_equal(layer.alpha_matrix(), np.ones((3, 3)))
    out = [np.asarray(o) for o in layer(_maps(2), training=True)]
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])


def test_network_equal_alphas_behaves_like_shared_net():
    """All alphas 1: per-task features identical at every layer even though the subnets' weights differ;
    with identical heads the outputs are identical too."""
    keras.utils.set_random_seed(1)
    model = TTCNetwork(3, width=0.2)
    model.build((None, *SHAPE))
    for c in model.connections:
        c.set_alpha(np.ones((3, 3)))
    x = np.random.default_rng(1).random((4, *SHAPE)).astype("float32")
    w0 = model.subnet_layers[0][0].kernel.numpy()
    assert not np.allclose(w0, model.subnet_layers[1][0].kernel.numpy())
    for layer_features in model.task_features(x, training=True):
        f = [np.asarray(t) for t in layer_features]
        np.testing.assert_allclose(f[1], f[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(f[2], f[0], rtol=1e-5, atol=1e-5)
    for head in model.heads[1:]:
        for a, b in zip(head.weights, model.heads[0].weights):
            a.assign(b)
    logits = np.asarray(model(x, training=True))
    np.testing.assert_allclose(logits[:, 1], logits[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits[:, 2], logits[:, 0], rtol=1e-5, atol=1e-5)


def test_alpha_diagonal_is_not_trainable():
    import tensorflow as tf

    layer = _ttc(3)
    assert any(w is layer.alpha_diag for w in layer.non_trainable_weights)
    assert all(w is not layer.alpha_diag for w in layer.trainable_weights)
    h = [tf.constant(m) for m in _maps(3)]
    with tf.GradientTape() as tape:
        loss = sum(tf.reduce_sum(o**2) for o in layer(h, training=True))
    grads = tape.gradient(loss, layer.row_weights)
    for i, g in enumerate(grads):
        assert float(g[i]) == 0.0  # beta_ii is never read
        assert np.any(g.numpy()[np.arange(3) != i] != 0)
    np.testing.assert_array_equal(np.diag(layer.alpha_matrix()), 1.0)


def test_connectivity_validation():
    with pytest.raises(ValueError, match="diagonal"):
        TaskTransferConnection(2, connectivity=[[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="shape"):
        TaskTransferConnection(2, connectivity=[[1, 1, 1]])
    with pytest.raises(ValueError, match="initial_alpha"):
        TaskTransferConnection(2, initial_alpha=1.0)
    with pytest.raises(ValueError, match="per-task inputs"):
        _ttc(2)(_maps(0, T=3))


def test_cross_stitch_init_and_free_diagonal():
    unit = CrossStitchUnit(3, init_self=0.9)
    unit.build([(None, 5, 5, 2)] * 3)
    np.testing.assert_allclose(
        unit.mixing_matrix(), [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]], atol=1e-6
    )
    assert len(unit.mixing_variables) == 3 and all(v.trainable for v in unit.mixing_variables)


@pytest.mark.parametrize("cls", [TTCNetwork, CrossStitchNetwork, SharedTrunkNetwork])
def test_networks_roundtrip_keras_format(cls, tmp_path):
    keras.utils.set_random_seed(2)
    model = cls(3, task_names=["a", "b", "c"], width=0.2)
    model.build((None, *SHAPE))
    x = np.random.default_rng(2).random((3, *SHAPE)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.task_names == ["a", "b", "c"]
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    if cls is not SharedTrunkNetwork:
        np.testing.assert_allclose(loaded.alpha_matrices(), model.alpha_matrices())
        assert model.alpha_matrices().shape == (6, 3, 3)


def test_any_input_size_and_single_task():
    model = SingleTaskNetwork("x", width=0.2)
    model.build((None, 7, 9, 3))
    assert np.asarray(model(np.zeros((2, 7, 9, 3), "float32"))).shape == (2, 1)
    big = TTCNetwork(5, width=0.1)
    big.build((None, 40, 40, 1))
    assert np.asarray(big(np.zeros((2, 40, 40, 1), "float32"))).shape == (2, 5)
