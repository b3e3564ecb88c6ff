"""Training protocol (Fang et al. 2017 Sec. 4.1): resampling, the metric, turns; incremental addition and
task removal (Sec. 4.3-4.4): frozen subnets stay bit-identical."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from dynamic_mtl.ttc.models import SingleTaskNetwork, TTCNetwork, add_task, remove_tasks
from dynamic_mtl.ttc.training import (
    TaskPool,
    TrainSettings,
    TurnTrainer,
    evaluate,
    mean_class_accuracy,
    predict_logits,
)

SHAPE = (10, 10, 1)


def test_metric_is_mean_of_class_accuracies():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    assert mean_class_accuracy(y, p) == pytest.approx(0.5 * (3 / 4 + 4 / 6))
    rng = np.random.default_rng(0)
    for _ in range(5):
        y, p = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
        assert mean_class_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p))
    assert mean_class_accuracy(np.r_[np.ones(99), 0], np.ones(100)) == pytest.approx(0.5)  # majority guess
    with pytest.raises(ValueError, match="both classes"):
        mean_class_accuracy([1, 1], [1, 0])
    with pytest.raises(ValueError, match="binary"):
        mean_class_accuracy([0, 2], [0, 1])


def test_resampled_pool_balances_every_batch_and_covers_majority():
    labels = np.r_[np.ones(7), np.zeros(93), -np.ones(20)].astype(int)  # 7 % minority, 20 unlabelled
    pool = TaskPool(labels, np.random.default_rng(0), resample=True)
    seen = []
    for _ in range(20):
        idx = pool.next_batch(16)
        assert len(idx) == 16 and (labels[idx] == 1).sum() == 8 and (labels[idx] == 0).sum() == 8
        seen.append(idx)
    seen = np.concatenate(seen)
    assert set(seen[labels[seen] == 0]) == set(np.flatnonzero(labels == 0))  # every negative drawn
    counts = np.bincount(seen[labels[seen] == 1], minlength=7)
    assert counts[np.flatnonzero(labels == 1)].min() >= 20  # positives repeated (~23 each)
    assert (labels[seen] >= 0).all()


def test_natural_pool_keeps_proportions():
    labels = np.r_[np.ones(10), np.zeros(90)].astype(int)
    pool = TaskPool(labels, np.random.default_rng(0), resample=False)
    drawn = np.concatenate([pool.next_batch(25) for _ in range(4)])  # exactly one pass
    assert sorted(drawn) == list(range(100))
    with pytest.raises(ValueError, match="positive and one negative"):
        TaskPool(np.zeros(5, int), np.random.default_rng(0), resample=True)


def _data(n=64, T=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE)).astype("float32")
    y = (x.mean(axis=(1, 2, 3))[:, None] > np.median(x.mean(axis=(1, 2, 3)))).astype(int).repeat(T, 1)
    y[:, -1] = rng.integers(0, 2, n)
    return x, y


def _snapshot(layers):
    """Every weight of ``layers`` (a batch norm's selected-copy index is a switch, not a weight: skipped)."""
    return [np.array(v.numpy()) for layer in layers for v in layer.weights if not v.path.endswith("copy_index")]


@pytest.mark.slow
def test_turn_trainer_updates_weights_and_alphas():
    keras.utils.set_random_seed(0)
    x, y = _data()
    model = TTCNetwork(3, width=0.2)
    model.build((None, *SHAPE))
    alpha0 = model.alpha_matrices()
    trainer = TurnTrainer(model, x, y, [0, 1, 2], settings=TrainSettings(batch_size=8, alpha_lr=0.05))
    losses = trainer.train(9, progress=False)
    assert len(losses) == 9 and np.isfinite(losses).all()
    alpha1 = model.alpha_matrices()
    off = ~np.eye(3, dtype=bool)
    assert np.abs(alpha1 - alpha0)[:, off].max() > 1e-3
    np.testing.assert_array_equal(alpha1[:, np.eye(3, dtype=bool)], 1.0)
    assert evaluate(model, x, y, [0, 1, 2]).shape == (3,)


@pytest.mark.slow
def test_incremental_addition_freezes_old_subnets_bit_identically():
    keras.utils.set_random_seed(1)
    x, y = _data(T=3)
    base = TTCNetwork(2, task_names=["a", "b"], width=0.2)
    base.build((None, *SHAPE))
    TurnTrainer(base, x, y, [0, 1], settings=TrainSettings(batch_size=8)).train(4, progress=False)
    before_logits = predict_logits(base, x)  # task c with its statistics copy c
    grown = add_task(base, "c", SHAPE)
    assert grown.task_names == ["a", "b", "c"]
    old = _snapshot([layer for t in (0, 1) for layer in grown.task_layers(t)])
    old_rows = [np.array(c.row_weights[t].numpy()) for c in grown.connections for t in (0, 1)]
    old_bn = _snapshot([c.norms[t] for c in grown.connections for t in (0, 1)])
    new = _snapshot(grown.task_layers(2))
    new_alpha = grown.alpha_matrices()[:, 2, :2].copy()
    np.testing.assert_allclose(predict_logits(grown, x)[:, :2], before_logits, atol=1e-6)
    trainable = {id(v) for v in grown.trainable_variables}
    assert all(id(v) not in trainable for t in (0, 1) for layer in grown.task_layers(t) for v in layer.weights)

    TurnTrainer(grown, x, y, [0, 1, 2], train_columns=[2], settings=TrainSettings(batch_size=8)).train(
        6, progress=False
    )

    for a, b in zip(old, _snapshot([layer for t in (0, 1) for layer in grown.task_layers(t)])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(old_rows, [c.row_weights[t].numpy() for c in grown.connections for t in (0, 1)]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(old_bn, _snapshot([c.norms[t] for c in grown.connections for t in (0, 1)])):
        np.testing.assert_array_equal(a, b)  # frozen BN: no statistics update either
    assert any(not np.array_equal(a, b) for a, b in zip(new, _snapshot(grown.task_layers(2))))
    assert np.abs(grown.alpha_matrices()[:, 2, :2] - new_alpha).max() > 0  # the new connections learn
    np.testing.assert_array_equal(predict_logits(grown, x)[:, :2], before_logits)
    assert (grown.alpha_matrices()[:, :2, 2] == 0).all()  # old tasks do not read the new one


def test_task_removal_retrains_only_connections():
    keras.utils.set_random_seed(2)
    x, y = _data(T=3)
    model = TTCNetwork(3, task_names=["a", "b", "c"], width=0.2, connection_kwargs=dict(initial_alpha=0.3))
    model.build((None, *SHAPE))
    model.connections[-1].set_alpha(np.random.default_rng(0).uniform(0.1, 0.9, (3, 3)))  # as if trained
    reduced = remove_tasks(model, ["b"], SHAPE)
    assert reduced.task_names == ["a", "c"]
    np.testing.assert_allclose(reduced.alpha_matrices(), model.alpha_matrices()[:, [0, 2]][:, :, [0, 2]])
    subnets = _snapshot([layer for t in (0, 1) for layer in reduced.task_layers(t)])
    assert {id(v) for v in reduced.trainable_variables} == {
        id(v)
        for c in reduced.connections
        for v in [*c.row_weights, *c.norms[0].trainable_weights, *c.norms[1].trainable_weights]
    }
    alpha0 = reduced.alpha_matrices()
    TurnTrainer(reduced, x, y, [0, 2], settings=TrainSettings(batch_size=8, alpha_lr=0.05)).train(4, progress=False)
    for a, b in zip(subnets, _snapshot([layer for t in (0, 1) for layer in reduced.task_layers(t)])):
        np.testing.assert_array_equal(a, b)
    assert np.abs(reduced.alpha_matrices() - alpha0).max() > 1e-3
    with pytest.raises(KeyError, match="unknown"):
        remove_tasks(model, ["zz"], SHAPE)
    with pytest.raises(ValueError, match="every task"):
        remove_tasks(model, ["a", "b", "c"], SHAPE)
    with pytest.raises(ValueError, match="already exists"):
        add_task(model, "a", SHAPE)


def test_single_task_trainer_reaches_a_separable_task():
    keras.utils.set_random_seed(3)
    x, y = _data(n=128, T=1)
    y = (x[:, :5].mean(axis=(1, 2, 3)) > x[:, 5:].mean(axis=(1, 2, 3))).astype(int)[:, None]
    model = SingleTaskNetwork("t", width=0.25)
    model.build((None, *SHAPE))
    TurnTrainer(model, x, y, [0], settings=TrainSettings(batch_size=16, lr=3e-3)).train(60, progress=False)
    assert evaluate(model, x, y, [0])[0] > 0.8


def _weights(model):
    return [np.array(v.numpy()) for v in model.variables]


def test_a_trainer_reusing_a_traced_step_trains_exactly_like_a_new_one():
    """A model given fresh weights and trained by a trainer that takes over an earlier trainer's traced step
    (its optimisers reset) ends bit-identical to a new model trained by a new trainer: same batches, same
    updates, whatever the learning rates; the step is traced once."""
    x, y, T = *_data(n=48, T=3), 3
    settings = [TrainSettings(batch_size=8, lr=3e-3, alpha_lr=0.1), TrainSettings(batch_size=8, lr=1e-3, alpha_lr=0.01)]

    def fresh(seed):
        keras.utils.set_random_seed(seed)
        model = TTCNetwork(T, width=0.15)
        model.build((None, *SHAPE))
        return model

    model = fresh(11)  # the reference: a new model and a new trainer with the second settings
    TurnTrainer(model, x, y, [0, 1, 2], settings=settings[1], seed=1).train(5, progress=False)
    expected = _weights(model)
    held, previous = fresh(10), None
    for k, s in enumerate(settings):  # the second trainer takes over the first one's traced step
        for mine, theirs in zip(held.variables, fresh(10 + k).variables):
            mine.assign(theirs)
        previous = TurnTrainer(held, x, y, [0, 1, 2], settings=s, seed=k, reuse=previous)
        previous.train(5, progress=False)
    for a, b in zip(expected, _weights(held)):
        np.testing.assert_array_equal(a, b)
    assert previous.tracing_count() == 1
    other = SingleTaskNetwork("t", width=0.15)
    other.build((None, *SHAPE))
    with pytest.raises(ValueError, match="same model"):
        TurnTrainer(other, x, y[:, :1], [0], settings=settings[0], reuse=previous)


def test_forward_passes_are_traced_once_per_model_whatever_the_batch_sizes():
    """predict_logits / evaluate / reestimate_statistics run traced passes, traced once per model and image
    shape (not per call, task or batch size)."""
    from dynamic_mtl.ttc.training import _ESTIMATORS, model_predictor, reestimate_statistics

    keras.utils.set_random_seed(0)
    x, y = _data(n=40, T=3)
    model = TTCNetwork(3, width=0.15)
    model.build((None, *SHAPE))
    for batch_size in (16, 7, 40):
        predict_logits(model, x, batch_size=batch_size)
        evaluate(model, x, y, [0, 1, 2], batch_size=batch_size)
        reestimate_statistics(model, x, y, [0, 1, 2], batch_size=batch_size)
    assert model_predictor(model, SHAPE).experimental_get_tracing_count() == 1
    assert _ESTIMATORS[model][SHAPE].experimental_get_tracing_count() == 1


def test_the_trainers_fused_adam_updates_as_keras_adam():
    """The trainers' Adam (one fused kernel per variable) makes Keras' updates, to float32 rounding, from the
    same gradients (through training the comparison would be chaotic: a parameter whose gradient is zero up to
    rounding, e.g. a bias before a batch norm, gets an Adam step of +-lr either way)."""
    import tensorflow as tf

    from dynamic_mtl.ttc.training import _Adam

    rng = np.random.default_rng(0)
    shapes = [(3, 3, 2, 4), (4,), (1,)]
    initial = [rng.normal(size=s).astype("float32") for s in shapes]
    gradients = [[rng.normal(scale=10.0**-k, size=s).astype("float32") for s in shapes] for k in range(5)]
    finals = []
    for optimizer in (keras.optimizers.Adam(3e-3), _Adam(3e-3, name="adam")):
        variables = [keras.Variable(v) for v in initial]
        optimizer.build(variables)

        @tf.function
        def step(grads, optimizer=optimizer):
            optimizer.apply(grads, variables)  # noqa: B023 (traced and called within this iteration)

        for grads in gradients:
            step([tf.constant(g) for g in grads])
        finals.append([v.numpy() for v in [*variables, *optimizer.variables]])
    for ours, theirs in zip(*finals, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    assert not np.allclose(finals[1][0], initial[0])  # the variables did move
