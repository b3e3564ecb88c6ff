"""Per-task batch-norm statistics, influence shares (Table 6 / Figure 4), removal variants and same batches
(Fang et al. 2017 Sec. 3, 4.3, 4.4)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dynamic_mtl.ttc.models import CrossStitchNetwork, SharedTrunkNetwork, SingleTaskNetwork, TTCNetwork, remove_tasks
from dynamic_mtl.ttc.norms import TaskBatchNormalization
from dynamic_mtl.ttc.shares import influence_shares, removal_share_change
from dynamic_mtl.ttc.training import TrainSettings, TurnTrainer, predict_logits, reestimate_statistics

SHAPE = (8, 8, 1)


# -- shares -------------------------------------------------------------------------------------------------
def test_share_changes_add_up_to_the_removed_tasks_former_share():
    rng = np.random.default_rng(0)
    before = rng.uniform(0.05, 0.95, (5, 5))
    np.fill_diagonal(before, 1.0)
    keep = [0, 2, 3]
    after = rng.uniform(0.05, 0.95, (3, 3))
    np.fill_diagonal(after, 1.0)
    out = removal_share_change(before, after, keep)
    shares = influence_shares(before)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    expected = shares[np.ix_(keep, [1, 4])].sum(axis=1)
    np.testing.assert_allclose(out["removed_share"], expected)
    np.testing.assert_allclose(out["change"].sum(axis=1), expected, atol=1e-12)
    assert (np.abs(np.diag(out["change"])) > 0).all()  # the diagonal (own share) changes too
    # unchanged alphas among the kept tasks: the removed share is spread in proportion to the old shares
    same = removal_share_change(before, before[np.ix_(keep, keep)], keep)
    np.testing.assert_allclose(same["share_after"], same["share_before"] / same["share_before"].sum(1, keepdims=True))


def test_shares_reject_bad_input():
    with pytest.raises(ValueError, match="square"):
        influence_shares(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        influence_shares(-np.eye(2))
    with pytest.raises(ValueError, match="alpha_after"):
        removal_share_change(np.ones((3, 3)), np.ones((3, 3)), [0, 1])


# -- the per-task batch norm ---------------------------------------------------------------------------------
def test_task_batch_norm_updates_and_uses_only_the_selected_copy():
    layer = TaskBatchNormalization(3, momentum=0.5)
    layer.build((None, 4))
    x = np.random.default_rng(1).normal(2.0, 3.0, (16, 4)).astype("float32")
    layer.set_copy(1)
    layer(x, training=True)
    mean = layer.moving_mean.numpy()
    np.testing.assert_allclose(mean[1], 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_array_equal(mean[[0, 2]], 0.0)
    out1 = np.asarray(layer(x, training=False))
    layer.set_copy(0)
    out0 = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(out0, x / np.sqrt(1 + 1e-3), rtol=1e-5)  # copy 0 untouched
    assert not np.allclose(out0, out1)
    layer.trainable = False  # frozen: inference mode, no update
    layer(x, training=True)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    layer.set_copy(2)  # re-estimation works on a frozen layer and is an exact mean over batches
    for k, chunk in enumerate((x[:10], x[10:])):
        layer.estimating([10, 6][k] / [10, 16][k])
        layer(chunk, training=False)
    layer.estimating(None)
    np.testing.assert_allclose(layer.moving_mean.numpy()[2], x.mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="rate"):
        layer.estimating(0.0)


def _disjoint_data(seed=0, n=48, T=3):
    """Images labelled for exactly one task each (like digit / CIFAR pair tasks)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE)).astype("float32")
    y = -np.ones((n, T), dtype=int)
    owner = np.arange(n) % T
    y[np.arange(n), owner] = rng.integers(0, 2, n)
    for t in range(T):  # both classes in every pool
        idx = np.flatnonzero(owner == t)
        y[idx[:2], t] = [0, 1]
    return x, y, owner


@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(TTCNetwork, marks=pytest.mark.slow),
        pytest.param(CrossStitchNetwork, marks=pytest.mark.slow),
        SharedTrunkNetwork,
    ],
)
def test_task_evaluation_does_not_depend_on_another_tasks_pool(cls):
    """Per-task statistics: changing task 2's images changes nothing for task 0 (weights held fixed by a zero
    learning rate, so only the statistics move); with one shared copy it does change."""
    x, y, owner = _disjoint_data()
    x_other = x.copy()
    x_other[owner == 2] = x_other[owner == 2] * 3.0 + 1.0
    test = np.random.default_rng(9).random((12, *SHAPE)).astype("float32")
    outputs = {}
    for per_task in (True, False):
        keras.utils.set_random_seed(4)
        model = cls(3, width=0.15, per_task_statistics=per_task)
        model.build((None, *SHAPE))
        initial, trainer = model.get_weights(), None
        for name, images in (("a", x), ("b", x_other)):  # one model and one traced step for both image sets
            keras.utils.set_random_seed(4)
            model.set_weights(initial)
            settings = TrainSettings(batch_size=8, lr=0.0, alpha_lr=0.0)
            trainer = TurnTrainer(model, images, y, [0, 1, 2], settings=settings, seed=3, reuse=trainer)
            trainer.train(9, progress=False)
            outputs[per_task, name] = predict_logits(model, test)
    np.testing.assert_array_equal(outputs[True, "a"][:, :2], outputs[True, "b"][:, :2])
    assert not np.allclose(outputs[True, "a"][:, 2], outputs[True, "b"][:, 2])
    assert not np.allclose(outputs[False, "a"][:, 0], outputs[False, "b"][:, 0])


def test_per_task_statistics_roundtrip_keras_format(tmp_path):
    keras.utils.set_random_seed(5)
    x, y, _ = _disjoint_data()
    model = TTCNetwork(3, width=0.15)
    model.build((None, *SHAPE))
    TurnTrainer(model, x, y, [0, 1, 2], settings=TrainSettings(batch_size=8)).train(3, progress=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(predict_logits(loaded, x), predict_logits(model, x), atol=1e-5)


# -- removal variants -----------------------------------------------------------------------------------------
def _trained_ttc(seed=6):
    keras.utils.set_random_seed(seed)
    x, y, _ = _disjoint_data(seed)
    model = TTCNetwork(3, task_names=["a", "b", "c"], width=0.15)
    model.build((None, *SHAPE))
    TurnTrainer(model, x, y, [0, 1, 2], settings=TrainSettings(batch_size=8)).train(6, progress=False)
    return model, x, y


def test_removal_variants_train_what_they_say():
    model, x, y = _trained_ttc()
    conn = remove_tasks(model, ["b"], SHAPE, train_norms=False)
    betas = {id(v) for c in conn.connections for v in c.row_weights}
    assert {id(v) for v in conn.trainable_variables} == betas  # connections only: the betas
    joint = remove_tasks(model, ["b"], SHAPE, train_norms=True)
    norms = {id(v) for c in joint.connections for n in c.norms for v in n.trainable_weights}
    assert {id(v) for v in joint.trainable_variables} == {
        id(v) for c in joint.connections for v in c.row_weights
    } | norms
    # per-task statistics copies follow the kept tasks: copy 1 of the reduced model is copy 2 of the full one
    np.testing.assert_array_equal(
        conn.connections[0].norms[0].moving_mean.numpy(), model.connections[0].norms[0].moving_mean.numpy()[[0, 2]]
    )

    # baseline: statistics re-estimated without any gradient step (trainable weights untouched)
    cut = remove_tasks(model, ["b"], SHAPE)
    weights = [v.numpy().copy() for v in cut.trainable_variables]
    before = predict_logits(cut, x)
    stats = cut.connections[2].norms[1].moving_variance.numpy().copy()
    reestimate_statistics(cut, x, y, [0, 2], batch_size=16)
    for a, v in zip(weights, cut.trainable_variables):
        np.testing.assert_array_equal(a, v.numpy())
    assert not np.allclose(stats, cut.connections[2].norms[1].moving_variance.numpy())
    assert not np.allclose(before, predict_logits(cut, x))

    # connections only: betas move, BN parameters and statistics stay; joint: BN parameters move too
    def snapshot(m):
        return [
            w.numpy().copy()
            for c in m.connections
            for n in c.norms
            for w in (n.gamma, n.beta, n.moving_mean)  # noqa: E731
        ]

    for reduced, norms_move in ((conn, False), (joint, True)):
        s0, a0 = snapshot(reduced), reduced.alpha_matrices()
        TurnTrainer(reduced, x, y, [0, 2], settings=TrainSettings(batch_size=8)).train(4, progress=False)
        moved = any(not np.array_equal(a, b) for a, b in zip(s0, snapshot(reduced)))
        assert moved == norms_move
        assert np.abs(reduced.alpha_matrices() - a0).max() > 0


# -- same batches ---------------------------------------------------------------------------------------------
def test_same_batches_for_every_model_within_a_seed():
    """Task c's k-th batch is the same for a single-task net, a multi-task net and a net training only c
    (the incremental-vs-alone comparison)."""
    x, y, _ = _disjoint_data(seed=7)
    keras.utils.set_random_seed(7)
    multi = TTCNetwork(3, width=0.15)
    multi.build((None, *SHAPE))
    single = SingleTaskNetwork("c", width=0.15)
    single.build((None, *SHAPE))
    settings = TrainSettings(batch_size=8)
    t_multi = TurnTrainer(multi, x, y, [0, 1, 2], settings=settings, seed=11, record_batches=True)
    t_multi.train(9, progress=False)
    t_only = TurnTrainer(  # reuse: the traced step of t_multi (batches are drawn by the trainer, not the step)
        multi, x, y, [0, 1, 2], train_columns=[2], settings=settings, seed=11, record_batches=True, reuse=t_multi
    )
    t_only.train(3, progress=False)
    # the pools are keyed by the label column in the full label matrix (as the experiments pass it)
    t_single2 = TurnTrainer(single, x, y, [2], settings=settings, seed=11, record_batches=True)
    t_single2.train(3, progress=False)
    from_multi = [idx for c, idx in t_multi.batches if c == 2]
    for a, b, c in zip(from_multi, [i for _, i in t_only.batches], [i for _, i in t_single2.batches]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    t_other = TurnTrainer(multi, x, y, [0, 1, 2], settings=settings, seed=12, record_batches=True, reuse=t_only)
    t_other.train(3, progress=False)
    assert not all(np.array_equal(a, b) for (_, a), (_, b) in zip(t_other.batches, t_multi.batches))
