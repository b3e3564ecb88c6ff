"""The weighting methods researchers compare against (docs/weighting.md): each against its
paper's formula on small hand-computed cases, derived here independently in numpy.

Gradient methods are called through ``combine_task_gradients(G, L)`` (the per-task gradient
hook); loss methods through ``task_weights`` / ``network_loss`` / ``update_state``.
Training through ``DynamicMultiTaskModel`` is in test_weighting_methods_training.py.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynamic_mtl.weighting import WEIGHTINGS, get_weighting

GRADIENT_METHODS = ["pcgrad", "mgda", "cagrad", "imtl_g", "nash_mtl", "aligned_mtl", "gradvac", "db_mtl"]
LOSS_METHODS = ["rlw", "gls", "famo", "stch"]


def strategy(name, num_tasks=2, **options):
    s = get_weighting(name, num_tasks=num_tasks, **options)
    s.build()
    return s


def combine(s, G, L=None):
    G = np.asarray(G, np.float32)
    L = np.ones(len(G), np.float32) if L is None else np.asarray(L, np.float32)
    d, w = s.combine_task_gradients(tf.constant(G), tf.constant(L))
    return d.numpy().astype(np.float64), w.numpy().astype(np.float64)


def random_gradients(seed, T=3, P=4):
    return np.random.default_rng(seed).normal(size=(T, P))


# ---------------------------------------------------------------------------------------- PCGrad
def pcgrad_numpy(G, orders):
    """Yu et al. 2020, Algorithm 1: orders[i] is the sequence of other tasks for task i."""
    out = []
    for i, order in enumerate(orders):
        g = G[i].copy()
        for j in order:
            dot = g @ G[j]
            if dot < 0:
                g = g - dot / (G[j] @ G[j]) * G[j]
        out.append(g)
    return np.sum(out, axis=0)


def test_pcgrad_leaves_orthogonal_gradients_alone_and_projects_conflicting_ones():
    s = strategy("pcgrad")
    d, w = combine(s, [[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(d, [1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-6)
    # g1 = (1, 0), g2 = (-1, 1): g1 -> g1 + g2 / 2 = (0.5, 0.5); g2 -> g2 + g1 = (0, 1)
    d, w = combine(s, [[1.0, 0.0], [-1.0, 1.0]])
    np.testing.assert_allclose(d, [0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(w @ np.array([[1.0, 0.0], [-1.0, 1.0]]), d, atol=1e-6)


def test_pcgrad_three_tasks_follow_a_random_order_reproducibly():
    G = np.array([[1.0, 0.2, 0.0], [-0.8, 1.0, 0.1], [-0.5, -0.9, 1.0]])
    candidates = [
        pcgrad_numpy(G, orders)
        for orders in itertools.product(
            *[list(itertools.permutations([j for j in range(3) if j != i])) for i in range(3)]
        )
    ]
    s = strategy("pcgrad", num_tasks=3, seed=3)
    seen = set()
    for _ in range(12):
        d, w = combine(s, G)
        np.testing.assert_allclose(w @ G, d, atol=1e-5)
        errors = [np.max(np.abs(d - c)) for c in candidates]
        assert min(errors) < 1e-5, errors
        again, _ = combine(s, G)  # same step: same draw
        np.testing.assert_array_equal(d, again)
        seen.add(tuple(np.round(d, 5)))
        s.update_state(tf.ones(3))
    assert len(seen) > 1  # the order really is random across steps
    replay = strategy("pcgrad", num_tasks=3, seed=3)
    np.testing.assert_array_equal(combine(replay, G)[0], combine(strategy("pcgrad", num_tasks=3, seed=3), G)[0])


# ------------------------------------------------------------------------------------------ MGDA
def min_norm_numpy(G):
    """Exact min-norm point of the convex hull of the rows of G: every face's affine minimiser."""
    M = G @ G.T
    best, best_alpha = np.inf, None
    T = len(G)
    for size in range(1, T + 1):
        for face in itertools.combinations(range(T), size):
            f = list(face)
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = M[np.ix_(f, f)]
            kkt[:size, size] = kkt[size, :size] = 1.0
            rhs = np.zeros(size + 1)
            rhs[size] = 1.0
            try:
                sol = np.linalg.solve(kkt, rhs)[:size]
            except np.linalg.LinAlgError:
                continue
            if np.all(sol >= -1e-12):
                alpha = np.zeros(T)
                alpha[f] = sol
                value = alpha @ M @ alpha
                if value < best - 1e-15:
                    best, best_alpha = value, alpha
    return best_alpha


@pytest.mark.parametrize(
    "g1,g2",
    [
        ((1.0, 0.0), (0.0, 1.0)),
        ((1.0, 0.0), (1.0, 1.0)),
        ((2.0, 1.0, 0.0), (-1.0, 0.5, 0.3)),
        ((0.3, -0.2), (3.0, 1.0)),
    ],
)
def test_mgda_two_tasks_is_the_closed_form_min_norm_point(g1, g2):
    g1, g2 = np.array(g1), np.array(g2)
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)  # Sener and Koltun, Algorithm 1
    d, w = combine(strategy("mgda"), [g1, g2])
    np.testing.assert_allclose(w, [gamma, 1 - gamma], atol=1e-6)
    np.testing.assert_allclose(d, gamma * g1 + (1 - gamma) * g2, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mgda_three_tasks_reach_the_min_norm_point(seed):
    G = random_gradients(seed)
    expected = min_norm_numpy(G) @ G
    d, w = combine(strategy("mgda", num_tasks=3), G)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-6
    np.testing.assert_allclose(d, expected, atol=2e-3 * np.linalg.norm(G))
    assert d @ d <= expected @ expected + 1e-4 * np.sum(G * G)


def test_mgda_loss_normalisation_solves_on_scaled_gradients_and_applies_to_raw_ones():
    G = np.array([[1.0, 0.0], [0.0, 4.0]])
    L = np.array([1.0, 4.0])
    d, w = combine(strategy("mgda", normalization="loss"), G, L)
    expected = min_norm_numpy(G / L[:, None])  # g_i / L_i = (1, 0), (0, 1): a = (0.5, 0.5)
    np.testing.assert_allclose(w, expected, atol=1e-6)
    np.testing.assert_allclose(d, expected @ G, atol=1e-6)


# ---------------------------------------------------------------------------------------- CAGrad
def cagrad_numpy(G, c, grid=600):
    """Liu et al. 2021: min over the simplex of g_w.g0 + c ||g0|| ||g_w|| by a dense grid."""
    T = len(G)
    g0 = G.mean(axis=0)
    points = (
        [
            (a, b, 1 - a - b)
            for a in np.linspace(0, 1, grid + 1)
            for b in np.linspace(0, 1 - a, int(round((1 - a) * grid)) + 1)
        ]
        if T == 3
        else [(a, 1 - a) for a in np.linspace(0, 1, 20 * grid + 1)]
    )
    W = np.array(points)
    gw = W @ G
    F = gw @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(gw, axis=1)
    w = W[np.argmin(F)]
    gw = w @ G
    return g0 + c * np.linalg.norm(g0) / np.linalg.norm(gw) * gw, F.min()


def test_cagrad_at_c_zero_is_the_mean_gradient():
    G = random_gradients(4)
    for rescale in (0, 1, 2):
        d, w = combine(strategy("cagrad", num_tasks=3, c=0.0, rescale=rescale), G)
        np.testing.assert_allclose(d, G.mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("seed,T", [(0, 2), (1, 3), (5, 3)])
def test_cagrad_solves_its_dual_and_rescales_like_the_authors(seed, T):
    G = random_gradients(seed, T=T)
    expected, _ = cagrad_numpy(G, 0.5)
    d0, _ = combine(strategy("cagrad", num_tasks=T, rescale=0), G)
    np.testing.assert_allclose(d0, expected, atol=5e-3 * np.linalg.norm(expected))
    d1, w1 = combine(strategy("cagrad", num_tasks=T), G)  # default: rescale 1, c 0.5
    np.testing.assert_allclose(d1, d0 / 1.25, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w1 @ G, d1, atol=1e-5)
    # the primal constraint of Eq. 4 is tight: ||d - g0|| = c ||g0||
    g0 = G.mean(axis=0)
    np.testing.assert_allclose(np.linalg.norm(d0 - g0), 0.5 * np.linalg.norm(g0), rtol=1e-4)


# ---------------------------------------------------------------------------------------- IMTL-G
@pytest.mark.parametrize("seed,T,P", [(0, 2, 2), (1, 3, 4), (2, 3, 3)])
def test_imtl_g_projects_equally_on_every_unit_gradient(seed, T, P):
    G = random_gradients(seed, T=T, P=P)
    d, w = combine(strategy("imtl_g", num_tasks=T), G)
    units = G / np.linalg.norm(G, axis=1, keepdims=True)
    projections = units @ d
    np.testing.assert_allclose(projections, projections[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w.sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(w @ G, d, atol=1e-5)


def test_imtl_g_two_orthogonal_gradients_hand_computed():
    # g1 = (2, 0), g2 = (0, 1): d = a g1 + (1 - a) g2 with 2a = 1 - a -> a = 1/3
    d, w = combine(strategy("imtl_g"), [[2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(w, [1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(d, [2 / 3, 2 / 3], atol=1e-6)


# -------------------------------------------------------------------------------------- Nash-MTL
@pytest.mark.parametrize("seed,T,P", [(0, 2, 3), (1, 3, 4), (3, 3, 4), (7, 3, 8)])
def test_nash_mtl_solves_the_bargaining_equation(seed, T, P):
    G = random_gradients(seed, T=T, P=P)
    M = G @ G.T
    d, a = combine(strategy("nash_mtl", num_tasks=T, normalize_gram=False, max_norm=0.0), G)
    assert np.all(a > 0)
    np.testing.assert_allclose(a * (M @ a), 1.0, rtol=1e-4)  # alpha_i (G G^T alpha)_i = 1
    np.testing.assert_allclose(d, a @ G, atol=1e-5)
    np.testing.assert_allclose(d @ d, T, rtol=1e-4)  # ||d||^2 = sum_i alpha_i (M alpha)_i


def test_nash_mtl_orthogonal_gradients_and_the_authors_normalisation_and_clip():
    G = np.array([[3.0, 0.0], [0.0, 0.5]])
    _, a = combine(strategy("nash_mtl", normalize_gram=False, max_norm=0.0), G)
    np.testing.assert_allclose(a, [1 / 3, 2.0], rtol=1e-5)  # alpha_i = 1 / ||g_i||
    M = G @ G.T
    scaled = M / np.linalg.norm(M)
    _, a = combine(strategy("nash_mtl", max_norm=0.0), G)  # default: normalize_gram
    np.testing.assert_allclose(a * (scaled @ a), 1.0, rtol=1e-4)
    d, a = combine(strategy("nash_mtl"), G)  # default max_norm = 1
    np.testing.assert_allclose(np.linalg.norm(d), 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------------- Aligned-MTL
@pytest.mark.parametrize("seed,T,P", [(0, 2, 3), (1, 3, 4), (2, 3, 5)])
def test_aligned_mtl_combined_system_has_condition_number_one(seed, T, P):
    from dynamic_mtl.weighting.aligned_mtl import alignment_matrix

    G = random_gradients(seed, T=T, P=P)
    B = alignment_matrix(tf.constant(G @ G.T)).numpy()
    singular = np.linalg.svd(B @ G, compute_uv=False)
    np.testing.assert_allclose(singular.max() / singular.min(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(singular, np.sqrt(np.linalg.eigvalsh(G @ G.T).min()), rtol=1e-6)
    d, w = combine(strategy("aligned_mtl", num_tasks=T), G)
    np.testing.assert_allclose(d, np.ones(T) @ B @ G, atol=1e-5)
    np.testing.assert_allclose(w @ G, d, atol=1e-5)


def test_aligned_mtl_rank_deficient_gradients_stay_finite():
    G = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # g3 = g1 + g2
    d, w = combine(strategy("aligned_mtl", num_tasks=3), G)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(w))
    from dynamic_mtl.weighting.aligned_mtl import alignment_matrix

    B = alignment_matrix(tf.constant(G @ G.T)).numpy()
    singular = np.linalg.svd(B @ G, compute_uv=False)
    nonzero = singular[singular > 1e-6]
    assert len(nonzero) == 2
    np.testing.assert_allclose(nonzero, nonzero[0], rtol=1e-6)


# --------------------------------------------------------------------------------------- GradVac
def test_gradvac_starts_as_pcgrad_and_reaches_its_cosine_target():
    G = random_gradients(0)
    np.testing.assert_allclose(
        combine(strategy("gradvac", num_tasks=3), G)[0], combine(strategy("pcgrad", num_tasks=3), G)[0], atol=1e-5
    )
    # g1 = (1, 0), g2 = (0, 1): cos = 0 < target 0.5 -> g1' = g1 + (0.5 / sqrt(0.75)) g2
    s = strategy("gradvac", beta=0.1)
    s.targets.assign([[0.0, 0.5], [0.5, 0.0]])
    d, w = combine(s, [[1.0, 0.0], [0.0, 1.0]])
    k = 0.5 / np.sqrt(0.75)
    np.testing.assert_allclose(w, [1 + k, 1 + k], atol=1e-5)
    g1 = np.array([1.0, k])
    np.testing.assert_allclose(g1 @ [0, 1] / np.linalg.norm(g1), 0.5, atol=1e-6)
    # Eq. 6: the targets move towards the observed cosine 0 by beta
    np.testing.assert_allclose(s.targets.numpy(), [[0.0, 0.45], [0.45, 0.0]], atol=1e-6)


# ---------------------------------------------------------------------------------------- DB-MTL
def test_db_mtl_balances_ema_of_log_loss_gradients():
    rng = np.random.default_rng(0)
    s = strategy("db_mtl", num_tasks=3)
    step_fn = tf.function(s.combine_task_gradients)  # the buffer is created in the first trace
    buffer = np.zeros((3, 4))
    for t in range(1, 4):
        G = rng.normal(size=(3, 4))
        L = rng.uniform(0.5, 2.0, size=3)
        h = G / (L[:, None] + 1e-8)
        beta_t = 0.9 / t**0.5
        buffer = h + beta_t * (buffer - h)
        norms = np.linalg.norm(buffer, axis=1)
        alpha = norms.max() / (norms + 1e-8)
        d, w = step_fn(tf.constant(G, tf.float32), tf.constant(L, tf.float32))
        np.testing.assert_allclose(w.numpy(), alpha, rtol=1e-4)
        np.testing.assert_allclose(d.numpy(), alpha @ buffer, rtol=1e-4, atol=1e-5)
        s.update_state(tf.constant(L, tf.float32))
    # every scaled buffered gradient has the largest norm
    np.testing.assert_allclose(np.linalg.norm(alpha[:, None] * buffer, axis=1), norms.max(), rtol=1e-6)
    # the heads are trained on sum_i log L_i
    np.testing.assert_allclose(
        float(s.network_loss(s.task_weights(), tf.constant([1.0, np.e, 2.0]))), 1.0 + np.log(2.0), rtol=1e-6
    )


def test_db_mtl_buffer_saves_and_loads():
    s = strategy("db_mtl")
    s.combine_task_gradients(tf.constant([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), tf.ones(2))
    store = {}
    s.save_own_variables(store)
    fresh = strategy("db_mtl")
    fresh.load_own_variables(store)
    np.testing.assert_allclose(fresh.variables[-1].numpy(), s.variables[-1].numpy())
    assert fresh.variables[-1].shape == (2, 3)


# --------------------------------------------------------------------------------- loss methods
def test_rlw_weights_are_on_the_simplex_reproducible_and_random():
    s = strategy("rlw", num_tasks=3, seed=7)
    draws = []
    for _ in range(400):
        w = s.task_weights().numpy()
        np.testing.assert_array_equal(w, s.task_weights().numpy())  # one draw per step
        draws.append(w)
        s.update_state(tf.ones(3))
    draws = np.array(draws)
    assert np.all(draws > 0)
    np.testing.assert_allclose(draws.sum(axis=1), 1.0, rtol=1e-6)
    assert len(np.unique(draws[:, 0])) == len(draws)
    np.testing.assert_allclose(draws.mean(axis=0), 1 / 3, atol=0.03)  # exchangeable: E w_i = 1/T
    replay = strategy("rlw", num_tasks=3, seed=7)
    np.testing.assert_array_equal(replay.task_weights().numpy(), draws[0])
    assert not np.allclose(strategy("rlw", num_tasks=3, seed=8).task_weights().numpy(), draws[0])


def test_gls_is_the_geometric_mean_with_its_derivative():
    s = strategy("gls", num_tasks=3)
    L = np.array([0.5, 2.0, 4.0])
    losses = tf.constant(L, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(losses)
        value = s.network_loss(s.task_weights(), losses)
    geometric = np.prod(L) ** (1 / 3)
    np.testing.assert_allclose(float(value), geometric, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(value, losses).numpy(), geometric / (3 * L), rtol=1e-5)


def test_famo_loss_gradient_and_logit_update_follow_the_paper():
    s = strategy("famo", num_tasks=3)
    z = np.full(3, 1 / 3)
    L0, L1 = np.array([1.0, 2.0, 0.5]), np.array([0.8, 1.9, 0.5])
    losses = tf.constant(L1, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(losses)
        value = s.network_loss(s.task_weights(), losses)
    gaps = L1 + 1e-8
    c = np.sum(z / gaps)
    np.testing.assert_allclose(tape.gradient(value, losses).numpy(), z / gaps / c, rtol=1e-5)  # sums to 1
    np.testing.assert_allclose(float(value), np.sum(z * np.log(gaps)) / c, rtol=1e-5)
    s.update_state(tf.constant(L0, tf.float32))  # first step: nothing to compare with
    np.testing.assert_allclose(s.logits.numpy(), 0.0)
    s.update_state(tf.constant(L1, tf.float32))
    delta = np.log(L0 + 1e-8) - np.log(L1 + 1e-8)
    g = z * (delta - z @ delta)  # J_softmax^T delta at the weights used
    m, v = 0.1 * g, 0.001 * g**2
    expected = -0.025 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    np.testing.assert_allclose(s.logits.numpy(), expected, rtol=1e-4, atol=1e-7)
    w = s.task_weights().numpy()
    assert w[2] > w[0]  # the task that did not improve gains weight


def test_stch_warms_up_on_log_losses_then_is_the_smooth_tchebycheff_of_normalised_losses():
    s = strategy("stch", num_tasks=2, mu=0.5, warmup_epochs=1)
    L = tf.constant([2.0, 0.5])
    np.testing.assert_allclose(float(s.network_loss(s.task_weights(), L)), np.log(2.0) + np.log(0.5), atol=1e-6)
    s.update_state(tf.constant([9.0, 9.0]))  # epoch 0: warm-up, not averaged
    s.on_epoch_end()
    for losses in ([1.0, 4.0], [3.0, 2.0]):  # epoch 1: averaged into the nadir
        s.update_state(tf.constant(losses))
    np.testing.assert_allclose(float(s.network_loss(s.task_weights(), L)), np.log(2.0) + np.log(0.5), atol=1e-6)
    s.on_epoch_end()
    nadir = np.array([2.0, 3.0])
    np.testing.assert_allclose(s.nadir.numpy(), nadir)
    x = np.array([2.0, 0.5])
    f = np.log(x / nadir)
    with tf.GradientTape() as tape:
        tape.watch(L)
        value = s.network_loss(s.task_weights(), L)
    np.testing.assert_allclose(float(value), 2 * 0.5 * np.log(np.sum(np.exp(f / 0.5))), rtol=1e-5)
    soft = np.exp(f / 0.5) / np.sum(np.exp(f / 0.5))
    np.testing.assert_allclose(tape.gradient(value, L).numpy(), 2 * soft / x, rtol=1e-5)
    # mu -> 0: the Tchebycheff max
    sharp = strategy("stch", num_tasks=2, mu=1e-3, warmup_epochs=0)
    sharp.nadir.assign(nadir)
    sharp.epochs_seen.assign(1.0)
    np.testing.assert_allclose(float(sharp.network_loss(sharp.task_weights(), L)), 2 * f.max(), atol=1e-2)


# ------------------------------------------------------------------------- interface and options
@pytest.mark.parametrize("name", GRADIENT_METHODS + LOSS_METHODS)
def test_every_method_is_registered_and_round_trips_its_config(name):
    s = get_weighting(name, num_tasks=3)
    assert type(s) is WEIGHTINGS[name]
    assert s.uses_task_gradients == (name in GRADIENT_METHODS)
    config = s.get_config()
    again = type(s).from_config(config)
    assert again.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert type(restored) is type(s) and restored.get_config() == config
    assert type(s).__doc__ and len(type(s).__doc__) > 200


@pytest.mark.parametrize(
    "name,options,word",
    [
        ("mgda", {"normalization": "max"}, "normalization"),
        ("mgda", {"iterations": 0}, "iterations"),
        ("cagrad", {"c": -1.0}, "c must"),
        ("cagrad", {"rescale": 3}, "rescale"),
        ("nash_mtl", {"max_norm": -1.0}, "max_norm"),
        ("gradvac", {"beta": 2.0}, "beta"),
        ("db_mtl", {"beta": 1.0}, "beta"),
        ("famo", {"learning_rate": 0.0}, "learning_rate"),
        ("famo", {"min_losses": [0.0]}, "min_losses"),
        ("stch", {"mu": 0.0}, "mu"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(name, options, word):
    with pytest.raises(ValueError, match=word):
        get_weighting(name, num_tasks=2, **options)


def test_task_gradients_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="task_gradients must have shape"):
        strategy("pcgrad", num_tasks=3).combine_task_gradients(tf.ones((2, 4)), tf.ones(3))


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_gradient_methods_run_in_a_tf_function_and_agree_with_eager(name):
    G = tf.constant(random_gradients(11, T=3, P=6), tf.float32)
    L = tf.constant([0.7, 1.3, 2.0])
    eager = strategy(name, num_tasks=3)
    graph = strategy(name, num_tasks=3)
    d_eager, w_eager = eager.combine_task_gradients(G, L)
    d_graph, w_graph = tf.function(graph.combine_task_gradients)(G, L)
    np.testing.assert_allclose(d_graph.numpy(), d_eager.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_graph.numpy(), w_eager.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(d_graph.numpy()))
    np.testing.assert_allclose(graph.task_weights().numpy(), 1.0)  # the heads train on sum_i L_i


@pytest.mark.parametrize("name", LOSS_METHODS)
def test_loss_methods_train_a_tiny_model(name, tiny_batch):
    from conftest import small_model

    x, y = tiny_batch
    model = small_model(name)
    model.compile(network_optimizer=keras.optimizers.SGD(0.05))
    before = [v.numpy().copy() for v in model.network_variables]
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    moved = sum(float(np.abs(a - v.numpy()).sum()) for a, v in zip(before, model.network_variables))
    assert moved > 0
    assert int(model.train_step_count.numpy()) == 4


def test_peer_table_compares_ratios_and_names_missing_methods():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import row
    from benchmarks.peer import table

    ours = [
        row("s", "pcgrad", "step time / plain", "ratio", [1.2, 1.3]),
        row("s", "famo", "step time / plain", "ratio", [1.1]),
        row("s", "gls", "step time / plain", "ratio", [2.0]),
    ]
    peer = [
        row("p", "pcgrad", "step time / plain", "ratio", [1.9]),
        row("p", "gls", "step time / plain", "ratio", [1.5]),
    ]
    lines = {line.split(" | ")[0].strip("| "): line for line in table(ours, peer)[2:]}
    assert lines["pcgrad"].endswith("| yes |") and "1.25 [1.20-1.30]" in lines["pcgrad"]
    assert lines["gls"].endswith("| **no** |")
    assert lines["famo"].endswith("| no LibMTL 1.1.5 run |")
    assert lines["nash_mtl"].endswith("| not measured |")
